"""Does distillation help a detector? The generated detection benchmark, one seed per invocation.

    python benchmarks/det_domain_shift.py --seed 0 [--suffix _demo] [--out /tmp/nnunet_kd_det_bench_0]

Generates the detection benchmark with this seed (a target with few labelled images and a held-out test set, made hard
by a low-contrast, noisy, blurred scanner; two larger sources from other scanners, one with nodules only), runs
`nnunet_kd run --task det` on CPU, predicts the target's test images with every model (`nnunet_kd predict-det`) and
appends the test-set FROC score, COCO mAP and mAP@0.5 and every image's boxes and predictions to
benchmarks/results/archive/det_domain_shift.json; benchmarks/results/archive/det_domain_shift.md (mean +/- std over seeds, paired
differences to the baseline over the pooled test images of all seeds) and the "det" entry of
benchmarks/results/archive/summary.json are rewritten from it.
"""
import argparse
import dataclasses
import datetime
import json
import os
import shlex
import subprocess
import sys

from seed_runs import add_arm_arguments, arm_argv, kept_summary, machine, model_folder, nnunet_env, record_arm

TITLE = "Domain-shift benchmark (detection)"
METRICS = {"test_froc": "Target test-set FROC score (IoU 0.1; mean sensitivity at 1/8-8 false positives per image) of "
                        "every model, one row per seed; written by `benchmarks/det_domain_shift.py`.",
           "test_map": "COCO mAP@[.5:.95] (pycocotools) on the same predictions.",
           "test_map_50": "COCO mAP@0.5 on the same predictions."}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_demo", help="Trainer variant. Default: _demo (20 x 30 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_det_bench_<seed>[_<tag>]")
    parser.add_argument("--sizes", type=int, nargs=3, default=(10, 40, 30), metavar=("TARGET", "SOURCE", "TEST"),
                        help="Labelled target images, images per source, target test images. Default: 10 40 30.")
    add_arm_arguments(parser)
    args = parser.parse_args(argv)
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.classification.predict import summary_path
    from nnunet_kd.detection.labels import TEST_BOXES_JSON
    from nnunet_kd.detection.synthetic import det_benchmark, write_det_dataset
    from nnunet_kd.report.collect import models_for
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_det_bench_{args.seed}" + (f"_{args.tag}" if args.tag else ""))
    specs = det_benchmark(n_target=args.sizes[0], n_source=args.sizes[1], n_test=args.sizes[2])
    # with det_benchmark's own target scanner every model finds every box (test FROC and mAP@0.5 of 1.0)
    hard = Scanner(background=0.1, organ=0.4, lesion=0.6, noise=0.08, blur=0.6)
    specs[0] = dataclasses.replace(specs[0], scanner=hard, num_unlabelled=args.unlabelled)
    env = nnunet_env(out, args.seed, specs, write_det_dataset)
    unlabelled = os.path.join(env["nnUNet_raw"], "Dataset041_DetTarget", "imagesUnlabelled")
    start = datetime.datetime.now()
    subprocess.run(["nnunet_kd", "run", "--task", "det", "-t", "41", "-s", "42", "43", "-c", "2d", "-f", "0",
                    "--suffix", args.suffix, *arm_argv(args, unlabelled), "--device", "cpu"],
                   env=env, check=True, cwd=out)
    target = os.path.join(env["nnUNet_raw"], "Dataset041_DetTarget")
    results = os.path.join(env["nnUNet_results"], "Dataset041_DetTarget")
    scores, summaries = {"test_froc": {}, "test_map": {}, "test_map_50": {}}, {}
    for label, trainer in models_for("det").items():
        folder = model_folder(results, trainer + args.suffix)
        path = os.path.join(out, "test_predictions", f"{trainer}{args.suffix}.json")
        subprocess.run(["nnunet_kd", "predict-det", "-i", os.path.join(target, "imagesTs"), "-o", path, "-m", folder,
                        "-f", "0", "-device", "cpu", "--truth", os.path.join(target, TEST_BOXES_JSON)],
                       env=env, check=True, cwd=out, stdout=subprocess.DEVNULL)
        with open(summary_path(path)) as f:
            summary = json.load(f)
        summaries[label] = kept_summary(summary)
        for key, metric in (("test_froc", "froc"), ("test_map", "mAP"), ("test_map_50", "mAP_50")):
            scores[key][label] = summary[metric]
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "command": "python benchmarks/det_domain_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           **scores, "summaries": summaries}
    print(record_arm("det_domain_shift", args.tag, run, TITLE, METRICS, ("det", "test_froc", "FROC")))


if __name__ == "__main__":
    main()
