"""Does the domain-adversarial term make the source teachers' encoders domain-invariant? One seed per invocation.

    python benchmarks/dann_probe.py --seed 0 [--suffix _demo] [--out /tmp/nnunet_kd_probe_0]

Generates the segmentation benchmark's data (`shift_benchmark`, this seed) and held-out images of every scanner (20 of
each source, the target's 40 test images), trains both source teachers twice, with dann.weight 0 and with the tiny
preset's weight, and probes each trained encoder: a fresh class-balanced logistic regression on mean+std pooled
bottleneck features of the held-out images, source vs target, cross-validated in 5 folds
(`nnunet_kd.protocol.domain.probe_accuracy`). If DANN acts, the probe's balanced accuracy is lower with the weight.
Appends to benchmarks/results/dann_probe.json and rewrites benchmarks/results/dann_probe.md from it.
"""
import argparse
import dataclasses
import datetime
import json
import os
import shlex
import subprocess
import sys

import numpy as np

from seed_runs import RESULTS, add_run, machine

TITLE = "Domain probe of the source teachers' encoders (segmentation benchmark data)"
HELD_OUT = 20  # held-out images of each source scanner


def held_out_specs(specs, channel_map: dict):
    """Each source's scanner for the target's channel (as `plan` maps it), as test images only."""
    target_channel = next(iter(specs[0].channels))
    out = []
    for spec in specs[1:]:
        mapped = channel_map.get(str(spec.dataset_id), {}).get(target_channel) or next(
            c for c in spec.channels if c.lower() == target_channel.lower())
        out.append(dataclasses.replace(spec, channels={target_channel: spec.channels[mapped]}, num_training=0,
                                       num_test=HELD_OUT))
    return out


