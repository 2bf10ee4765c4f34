"""Student compression: a narrower student (default half width) vs the full-width student, same joint teacher.

    python benchmarks/student_width.py --work /tmp/nnunet_kd_bench_0 [--width 0.5] [--suffix _bench] [--out FILE]

Needs a finished KD pipeline (e.g. `benchmarks/domain_shift.py --seed 0`, or the nnU-Net folders of the environment
without --work). Writes a copy of the shared plans with `student.width` (from random weights at nnU-Net's learning
rate) and `student.joint_teacher_plans` into the target's preprocessed folder, trains the narrow student through `nnUNetv2_train` (skipped when finished), predicts the
target's imagesTs with both students (nnU-Net's `nnUNetPredictor`, what `nnUNetv2_predict` runs), scores them with
nnU-Net's `compute_metrics_on_folder` and times one forward pass per patch of both networks in this process. Prints a
markdown table; --out writes it.
"""
import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json

from nnunet_kd.settings import NNUNET_INITIAL_LR
from variant_plans import model_folder, only_shared_plans, trainer_env, variant_plans


def _test_dice(target, trainer, plans, configuration, fold, device, out_dir) -> float:
    from nnunet_kd.run.test_set import predict_and_score
    raw = join(os.environ["nnUNet_raw"], target)
    predict_and_score("seg", model_folder(target, trainer, plans, configuration), [fold], device,
                      join(raw, "imagesTs"), join(raw, "labelsTs"), out_dir)
    return load_json(join(out_dir, "summary.json"))["foreground_mean"]["Dice"]


def _ms_per_patch(folder, configuration, fold, device, repeats) -> tuple:
    """Median ms of one forward pass (batch 1, one patch, inference mode) and the parameter count."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    predictor = nnUNetPredictor(device=torch.device(device), perform_everything_on_device=device != "cpu")
    predictor.initialize_from_trained_model_folder(folder, (fold,), "checkpoint_final.pth")
    net = predictor.network.to(device).eval()
    patch = predictor.configuration_manager.patch_size
    x = torch.randn(1, len(predictor.dataset_json["channel_names"]), *patch, device=device)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(x)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)), sum(p.numel() for p in net.parameters()), list(patch)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=None, help="Folder holding nnUNet_raw/_preprocessed/_results (the demo's or "
                        "domain_shift.py's --out). Default: the nnUNet_* environment variables.")
    parser.add_argument("-t", default="1", help="Target dataset. Default: 1.")
    parser.add_argument("-p", default=None, help="Shared plans name. Default: the one plans file named "
                        "nnUNetPlans_kd_* in the target's preprocessed folder.")
    parser.add_argument("-c", default="2d")
    parser.add_argument("-f", default="0", help="Fold. Default: 0.")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--narrow-plans", default=None, help="Plans name of an already trained narrow student to "
                        "compare instead of writing and training the --width variant.")
    parser.add_argument("--suffix", default="_bench", help="Trainer variant of the students. Default: _bench.")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=50, help="Timed forward passes per network. Default: 50.")
    parser.add_argument("--out", default=None, help="Also write the table (markdown) to this file.")
    args = parser.parse_args(argv)
    if args.work:
        for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            os.environ[k] = join(os.path.abspath(args.work), k)
    from nnunet_kd.core.datasets import dataset_name
    target = dataset_name(args.t)
    plans = args.p or only_shared_plans(join(os.environ["nnUNet_preprocessed"], target))
    narrow = args.narrow_plans or variant_plans(target, plans, f"w{args.width:g}".replace(".", ""),
                                                {"student": {"width": args.width, "init_from_target_teacher": False,
                                                             "initial_lr": NNUNET_INITIAL_LR}})
    trainer = "nnUNetTrainerJointKD" + args.suffix
    folder = model_folder(target, trainer, narrow, args.c)
    if not isfile(join(folder, f"fold_{args.f}", "checkpoint_final.pth")):
        subprocess.run(["nnUNetv2_train", target, args.c, args.f, "-p", narrow, "-tr", trainer, "-device",
                        args.device], env=trainer_env(), check=True)
    rows = []
    narrow_width = load_json(join(os.environ["nnUNet_preprocessed"], target, narrow + ".json"))["nnunet_kd"]["student"][
        "width"]
    for width, p in ((1.0, plans), (narrow_width, narrow)):
        pred = join(os.path.dirname(model_folder(target, trainer, p, args.c)), f"test_predictions_{trainer}__{p}")
        dice = _test_dice(target, trainer, p, args.c, args.f, args.device, pred)
        ms, params, patch = _ms_per_patch(model_folder(target, trainer, p, args.c), args.c, args.f, args.device,
                                          args.repeats)
        rows.append((width, params, ms, dice))
    command = "python benchmarks/student_width.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [f"Student width: `{command}` ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPU cores, "
             f"device {args.device}, torch {torch.__version__}); {trainer}, plans {plans}, fold {args.f}, patch "
             f"{patch}, batch 1, median of {args.repeats} forward passes", "",
             "| student width | parameters | ms/patch | x full width | test Dice (foreground mean) |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {w:g} | {n:,} | {ms:.2f} | {ms / rows[0][2]:.2f} | {d:.4f} |" for w, n, ms, d in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    return table


if __name__ == "__main__":
    main()
