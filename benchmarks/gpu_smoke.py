"""The segmentation pipeline end to end on CUDA, with nnU-Net's default torch.compile and fp16 autocast.

    python benchmarks/gpu_smoke.py [--out DIR] [--suffix _tiny]

Demo data -> shared plans -> target and source teachers -> joint teacher -> student through `nnunet_kd run`
(`nnUNetv2_train` for every stage), then nnU-Net's `nnUNetPredictor` of the student on the target's test images
and `compute_metrics_on_folder`. Prints whether every stage compiled, the seconds per stage and the student's test Dice.
"""
import argparse
import glob
import os
import tempfile
import time

from batchgenerators.utilities.file_and_folder_operations import join, load_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None)
    p.add_argument("--suffix", default="_tiny")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="nnunet_kd_gpu_smoke_"))
    os.environ.setdefault("nnUNet_def_n_proc", str(os.cpu_count()))
    from nnunet_kd.segmentation.synthetic import lesion_demo
    from nnunet_kd.run.demo import set_nnunet_folders
    from nnunet_kd.segmentation.synthetic import DEMO_CHANNEL_MAP, write_datasets
    from nnunet_kd.run.test_set import predict_and_score
    from nnunet_kd.planning.request import PlanRequest
    from nnunet_kd.run.pipeline import Pipeline, RunSpec
    folders = set_nnunet_folders(out)
    write_datasets(folders["nnUNet_raw"], lesion_demo())
    spec = RunSpec(PlanRequest(1, (2, 3), ("2d",), preset="tiny", channel_map=DEMO_CHANNEL_MAP), "2d", folds=["0"],
                   suffix=args.suffix, device=args.device)
    pipeline = Pipeline(spec)
    t0 = time.perf_counter()
    pipeline.run()
    print(f"pipeline: {time.perf_counter() - t0:.0f} s")
    for log in sorted(glob.glob(join(folders["nnUNet_results"], "*", "*", "*", "training_log_*.txt"))):
        text = open(log).read()
        print(f"{os.path.relpath(log, folders['nnUNet_results'])}: compiled={'Using torch.compile' in text}")
    student = "nnUNetTrainerJointKD" + args.suffix
    t0 = time.perf_counter()
    raw = join(folders["nnUNet_raw"], pipeline.target)
    pred = predict_and_score("seg", join(folders["nnUNet_results"], pipeline.target,
                                         f"{student}__{pipeline.plans_name}__2d"), ["0"], args.device,
                             join(raw, "imagesTs"), join(raw, "labelsTs"), join(out, "test_predictions"))
    dice = load_json(join(pred, "summary.json"))["foreground_mean"]["Dice"]
    print(f"student test Dice (nnUNetPredictor, {time.perf_counter() - t0:.0f} s): {dice:.4f}")


if __name__ == "__main__":
    main()