def train_source_teachers(target: str, plans_name: str, suffix: str) -> list:
    """Trains every source teacher of the shared plans (fold all); returns their model folders."""
    from nnunet_kd import trainer_path
    from nnunet_kd.pipeline import command_env
    env = dict(command_env(), nnUNet_extTrainer=trainer_path(),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    with open(os.path.join(env["nnUNet_preprocessed"], target, plans_name + ".json")) as f:
        sources = [s["dataset"] for s in json.load(f)["nnunet_kd"]["sources"]]
    folders = []
    for source in sources:
        trainer = "nnUNetTrainerDomainAdversarial" + suffix
        folder = os.path.join(env["nnUNet_results"], source, f"{trainer}__{plans_name}__2d")
        if not os.path.isfile(os.path.join(folder, "fold_all", "checkpoint_final.pth")):
            subprocess.run(["nnUNetv2_train", source, "2d", "all", "-p", plans_name, "-tr", trainer, "-device", "cpu"],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        folders.append(folder)
    return folders


def pooled_features(model_folder: str, image_sets) -> np.ndarray:
    """Mean+std pooled bottleneck features of the model's encoder, one row per case; image_sets: (files per case,
    the plans file and dataset.json that preprocess them)."""
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnunet_kd.protocol.domain import pooled_statistics
    from nnunet_kd.checkpoints import load_checkpoint
    pm = PlansManager(os.path.join(model_folder, "plans.json"))
    cm = pm.get_configuration("2d")
    n_in = len(load_json(os.path.join(model_folder, "dataset.json"))["channel_names"])
    net = nnUNetTrainer.build_network_architecture(pm, cm, n_in, 2, False)
    net.load_state_dict(load_checkpoint(os.path.join(model_folder, "fold_all", "checkpoint_final.pth"))[
        "network_weights"])
    net.eval()
    rows = []
    for cases, plans_file, dataset_json_file in image_sets:
        ppm = PlansManager(plans_file)
        pcm = ppm.get_configuration("2d")
        dataset_json = load_json(dataset_json_file)
        for files in cases:
            data, _, _ = pcm.preprocessor_class(verbose=False).run_case(files, None, ppm, pcm, dataset_json)
            x = torch.from_numpy(np.ascontiguousarray(data[:, 0])).float()[None]
            if list(x.shape[2:]) != list(cm.patch_size):
                raise ValueError(f"held-out images are {list(x.shape[2:])}, the patch size is {cm.patch_size}")
            with torch.no_grad():
                rows.append(pooled_statistics(net.encoder(x)[-1])[0].numpy())
    return np.stack(rows)


def _cases(images_folder: str) -> list:
    files = sorted(f for f in os.listdir(images_folder) if f.endswith(".png"))
    return [[os.path.join(images_folder, f)] for f in files]


def render(runs: list) -> str:
    lines = [f"# {TITLE}", "", "Balanced accuracy of a fresh linear probe telling held-out source images from target "
             "images by the frozen encoder's pooled bottleneck features (0.5 = the domains look alike); head = the "
             "training's own domain head, accuracy in its last epoch. Written by `benchmarks/dann_probe.py`.", "",
             "| seed | source teacher | probe, dann.weight 0 | probe, dann.weight default | difference | "
             "head acc., default | minutes |", "| --- | --- | --- | --- | --- | --- | --- |"]
    diffs = []
    for r in runs:
        for source, p in r["probe"].items():
            diffs.append(p["default"] - p["weight 0"])
            lines.append(f"| {r['seed']} | {source} | {p['weight 0']:.3f} | {p['default']:.3f} | {diffs[-1]:+.3f} | "
                         f"{r['head_acc'][source]:.3f} | {r['minutes']:.0f} |")
    lines += ["", f"Mean difference over {len(diffs)} teachers: {np.mean(diffs):+.3f} (negative: DANN hides the "
              "domain from a fresh classifier).", "", "Commands:", ""] + [f"- `{r['command']}`" for r in runs]
    notes = [n for r in runs for n in r.get("notes", [])]
    if notes:
        lines += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def record(run: dict, results: str) -> str:
    text = render(add_run(os.path.join(results, "dann_probe.json"), run))
    with open(os.path.join(results, "dann_probe.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_demo", help="Trainer variant. Default: _demo (20 x 30 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_probe_<seed>")
    parser.add_argument("--results", default=RESULTS, help="Folder of dann_probe.json/.md. Default: benchmarks/results")
    args = parser.parse_args(argv)
    os.environ["nnUNet_KD_SEED"] = str(args.seed)
    from nnunet_kd.config import load_preset
    from nnunet_kd.data.synthetic import shift_benchmark, write_dataset
    from nnunet_kd.demo import DEMO_CHANNEL_MAP, set_nnunet_folders, write_demo_data
    from nnunet_kd.plans.shared import plan
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_probe_{args.seed}")
    start = datetime.datetime.now()
    folders = set_nnunet_folders(out)
    specs = shift_benchmark()
    write_demo_data(folders["nnUNet_raw"], specs, args.seed)
    held_out = os.path.join(out, "held_out_raw")
    for spec in held_out_specs(specs, DEMO_CHANNEL_MAP):
        if not os.path.isdir(os.path.join(held_out, f"Dataset{spec.dataset_id:03d}_{spec.name}")):
            write_dataset(held_out, spec, seed=10_000 + args.seed)  # a random stream apart from the training cases'
    preset = load_preset("tiny")
    weight = preset["dann"]["weight"]
    preset["dann"]["weight"] = 0.0
    no_dann = os.path.join(out, "tiny_dann_weight_0.json")
    with open(no_dann, "w") as f:
        json.dump(preset, f)
    probe, head_acc = {}, {}
    from nnunet_kd.protocol.domain import probe_accuracy
    from nnunet_kd.checkpoints import load_checkpoint
    target = f"Dataset{specs[0].dataset_id:03d}_{specs[0].name}"
    target_cases = _cases(os.path.join(folders["nnUNet_raw"], target, "imagesTs"))
    for setting, preset_name in (("weight 0", no_dann), ("default", "tiny")):
        name = plan(specs[0].dataset_id, [s.dataset_id for s in specs[1:]], ["2d"], preset=preset_name,
                    channel_map=DEMO_CHANNEL_MAP, num_processes=2, verbose=False)
        target_pp = os.path.join(folders["nnUNet_preprocessed"], target)
        for folder, spec in zip(train_source_teachers(target, name, args.suffix), specs[1:]):
            source_cases = _cases(os.path.join(held_out, f"Dataset{spec.dataset_id:03d}_{spec.name}", "imagesTs"))
            features = pooled_features(folder, [
                (source_cases, os.path.join(folder, "plans.json"), os.path.join(folder, "dataset.json")),
                (target_cases, os.path.join(target_pp, name + ".json"), os.path.join(target_pp, "dataset.json"))])
            domain = np.repeat([0, 1], [len(source_cases), len(target_cases)])
            groups = [f"s{i}" for i in range(len(source_cases))] + [f"t{i}" for i in range(len(target_cases))]
            probe.setdefault(spec.name, {})[setting] = probe_accuracy(features, domain, groups)
            if setting == "default":
                logging = load_checkpoint(os.path.join(folder, "fold_all", "checkpoint_final.pth"))["logging"]
                head_acc[spec.name] = float(logging["domain_accs"][-1])
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "dann_weight": weight, "command": "python benchmarks/dann_probe.py " + shlex.join(
               sys.argv[1:] if argv is None else argv), "probe": probe, "head_acc": head_acc}
    print(record(run, args.results))


if __name__ == "__main__":
    main()
