"""Does distillation help? The demo benchmark with longer training, one seed per invocation.

    python benchmarks/domain_shift.py --seed 0 [--suffix _bench] [--out /tmp/kd_bench_0]

Generates the demo data with this seed (and seeds training with it), runs the whole pipeline on CPU, predicts the
held-out target test set with every model and appends the test-set Dice to benchmarks/results/domain_shift.json;
benchmarks/results/domain_shift.md is rewritten from it (mean +/- std per model once 3 seeds exist).
"""
import argparse
import datetime
import os
import shlex
import sys

from seed_runs import machine, record

TITLE = "Domain-shift benchmark (segmentation demo data)"
METRICS = {"test_dice": "Target test-set foreground Dice (nnU-Net's `compute_metrics_on_folder`) of every model, one row "
                        "per seed; written by `benchmarks/domain_shift.py`."}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_bench", help="Trainer variant. Default: _bench (40 x 40 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_bench_<seed>")
    args = parser.parse_args(argv)
    os.environ["nnUNet_KD_SEED"] = str(args.seed)
    from nnunet_kd.demo import demo
    start = datetime.datetime.now()
    report = demo(args.out or f"/tmp/nnunet_kd_bench_{args.seed}", seed=args.seed, suffix=args.suffix)
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "minutes": minutes,
           "command": "python benchmarks/domain_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "test_dice": {label: (m["test"] or {}).get("foreground") for label, m in report["models"].items()}}
    print(record("domain_shift", run, TITLE, METRICS))


if __name__ == "__main__":
    main()
