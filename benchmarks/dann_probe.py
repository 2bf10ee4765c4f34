"""Does the domain-adversarial term make the source teachers' encoders domain-invariant, and what does it cost them?
One seed per invocation.

    python benchmarks/dann_probe.py --seed 0 [--weights 0 0.1 0.3 1.0] [--suffix _demo] [--out DIR]

Generates the segmentation benchmark's data (`shift_benchmark`, this seed) and held-out data apart from it (20 labelled
images of each source scanner, 40 images of the target scanner; never the target's test set), trains both source
teachers with each dann.weight of --weights (the tiny preset otherwise) and measures each trained teacher on the
held-out data:
- probe: a fresh class-balanced logistic regression on mean+std pooled bottleneck features, source vs target,
  cross-validated in 5 folds (`nnunet_kd.protocol.domain.probe_accuracy`); lower = the domains look more alike;
- source Dice: the teacher's own task, foreground Dice on its held-out labelled images.
`choose_weight` picks the weight by the rule written in the results file (fixed before the runs).
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

from seed_runs import add_run, machine

TITLE = "Domain probe of the source teachers' encoders (segmentation benchmark data)"
HELD_OUT = 20  # held-out images of each source scanner
HELD_OUT_TARGET = 40
RULE = ("the largest weight whose mean held-out source Dice over all teachers and seeds is at most 0.01 below "
        "weight 0's and no teacher's at most 0.03 below its weight-0 twin, and whose mean probe is below weight 0's; "
        "otherwise 0")


def held_out_specs(specs, channel_map: dict):
    """The target's scanner and each source's scanner for the target's channel (as `plan` maps it), as test images
    only (the target's under another dataset id, so its test set is never touched)."""
    target_channel = next(iter(specs[0].channels))
    out = [dataclasses.replace(specs[0], dataset_id=999, num_training=0, num_test=HELD_OUT_TARGET)]
    for spec in specs[1:]:
        mapped = channel_map.get(str(spec.dataset_id), {}).get(target_channel) or next(
            c for c in spec.channels if c.lower() == target_channel.lower())
        out.append(dataclasses.replace(spec, channels={target_channel: spec.channels[mapped]}, num_training=0,
                                       num_test=HELD_OUT))
    return out


def train_source_teachers(target: str, plans_name: str, suffix: str) -> list:
    """Trains every source teacher of the shared plans (fold all); returns their model folders."""
    from nnunet_kd import trainer_path
    from nnunet_kd.run.pipeline import command_env
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


def features_and_dice(model_folder: str, image_sets):
    """Mean+std pooled bottleneck features of the model's encoder, one row per case, and the model's foreground Dice
    on the cases that have a label file; image_sets: ((image files, label file or None) per case, the plans file and
    dataset.json that preprocess them)."""
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnunet_kd.protocol.domain import pooled_statistics
    from nnunet_kd.core.checkpoints import load_checkpoint
    pm = PlansManager(os.path.join(model_folder, "plans.json"))
    cm = pm.get_configuration("2d")
    n_in = len(load_json(os.path.join(model_folder, "dataset.json"))["channel_names"])
    net = nnUNetTrainer.build_network_architecture(pm, cm, n_in, 2, False)
    net.load_state_dict(load_checkpoint(os.path.join(model_folder, "fold_all", "checkpoint_final.pth"))[
        "network_weights"])
    net.eval()
    rows, dice = [], []
    for cases, plans_file, dataset_json_file in image_sets:
        ppm = PlansManager(plans_file)
        pcm = ppm.get_configuration("2d")
        dataset_json = load_json(dataset_json_file)
        for files, label in cases:
            data, seg, _ = pcm.preprocessor_class(verbose=False).run_case(files, label, ppm, pcm, dataset_json)
            x = torch.from_numpy(np.ascontiguousarray(data[:, 0])).float()[None]
            if list(x.shape[2:]) != list(cm.patch_size):
                raise ValueError(f"held-out images are {list(x.shape[2:])}, the patch size is {cm.patch_size}")
            with torch.no_grad():
                rows.append(pooled_statistics(net.encoder(x)[-1])[0].numpy())
                if label is not None:
                    dice.append(_foreground_dice(net(x)[0].argmax(0).numpy(), seg[0, 0]))
    return np.stack(rows), float(np.mean(dice))


def _foreground_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean Dice over the foreground classes present in either (1.0 when neither has foreground)."""
    scores = [2 * np.sum((prediction == c) & (reference == c)) / (np.sum(prediction == c) + np.sum(reference == c))
              for c in np.unique(np.concatenate([prediction[prediction > 0], reference[reference > 0]]))]
    return float(np.mean(scores)) if scores else 1.0


def _cases(dataset_folder: str, labelled: bool) -> list:
    files = sorted(f for f in os.listdir(os.path.join(dataset_folder, "imagesTs")) if f.endswith(".png"))
    return [([os.path.join(dataset_folder, "imagesTs", f)],
             os.path.join(dataset_folder, "labelsTs", f.replace("_0000.png", ".png")) if labelled else None)
            for f in files]


def _key(weight: float) -> str:
    return f"{weight:g}"


def choose_weight(runs: list) -> tuple:
    """(weight, per-weight means) by RULE over every teacher of every run."""
    per = {}
    for r in runs:
        for source, by_weight in r["teachers"].items():
            for w, m in by_weight.items():
                per.setdefault(w, []).append((m["probe"], m["source_dice"], by_weight["0"]["source_dice"]))
    means = {w: {"probe": float(np.mean([p for p, _, _ in v])), "source_dice": float(np.mean([d for _, d, _ in v])),
                 "worst_drop": float(max(d0 - d for _, d, d0 in v)), "teachers": len(v)} for w, v in per.items()}
    ok = [w for w, m in means.items() if float(w) > 0 and m["source_dice"] >= means["0"]["source_dice"] - 0.01
          and m["worst_drop"] <= 0.03 and m["probe"] < means["0"]["probe"]]
    return (max(ok, key=float) if ok else "0"), means


def render(runs: list) -> str:
    weights = sorted({w for r in runs for t in r["teachers"].values() for w in t}, key=float)
    lines = [f"# {TITLE}", "", "Per source teacher and dann.weight: probe = balanced accuracy of a fresh linear probe "
             "telling held-out source images from held-out target-scanner images by the frozen encoder's pooled "
             "bottleneck features (0.5 = the domains look alike); head = the training's own domain head, accuracy in "
             "its last epoch; Dice = the teacher's foreground Dice on held-out labelled images of its own scanner. "
             "Written by `benchmarks/dann_probe.py`.", "",
             "| seed | source teacher | " + " | ".join(f"w={w}: probe / head / Dice" for w in weights) + " | minutes |",
             "| --- | --- | " + " | ".join("---" for _ in weights) + " | --- |"]
    for r in runs:
        for source, by_weight in r["teachers"].items():
            cells = [" / ".join(f"{m[k]:.3f}" if m.get(k) is not None else "-" for k in ("probe", "head_acc",
                                                                                         "source_dice"))
                     if (m := by_weight.get(w)) else "-" for w in weights]
            lines.append(f"| {r['seed']} | {source} | " + " | ".join(cells) + f" | {r['minutes']:.0f} |")
    chosen, means = choose_weight(runs)
    lines += ["", "| dann.weight | teachers | mean probe | mean source Dice | largest Dice drop vs weight 0 |",
              "| --- | --- | --- | --- | --- |"] + [
        f"| {w} | {m['teachers']} | {m['probe']:.3f} | {m['source_dice']:.3f} | {m['worst_drop']:+.3f} |"
        for w, m in sorted(means.items(), key=lambda kv: float(kv[0]))]
    lines += ["", f"Rule (fixed before the runs): {RULE}. Chosen: **{chosen}**.", "", "Commands:", ""] + [
        f"- `{r['command']}`" for r in runs]
    notes = [n for r in runs for n in r.get("notes", [])]
    if notes:
        lines += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def record(run: dict, results: str) -> str:
    text = render(add_run(os.path.join(results, "dann_probe.json"), run))
    with open(os.path.join(results, "dann_probe.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0],
                        help="dann.weight values to train (0 = no domain term). Default: 0 1.0.")
    parser.add_argument("--suffix", default="_demo", help="Trainer variant. Default: _demo (20 x 30 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_probe_<seed>")
    parser.add_argument("--results", default=RESULTS, help="Folder of dann_probe.json/.md. Default: benchmarks/results")
    args = parser.parse_args(argv)
    os.environ["nnUNet_KD_SEED"] = str(args.seed)
    from nnunet_kd.settings import load_preset
    from nnunet_kd.segmentation.synthetic import shift_benchmark, write_dataset
    from nnunet_kd.run.demo import set_nnunet_folders
    from nnunet_kd.segmentation.synthetic import DEMO_CHANNEL_MAP, write_datasets
    from nnunet_kd.planning.shared import plan
    from nnunet_kd.planning.request import PlanRequest
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_probe_{args.seed}")
    start = datetime.datetime.now()
    folders = set_nnunet_folders(out)
    specs = shift_benchmark()
    write_datasets(folders["nnUNet_raw"], specs, args.seed)
    held_out = os.path.join(out, "held_out_raw")
    for i, spec in enumerate(held_out_specs(specs, DEMO_CHANNEL_MAP)):
        if not os.path.isdir(os.path.join(held_out, f"Dataset{spec.dataset_id:03d}_{spec.name}")):
            # random streams apart from the training cases' (and the target's apart from the sources')
            write_dataset(held_out, spec, seed=(20_000 if i == 0 else 10_000) + args.seed)
    from nnunet_kd.protocol.domain import probe_accuracy
    from nnunet_kd.core.checkpoints import load_checkpoint
    target = f"Dataset{specs[0].dataset_id:03d}_{specs[0].name}"
    target_pp = os.path.join(folders["nnUNet_preprocessed"], target)
    held_target, *held_sources = [os.path.join(held_out, f"Dataset{s.dataset_id:03d}_{s.name}")
                                  for s in held_out_specs(specs, DEMO_CHANNEL_MAP)]
    target_cases = _cases(held_target, labelled=False)
    teachers = {}
    for weight in args.weights:
        preset, preset_file = load_preset("tiny"), "tiny"
        if weight != preset["dann"]["weight"]:
            preset["dann"]["weight"] = weight
            preset_file = os.path.join(out, f"tiny_dann_weight_{_key(weight)}.json")
            with open(preset_file, "w") as f:
                json.dump(preset, f)
        name = plan(PlanRequest(specs[0].dataset_id, [s.dataset_id for s in specs[1:]], ["2d"], preset=preset_file,
                                channel_map=DEMO_CHANNEL_MAP),
                    num_processes=2, verbose=False).name
        for folder, spec, source_folder in zip(train_source_teachers(target, name, args.suffix), specs[1:],
                                               held_sources):
            source_cases = _cases(source_folder, labelled=True)
            features, dice = features_and_dice(folder, [
                (source_cases, os.path.join(folder, "plans.json"), os.path.join(folder, "dataset.json")),
                (target_cases, os.path.join(target_pp, name + ".json"), os.path.join(target_pp, "dataset.json"))])
            domain = np.repeat([0, 1], [len(source_cases), len(target_cases)])
            groups = [f"s{i}" for i in range(len(source_cases))] + [f"t{i}" for i in range(len(target_cases))]
            logging = load_checkpoint(os.path.join(folder, "fold_all", "checkpoint_final.pth"))["logging"]
            teachers.setdefault(spec.name, {})[_key(weight)] = {
                "probe": probe_accuracy(features, domain, groups), "source_dice": dice,
                "head_acc": float(logging["domain_accs"][-1]) if weight > 0 else None}
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "command": "python benchmarks/dann_probe.py " + shlex.join(
               sys.argv[1:] if argv is None else argv), "teachers": teachers}
    print(record(run, args.results))


if __name__ == "__main__":
    main()
