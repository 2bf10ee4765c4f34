"""Does distillation help a classifier? The generated classification benchmark, one seed per invocation.

    python benchmarks/cls_domain_shift.py --seed 0 [--suffix _demo] [--out /tmp/nnunet_kd_cls_bench_0] [--unlabelled 60]

Generates the classification benchmark with this seed (a target with few labelled cases, a held-out test set and 60
unlabelled images, a hospital's archive three times the labelled set; two larger sources from other scanners, one with
another class set), runs `nnunet_kd run --task cls` on CPU, predicts the target's test set with every model (`nnunet_kd
predict-cls`) and appends the test-set balanced accuracy to benchmarks/results/archive/cls_domain_shift.json with every case's
prediction; benchmarks/results/archive/cls_domain_shift.md (mean +/- std over seeds, paired differences to the baseline over
the pooled test cases of all seeds) and the "cls" entry of benchmarks/results/archive/summary.json are rewritten from it.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys

from seed_runs import add_arm_arguments, arm_argv, kept_summary, machine, model_folder, nnunet_env, record_arm

TITLE = "Domain-shift benchmark (classification)"
METRICS = {"test_balanced_accuracy": "Target test-set balanced accuracy (scikit-learn) of every model, one row per "
                                     "seed; written by `benchmarks/cls_domain_shift.py`."}


def benchmark_specs() -> list:
    """The benchmark's datasets: the target (20 labelled cases, 60 test cases) and two sources of 60 cases."""
    from nnunet_kd.classification.synthetic import cls_benchmark
    return cls_benchmark(n_target=20, n_source=60, n_test=60)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_demo", help="Trainer variant. Default: _demo (20 x 30 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_cls_bench_<seed>[_<tag>]")
    add_arm_arguments(parser)
    parser.set_defaults(unlabelled=60)
    args = parser.parse_args(argv)
    from nnunet_kd.classification.predict import summary_path
    from nnunet_kd.classification.synthetic import TEST_LABELS_CSV, write_cls_dataset
    from nnunet_kd.report.collect import models_for
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_cls_bench_{args.seed}" + (f"_{args.tag}" if args.tag else ""))
    specs = benchmark_specs()
    specs[0].num_unlabelled = args.unlabelled
    env = nnunet_env(out, args.seed, specs, write_cls_dataset)
    unlabelled = os.path.join(env["nnUNet_raw"], "Dataset021_ClsTarget", "imagesUnlabelled")
    start = datetime.datetime.now()
    subprocess.run(["nnunet_kd", "run", "--task", "cls", "-t", "21", "-s", "22", "23", "-c", "2d", "-f", "0",
                    "--suffix", args.suffix, *arm_argv(args, unlabelled), "--device", "cpu", "--with-baselines"],
                   env=env, check=True, cwd=out)
    target = os.path.join(env["nnUNet_raw"], "Dataset021_ClsTarget")
    scores, summaries = {}, {}
    for label, trainer in models_for("cls").items():
        results = os.path.join(env["nnUNet_results"], "Dataset021_ClsTarget")
        folder = model_folder(results, trainer + args.suffix)
        csv = os.path.join(out, "test_predictions", f"{trainer}{args.suffix}.csv")
        subprocess.run(["nnunet_kd", "predict-cls", "-i", os.path.join(target, "imagesTs"), "-o", csv, "-m", folder,
                        "-f", "0", "-device", "cpu", "--truth", os.path.join(target, TEST_LABELS_CSV)],
                       env=env, check=True, cwd=out, stdout=subprocess.DEVNULL)
        with open(summary_path(csv)) as f:
            summary = json.load(f)
        scores[label], summaries[label] = summary["balanced_accuracy"], kept_summary(summary)
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "command": "python benchmarks/cls_domain_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "test_balanced_accuracy": scores, "summaries": summaries}
    print(record_arm("cls_domain_shift", args.tag, run, TITLE, METRICS,
                     ("cls", "test_balanced_accuracy", "balanced accuracy")))


if __name__ == "__main__":
    main()
