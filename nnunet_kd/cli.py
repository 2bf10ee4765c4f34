"""`nnunet_kd`: the command line of the plugin (argparse, nnU-Net style)."""
import argparse
import contextlib
import os
import shlex
import subprocess
import sys

from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError


def _trainer_path(_args) -> None:
    from nnunet_kd import ext_trainer_value
    print(ext_trainer_value(os.environ.get("nnUNet_extTrainer", "")))


def _json_arg(value: str, flag: str) -> dict:
    from nnunet_kd.core.files import parse_json_object, read_json_object
    if os.path.isfile(value):
        return read_json_object(value, f"{flag} {value}")
    if value.endswith(".json") and not value.lstrip().startswith("{"):
        raise KDError(f"{flag} {value}: the file {os.path.abspath(value)} does not exist. Give the path of a JSON "
                      f"file or the JSON itself, e.g. {flag} '{{\"3\": {{\"T1\": \"mri\"}}}}'.")
    return parse_json_object(value, f"{flag} (JSON, or a path to a JSON file)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    from nnunet_kd import __version__
    try:
        nnunet = version("nnunetv2")
    except PackageNotFoundError:
        nnunet = "not installed"
    return f"nnunet_kd {__version__} (nnunetv2 {nnunet})"


def _dataset(value: str):
    """A dataset id (as int) or name, as nnU-Net's commands take them."""
    return int(value) if value.isdigit() else value


def _no_p(args) -> None:
    if args.p is not None:
        raise KDError(f"-p {args.p}: in `nnunet_kd {args.command}`, -p is not the plans to train with (as in "
                      f"nnUNetv2_train). To copy an existing plans file of the target, such as nnUNetPlans, use "
                      f"--from-plans {args.p}; an experiment's shared plans name (nnUNetPlans_kd_*) follows from the "
                      f"other arguments: rerun with the arguments that made it.")


@contextlib.contextmanager
def _stdout_to_stderr():
    """Everything printed to stdout, by Python or by child processes, goes to stderr within the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _plan_request(args):
    from nnunet_kd.planning.request import PlanRequest
    _no_p(args)
    return PlanRequest.from_args(args, _json_arg(args.channel_map, "--channel-map") if args.channel_map else None)


def _plan(args) -> None:
    from nnunetv2.configuration import default_num_processes
    from nnunet_kd.planning.shared import plan
    from nnunet_kd.run.pipeline import RunSpec, build_stages
    request = _plan_request(args)
    with _stdout_to_stderr() if args.quiet else contextlib.nullcontext():  # nnU-Net prints
        shared = plan(request, num_processes=args.np or default_num_processes, verbose=not args.quiet)
    out = sys.stderr if args.quiet else sys.stdout
    print(f"Shared plans: {shared.name}. Train fold 0 with these (after export nnUNet_extTrainer=$(nnunet_kd "
          f"trainer-path); folds 1-4 alike):", file=out)
    for c in shared.configurations:
        spec = RunSpec(request, configuration=c, folds=["0"], device="cuda")
        for stage in build_stages(spec, shared.name, shared.target.name, shared.source_names, shared.existing)[1:]:
            print("  " + " ".join(stage.argv[:-2]), file=out)  # without "-device cuda": nnU-Net's default
    print(shared.name)


def _report(args) -> None:
    from nnunet_kd.core.datasets import dataset_name
    from nnunet_kd.report.collect import SHORT_LABELS, models_for, with_existing_target_teacher
    from nnunet_kd.report.tables import report
    results = os.environ.get("nnUNet_results")
    if not results:
        raise KDError("nnUNet_results is not set: export it to the folder holding the trained models.")
    models = with_existing_target_teacher({label: trainer + args.suffix for label, trainer in models_for(args.task).items()},
                                          results, dataset_name(args.t), args.p, args.c)
    test_folders = {}
    for item in args.test_dir:
        label, sep, folder = item.partition("=")
        label = SHORT_LABELS.get(label, label)
        if not sep or label not in models:
            raise KDError(f"--test-dir {item!r} must be LABEL=FOLDER with LABEL one of {list(SHORT_LABELS)} (or "
                          f"{list(models)}).")
        test_folders.setdefault(label, []).append(folder)
    report(results, dataset_name(args.t), args.p, args.c, models, test_folders, args.o)


def _run_spec(args, request, configuration: str):
    from nnunet_kd.run.pipeline import RunSpec
    return RunSpec(request, configuration=configuration, folds=args.f, suffix=args.suffix, device=args.device,
                   num_gpus=args.num_gpus, with_baselines=args.with_baselines, npz=args.npz)


def _run(args) -> None:
    from nnunet_kd.run.pipeline import Pipeline
    from nnunet_kd.report.tables import report
    from nnunet_kd.run.test_set import check_test_inputs
    if bool(args.test_images) != bool(args.test_labels):
        raise KDError("--test-images and --test-labels go together: the held-out images and their labels.")
    if args.test_images:
        check_test_inputs(args.task, args.test_images, args.test_labels)
    if (args.submit or args.sbatch_args is not None or args.sbatch_train_args is not None) and not args.slurm:
        raise KDError("--submit, --sbatch-args and --sbatch-train-args go with --slurm.")
    if args.slurm and args.dry_run:
        raise KDError("--slurm writes the submission script instead of running; leave out --dry-run.")
    if args.slurm and len(set(args.c)) > 1:
        raise KDError(f"--slurm writes one script per configuration: run it once per configuration (-c "
                      f"{' '.join(args.c)} plans them together only without --slurm).")
    request, pipelines = _plan_request(args), []
    for c in request.configurations:  # one request, prepared once
        pipelines.append(Pipeline(_run_spec(args, request, c), force=args.force, verbose=args.verbose,
                                  shared=pipelines[0].shared if pipelines else None))
    if args.dry_run:
        print("\n".join(dict.fromkeys(line for p in pipelines for line in p.dry_run_lines())))  # one plan stage
        return
    if args.slurm:
        _slurm(pipelines[0], pipelines[0].spec, args)
        return
    for pipeline in pipelines:  # the plan stage of the first plans every configuration; the others reuse it
        c = pipeline.spec.configuration
        pipeline.run()
        models = pipeline.models()
        results = pipeline.env["nnUNet_results"]
        out = os.path.join(results, pipeline.target, f"nnunet_kd_test_{pipeline.plans_name}_{c}")
        tests = pipeline.test_set(args.test_images, args.test_labels, out) if args.test_images else {}
        report(results, pipeline.target, pipeline.plans_name, c, models, tests)


def _slurm(pipeline, spec, args) -> None:
    from nnunet_kd.run.pipeline import run_argv
    from nnunet_kd.run.slurm import write_script
    command = run_argv(spec) + (["--test-images", os.path.abspath(args.test_images), "--test-labels",
                                 os.path.abspath(args.test_labels)] if args.test_images else [])
    path = write_script(pipeline, command, shlex.split(args.sbatch_args or ""), shlex.split(args.sbatch_train_args or ""))
    print(f"SLURM submission script: {path}")
    if not args.submit:
        print(f"Submit it with: bash {shlex.quote(path)}")
        return
    proc = subprocess.run(["bash", path])
    if proc.returncode != 0:
        raise KDError(f"bash {path} failed with exit status {proc.returncode} (sbatch's message is above); jobs "
                      f"submitted before it stay queued: see squeue.")


def _demo(args) -> None:
    from nnunet_kd.run.demo import demo
    demo(args.out, seed=args.seed, device=args.device, verbose=args.verbose)


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _add_dataset_args(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-pl", default="ExperimentPlanner",
                   help="nnU-Net experiment planner for the target, e.g. nnUNetPlannerResEncM. Default: ExperimentPlanner.")
    g.add_argument("--from-plans", default=None, metavar="PLANS",
                   help="Copy this existing plans file of the target (e.g. nnUNetPlans, made by "
                        "nnUNetv2_plan_and_preprocess) instead of planning: it is copied under the shared name with the "
                        "same data_identifier, so nothing is preprocessed again.")
    p.add_argument("-p", default=None, help=argparse.SUPPRESS)  # nnU-Net's meaning differs: a clear error
    p.add_argument("--plans-name", default=None, metavar="NAME",
                   help="Name of the shared plans (as nnU-Net's -overwrite_plans_name). Default: nnUNetPlans_kd_<hash "
                        "of the arguments and settings>. A name whose plans exist with another KD block is refused.")
    p.add_argument("--preset", default="default",
                   help="KD preset from nnunet_kd/presets (default, tiny) or a path to a JSON file. Default: default.")
    p.add_argument("--channel-map", default=None,
                   help='JSON (string or file) mapping source id -> {target channel: source channel}, e.g. '
                        '\'{"3": {"T1": "t1_native"}}\'. Without it channels are matched by name, case-insensitive.')
    p.add_argument("--derived-id", type=int, nargs="+", default=None,
                   help="Dataset ids for the channel-mapped copies of sources, in -s order. Default: the lowest free ids from 901 (reused on reruns).")
    p.add_argument("--task", default=tasks.DEFAULT_TASK, choices=tasks.names(),
                   help="; ".join(f"{t.name}: {t.description}" for t in tasks.all_tasks())
                        + f". Default: {tasks.DEFAULT_TASK}.")
    p.add_argument("--target-teacher", default=None, metavar="MODEL_FOLDER",
                   help="Use this trained nnU-Net model of the target as the target teacher instead of training one "
                        "(e.g. $nnUNet_results/Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres: each fold serves "
                        "the student's fold of the same number; a fold_X folder serves every fold). It must have been "
                        "trained on the input the shared plans make: plan with --from-plans of its plans.")
    p.add_argument("--source-teacher", default=[], action="append", metavar="MODEL_FOLDER",
                   help="Use this trained nnU-Net model of one of the sources (its fold_all, or the fold_X folder "
                        "given) as that source's teacher instead of training a domain-adversarial one. Repeat for "
                        "several sources.")
    p.add_argument("--extra-target-images", default=None, metavar="DIR",
                   help="Opt-in: a folder of unlabelled target images (nnU-Net naming CASE_0000.ext) that the source "
                        "teachers' domain loss uses beside the labelled target training images, and the student's "
                        "distillation on unlabelled images (distill.unlabelled_ratio in the KD block).")


def add_predict_args(p, output: str, task: str, truth: str) -> None:
    """The options every task's predict command shares."""
    p.add_argument("-i", required=True, help="Folder of images named CASE_0000.ext (one file per channel).")
    p.add_argument("-o", required=True, help=f"Output {output} file.")
    p.add_argument("-m", required=True, help=f"Model folder (TRAINER__PLANS__CONFIGURATION) of a {task} trainer.")
    p.add_argument("-f", nargs="+", default=None,
                   help="Folds to ensemble. Default: every fold_* of the model folder that has the checkpoint.")
    p.add_argument("-c", default=None, help="Configuration. Default: read from the model folder's name.")
    p.add_argument("-chk", default="checkpoint_final.pth", help="Checkpoint name. Default: checkpoint_final.pth.")
    p.add_argument("--truth", default=None, metavar="FILE",
                   help=f"The true {truth} of the images: also write <output>_summary.json with every case's result, "
                        "for `nnunet_kd report --test-dir LABEL=FILE`.")
    p.add_argument("-device", default="cuda" if cuda_available() else "cpu", choices=["cpu", "cuda"],
                   help="Default: cuda when available, else cpu.")


EXAMPLES = {
    "plan": "Example: P=$(nnunet_kd plan -t 1 -s 2 3 -c 3d_fullres --quiet); nnUNetv2_train 1 3d_fullres 0 -p $P",
    "report": "Example: nnunet_kd report -t 1 -p nnUNetPlans_kd_1a2b3c4d -c 3d_fullres",
    "run": "Example: nnunet_kd run -t 1 -s 2 3 -c 3d_fullres -f 0 1 2 3 4 --with-baselines --dry-run",
    "demo": "Example: nnunet_kd demo --out ~/nnunet_kd_demo",
}


def _add_target_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "-d", dest="t", type=_dataset, required=True,
                   help="Target dataset id or name (1 or Dataset001_NAME); -d as in nnU-Net's commands.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnunet_kd",
        description="Multi-dataset cross-domain knowledge distillation for nnU-Net v2. "
                    "Run `nnunet_kd COMMAND -h` for the options of a command.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("trainer-path", help="Print the value to export as nnUNet_extTrainer.",
                       description="Print the folder holding the plugin's trainers, followed by the folders already "
                                   "in $nnUNet_extTrainer (nnU-Net reads a path list, so your own trainers stay "
                                   "found).", epilog="Example: export nnUNet_extTrainer=$(nnunet_kd trainer-path)")
    p.set_defaults(func=_trainer_path)

    p = sub.add_parser("plan", epilog=EXAMPLES["plan"], help="Create shared plans for a target and its source datasets.",
                       description="Fingerprint target and sources, plan the target with nnU-Net's planner (or reuse "
                                   "an existing target plans file), transfer the plans to every source under one shared "
                                   "plans name with the KD block, and preprocess. The last line printed is the shared "
                                   "plans name. Rerunning with the same arguments verifies and reuses.")
    _add_target_arg(p)
    p.add_argument("-s", type=_dataset, nargs="+", required=True, help="Source dataset ids or names.")
    p.add_argument("-c", nargs="+", default=["3d_fullres"],
                   help="Configurations: 2d, 3d_fullres, 3d_lowres. Default: 3d_fullres.")
    _add_dataset_args(p)
    p.add_argument("-np", type=int, default=None, help="Processes for fingerprinting and preprocessing. "
                                                       "Default: nnUNet_def_n_proc.")
    p.add_argument("--quiet", action="store_true",
                   help="Print only the shared plans name on stdout (for P=$(nnunet_kd plan ... --quiet)); the "
                        "training commands go to stderr.")
    p.set_defaults(func=_plan)

    p = sub.add_parser("report", epilog=EXAMPLES["report"], help="Tabulate every model of a KD experiment and its paired difference to the "
                                      "baseline.",
                       description="Collect nnU-Net's fold_*/validation/summary.json of the target teacher "
                                   "(nnUNetTrainer, the baseline), multi-head, joint teacher and student of the target "
                                   "(and test-set summaries given with --test-dir); compare every model with the "
                                   "baseline on the same cases (mean difference, 95% paired-bootstrap CI, p-value, "
                                   "verdict; per class for segmentation) and write report.md (printed), report.json "
                                   "and report.png. Models not trained yet are listed with a note.")
    _add_target_arg(p)
    p.add_argument("-p", required=True, help="Shared plans name (printed by `nnunet_kd plan`).")
    p.add_argument("-c", required=True, help="Configuration, e.g. 3d_fullres.")
    p.add_argument("--suffix", default="", help="Appended to every trainer name, e.g. _tiny. Default: none.")
    p.add_argument("--task", default=tasks.DEFAULT_TASK, choices=tasks.names(),
                   help="The experiment's task, which names its trainers and measure: "
                        + "; ".join(f"{t.name}: {t.metric}" for t in tasks.all_tasks())
                        + f". Default: {tasks.DEFAULT_TASK}.")
    p.add_argument("-o", default=None, help="Output folder. Default: "
                                            "$nnUNet_results/<target>/nnunet_kd_report_<plans>_<config>.")
    p.add_argument("--test-dir", nargs="+", action="extend", default=[], metavar="LABEL=FOLDER|FILE",
                   help="Folder with the summary.json of a model's test-set predictions (nnU-Net's "
                        "compute_metrics_on_folder), or a summary file (predict-cls/predict-det --truth), LABEL one "
                        "of: baseline, multihead, joint, student. "
                        "Repeat a LABEL for several runs (seeds, or folds predicting the test set one by one); "
                        "run k of a model is paired with run k of the baseline.")
    p.set_defaults(func=_report)

    p = sub.add_parser("run", epilog=EXAMPLES["run"], help="Run the whole pipeline: plan, teachers, joint teacher, student, report.",
                       description="plan -> source teachers -> target teachers -> joint teacher -> student "
                                   "(-> multi-head baseline) for the given folds, then the report. Finished stages are "
                                   "skipped, interrupted ones resume with nnU-Net's --c; --dry-run prints the commands "
                                   "(the environment once, then one line per stage: stage, dependencies, state, "
                                   "command) for cluster jobs.")
    _add_target_arg(p)
    p.add_argument("-s", type=_dataset, nargs="+", required=True, help="Source dataset ids or names.")
    p.add_argument("-c", nargs="+", default=["3d_fullres"],
                   help="Configurations: 2d, 3d_fullres, 3d_lowres, planned together and trained one after another. "
                        "Default: 3d_fullres.")
    p.add_argument("-f", nargs="+", default=["0"],
                   help="Folds of the target, separated by spaces: 0 1 2 3 4 or all (more folds only with your own "
                        "splits_final.json). Default: 0.")
    _add_dataset_args(p)
    from nnunet_kd.settings import VARIANTS, describe_schedule
    p.add_argument("--suffix", default="", choices=[""] + list(VARIANTS),
                   help="Short-trainer variant for quick runs: " + "; ".join(
                       f"{k}: {describe_schedule(k)}" for k in VARIANTS) +
                   ". Default: none (nnU-Net's 1000 epochs x 250 iterations).")
    p.add_argument("--device", "-device", default="cuda", choices=["cpu", "cuda"],
                   help="Default: cuda (checked before anything runs).")
    p.add_argument("--num-gpus", "-num_gpus", type=int, default=1,
                   help="GPUs per training (nnU-Net's -num_gpus, CUDA only). Default: 1.")
    p.add_argument("--with-baselines", action="store_true", help="Also train the multi-head baseline.")
    p.add_argument("--npz", action="store_true",
                   help="nnU-Net's --npz for every stage: the final validation also saves the softmax, which "
                        "nnUNetv2_find_best_configuration and ensembling need (finished stages rerun only their "
                        "validation). Segmentation only.")
    p.add_argument("--test-images", default=None, metavar="DIR",
                   help="Held-out target images (CASE_0000.ext): after training, every model predicts them (its folds "
                        "ensembled) and the report gets test-set columns. Needs --test-labels.")
    p.add_argument("--test-labels", default=None, metavar="PATH",
                   help="Their labels: a folder of label files (seg), a CSV case,class (cls) or a boxes JSON (det). "
                        "Predictions go to $nnUNet_results/<target>/nnunet_kd_test_<plans>_<configuration>/.")
    p.add_argument("--dry-run", action="store_true", help="Print the commands instead of running them.")
    p.add_argument("--force", action="store_true",
                   help="Retrain finished stages whose KD block or teachers changed (old fold folders are kept).")
    p.add_argument("--verbose", action="store_true",
                   help="Stream every stage's own output (nnU-Net's) to the console instead of one live line per stage; "
                        "it always goes to the stage's log file too.")
    p.add_argument("--slurm", action="store_true",
                   help="Write a SLURM submission script instead of running: one job per unfinished stage with "
                        "--dependency=afterok on the jobs it trains from, then a job running this `nnunet_kd run` for "
                        "the records and the report. Written to $nnUNet_results/<target>/nnunet_kd_slurm_<plans>_<c>.sh.")
    p.add_argument("--sbatch-args", default=None, metavar="\"OPTIONS\"",
                   help='sbatch options for every job, e.g. "--account=lab --time=24:00:00".')
    p.add_argument("--sbatch-train-args", default=None, metavar="\"OPTIONS\"",
                   help='sbatch options for the training jobs only, e.g. "--partition=gpu --gres=gpu:1" (planning '
                        'and the report job run on CPU).')
    p.add_argument("--submit", action="store_true", help="With --slurm: also run the script (calls sbatch).")
    p.set_defaults(func=_run)

    p = sub.add_parser("demo", epilog=EXAMPLES["demo"], help="Generate the built-in demo benchmark and run the whole pipeline on it (CPU).",
                       description="Writes a small multi-domain benchmark (a target with few labelled cases and a "
                                   "test set, two larger sources from other scanners) in nnU-Net raw format under "
                                   "--out, sets the nnU-Net folders there, runs plan, teachers, joint teacher, student "
                                   "and multi-head with the _demo trainers, predicts the test set with every model and "
                                   "prints the results table. About 15 minutes on 2 CPU cores.")
    p.add_argument("--out", default="nnunet_kd_demo", help="Folder for data, models and report. Default: nnunet_kd_demo")
    p.add_argument("--seed", type=int, default=0, help="Seed of the generated data. Default: 0.")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="Default: cpu.")
    p.add_argument("--verbose", action="store_true",
                   help="Stream every stage's own output (nnU-Net's) to the console instead of one live line per stage; "
                        "it always goes to the stage's log file too.")
    p.set_defaults(func=_demo)

    for task in tasks.all_tasks():
        if task.add_commands:
            task.add_commands(sub)
    for p in (parser, *sub.choices.values()):  # "-d 1" must never be taken for a prefix of "-device"
        p.allow_abbrev = False
    return parser


def _joined_values(argv: list[str]) -> list[str]:
    """FLAG VALUE as FLAG=VALUE for the options whose value starts with '-' (argparse takes such a value only joined):
    --sbatch-args "--time=1:00:00", --sbatch-train-args "--gres=gpu:1"."""
    out = []
    for a in argv:
        if out and out[-1] in ("--sbatch-args", "--sbatch-train-args"):
            out[-1] += "=" + a
        else:
            out.append(a)
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(_joined_values(sys.argv[1:] if argv is None else argv))
    try:
        args.func(args)
    except KDError as e:
        print(f"nnunet_kd {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
