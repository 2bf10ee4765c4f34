"""Another student from the same teachers: a finished domain-shift run's joint teacher distilled into a student with
other settings, scored on the run's test set against the run's own baseline.

    python benchmarks/student_variant.py --work /tmp/nnunet_kd_bench_1_no_dann --seed 1 --arm no_dann \
        --name init_tt --set student.init_from_target_teacher=true [--set distill.w_feat=0 ...] [--unlabelled 24]
    python benchmarks/student_variant.py --benchmark cls_domain_shift --work /tmp/nnunet_kd_cls_bench_0 --seed 0 \
        --name init_tt --set student.init_from_target_teacher=true
    python benchmarks/student_variant.py --benchmark det_domain_shift --work /tmp/nnunet_kd_det_bench_0 --seed 0 \
        --name init_tt --set student.init_from_target_teacher=true

Writes a copy of the run's shared plans with the settings changed (`student.joint_teacher_plans` = the run's plans),
trains the student through `nnUNetv2_train` (seeded with --seed; skipped when finished), predicts the run's target
test set and records baseline, joint teacher and this student in results/archive/<benchmark>_<arm>+<name>.{json,md}: the same
paired differences to the baseline as the ablation arms (`benchmarks/ablation.py` puts them in its table). Settings
are chosen on the seeds of the choice stage, never on the final run's.

--unlabelled N gives the student (only: the teachers stay as trained) N unlabelled target images, the ones
`domain_shift.py` / `cls_domain_shift.py --unlabelled N` draw after the labelled and test cases, preprocessed as
`nnunet_kd plan --extra-target-images` does; with `--set distill.unlabelled_ratio=...` the student distils on them.
(Detection: run `det_domain_shift.py --unlabelled N` instead.)
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from unittest import mock

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json

from domain_shift import SCENARIOS
from seed_runs import kept_summary, machine, record
from variant_plans import model_folder, only_shared_plans, trainer_env, variant_plans

# benchmark: (task, target dataset id, title, results key)
BENCHMARKS = {"domain_shift": ("seg", 1, "Domain-shift benchmark (segmentation)", "test_dice"),
              "small_lesion": ("seg", 1, "Small-lesion benchmark (segmentation)", "test_dice"),
              "cls_domain_shift": ("cls", 21, "Domain-shift benchmark (classification)", "test_balanced_accuracy"),
              "det_domain_shift": ("det", 41, "Domain-shift benchmark (detection)", "test_froc")}
METRICS = {"test_dice": "Target test-set foreground Dice",
           "test_balanced_accuracy": "Target test-set balanced accuracy",
           "test_froc": "Target test-set FROC score"}
PREDICTIONS = {"cls": ".csv", "det": ".json"}  # the file ending of the run's test predictions, by task


def parse_setting(text: str) -> tuple[str, str, object]:
    """GROUP.KEY=VALUE (VALUE as JSON: 0, 0.5, true, "class") -> (group, key, value)."""
    path, _, value = text.partition("=")
    group, _, key = path.partition(".")
    if not (group and key and value):
        raise SystemExit(f"--set {text}: give GROUP.KEY=VALUE, e.g. distill.w_feat=0")
    try:
        return group, key, json.loads(value)
    except ValueError:
        return group, key, value


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="The run's folder (domain_shift.py's --out).")
    parser.add_argument("--seed", type=int, required=True, help="The run's seed (also the student's).")
    parser.add_argument("--student-seed", type=int, default=None, metavar="S",
                        help="Train the student with seed S instead (another training of the same variant: its own "
                             "model folder, recorded as another run of the run's seed, so the paired statistics "
                             "pool the trainings of each test case).")
    parser.add_argument("--arm", default=None, help="The run's ablation arm (its --tag), if any.")
    parser.add_argument("--name", required=True, help="Name of the variant (results/<benchmark>_<arm>+<name>.*).")
    parser.add_argument("--set", action="append", default=[], metavar="GROUP.KEY=VALUE",
                        help="A student setting of the KD block, e.g. distill.kd_mode=class; repeatable.")
    parser.add_argument("--benchmark", default="domain_shift", choices=list(BENCHMARKS))
    parser.add_argument("--suffix", default="_demo", help="The run's trainer variant. Default: _demo.")
    parser.add_argument("--unlabelled", type=int, default=0, metavar="N",
                        help="Unlabelled target images for the student (see above). Default: 0, the run's own.")
    args = parser.parse_args(argv)
    task, target_id, title, metric = BENCHMARKS[args.benchmark]
    if args.unlabelled and task == "det":
        parser.error("--unlabelled is not available for det_domain_shift: run det_domain_shift.py --unlabelled N")
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[k] = join(os.path.abspath(args.work), k)
    from nnunet_kd.classification.labels import TEST_LABELS_CSV
    from nnunet_kd.core.datasets import dataset_name
    from nnunet_kd.detection.labels import TEST_BOXES_JSON
    from nnunet_kd.report.collect import models_for
    from nnunet_kd.core.tasks import summary_path
    from nnunet_kd.run.test_set import predict_and_score
    target = dataset_name(target_id)
    plans = only_shared_plans(join(os.environ["nnUNet_preprocessed"], target))
    if args.unlabelled:
        add_unlabelled_images(os.path.abspath(args.work), args.benchmark, args.seed, args.unlabelled, target, plans)
    changes = {}
    for group, key, value in map(parse_setting, args.set):
        changes.setdefault(group, {})[key] = value
    student_seed = args.seed if args.student_seed is None else args.student_seed
    variant = variant_plans(target, plans, args.name + ("" if student_seed == args.seed else f"_seed{student_seed}"),
                            changes)
    models = models_for(task)
    trainer = models["student"] + args.suffix
    start = datetime.datetime.now()
    folder = model_folder(target, trainer, variant, "2d")
    if not isfile(join(folder, "fold_0", "checkpoint_final.pth")):
        subprocess.run(["nnUNetv2_train", target, "2d", "0", "-p", variant, "-tr", trainer, "-device", "cpu"],
                       env={**trainer_env(), "nnUNet_KD_SEED": str(student_seed)}, check=True)
    raw = join(os.environ["nnUNet_raw"], target)
    predictions = join(os.path.abspath(args.work), "test_predictions")
    labels = join(raw, {"seg": "labelsTs", "cls": TEST_LABELS_CSV, "det": TEST_BOXES_JSON}[task])
    out = predict_and_score(task, folder, ["0"], "cpu", join(raw, "imagesTs"), labels,
                            join(predictions, f"{trainer}__{variant}"))
    # the run's own test-set summaries: domain_shift.py's folders, the others' prediction files' summaries
    summaries = {label: join(predictions, models[label] + args.suffix, "summary.json") if task == "seg" else
                 summary_path(join(predictions, models[label] + args.suffix + PREDICTIONS[task]))
                 for label in ("dataset-specific (target teacher)", "joint teacher")}
    summaries["student"] = join(out, "summary.json") if task == "seg" else out
    loaded = {label: load_json(path) for label, path in summaries.items()}
    command = "python benchmarks/student_variant.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(),
           "minutes": (datetime.datetime.now() - start).total_seconds() / 60, "command": command,
           "settings": changes, metric: {label: _score(summary) for label, summary in loaded.items()},
           "summaries": {label: kept_summary(summary) for label, summary in loaded.items()}}
    arm = "+".join(a for a in (args.arm, args.name) if a)
    text = record(f"{args.benchmark}_{arm}", run, f"{title}, student variant '{arm}'",
                  {metric: f"{METRICS[metric]} of the baseline, the run's joint teacher and this student, one row per "
                           f"seed; written by `benchmarks/student_variant.py`."})
    print(text)
    return text


def add_unlabelled_images(work: str, benchmark: str, seed: int, n: int, target: str, plans: str) -> None:
    """Draws the run's target again with n unlabelled images (once, under work/unlabelled_raw/seed<seed>_<n>; the
    run's raw data stays as it is), checks that its labelled cases are the run's, and preprocesses the unlabelled ones
    into the target's unlabelled folder unless they are there."""
    import numpy as np
    import SimpleITK as sitk
    from nnunet_kd.segmentation import synthetic
    from nnunet_kd.planning.unlabelled import find_cases, preprocess_unlabelled, unlabelled_folder, \
        unlabelled_identifiers
    if benchmark == "cls_domain_shift":
        from cls_domain_shift import benchmark_specs
        from nnunet_kd.classification.synthetic import write_cls_dataset
        spec, write = benchmark_specs()[0], write_cls_dataset
    else:
        generator = next(g for g, name, _, _ in SCENARIOS.values() if name == benchmark)
        spec, write = getattr(synthetic, generator)()[0], synthetic.write_dataset
    spec.num_unlabelled = n
    drawn = join(work, "unlabelled_raw", f"seed{seed}_{n}", f"Dataset{spec.dataset_id:03d}_{spec.name}")
    if not os.path.isdir(drawn):
        with mock.patch.dict(os.environ, {"nnUNet_preprocessed": "", "nnUNet_results": ""}):  # not one of the run's
            write(os.path.dirname(drawn), spec, seed=seed)
    raw = join(os.environ["nnUNet_raw"], target)
    cases = sorted(os.listdir(join(raw, "imagesTr")))
    if cases != sorted(os.listdir(join(drawn, "imagesTr"))):
        raise SystemExit(f"{join(raw, 'imagesTr')} holds other cases than the {benchmark} target drawn with seed "
                         f"{seed}: give the run's --seed and --benchmark.")
    for case in cases:
        if not np.array_equal(*(sitk.GetArrayFromImage(sitk.ReadImage(join(f, "imagesTr", case)))
                                for f in (raw, drawn))):
            raise SystemExit(f"{join(raw, 'imagesTr', case)} differs from the {benchmark} target drawn with seed "
                             f"{seed}: give the run's --seed and --benchmark.")
    preprocessed = join(os.environ["nnUNet_preprocessed"], target)
    p, dataset_json = load_json(join(preprocessed, plans + ".json")), load_json(join(preprocessed, "dataset.json"))
    folder = unlabelled_folder(preprocessed, p["configurations"]["2d"]["data_identifier"])
    have = len(unlabelled_identifiers(folder))
    if have not in (0, n):
        raise SystemExit(f"{folder} holds {have} unlabelled images, not {n}: give --unlabelled {have}.")
    preprocess_unlabelled(find_cases(join(drawn, "imagesUnlabelled"), dataset_json), p, "2d", dataset_json, folder)


def _score(summary: dict) -> float:
    """Foreground Dice of a segmentation summary, balanced accuracy of a classification one, FROC of a detection one."""
    if "foreground_mean" in summary:
        return summary["foreground_mean"]["Dice"]
    return summary["balanced_accuracy"] if "balanced_accuracy" in summary else summary["froc"]


if __name__ == "__main__":
    main()
