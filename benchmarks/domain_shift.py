"""Does distillation help? The demo benchmark with longer training, one seed per invocation.

    python benchmarks/domain_shift.py --seed 0 [--suffix _bench] [--out /tmp/kd_bench_0]

Generates the demo data with this seed (and seeds training with it), runs the whole pipeline on CPU, predicts the
held-out target test set with every model and appends the test-set Dice to benchmarks/results/domain_shift.json;
benchmarks/results/domain_shift.md is rewritten from it (mean +/- std per model once 3 seeds exist).
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import sys

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}, Python {platform.python_version()}"


def render(runs: list) -> str:
    models = list(runs[0]["test_dice"])
    lines = ["# Domain-shift benchmark (segmentation demo data)", "",
             "Target test-set foreground Dice (nnU-Net's `compute_metrics_on_folder`) of every model, one row per "
             "seed; written by `benchmarks/domain_shift.py`.", "",
             "| seed | date | machine | minutes | " + " | ".join(models) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in models) + " |"]
    for r in runs:
        lines.append(f"| {r['seed']} | {r['date']} | {r['machine']} | {r['minutes']:.0f} | "
                     + " | ".join(f"{r['test_dice'][m]:.4f}" if r["test_dice"][m] is not None else "-" for m in models)
                     + " |")
    if len({r["seed"] for r in runs}) >= 3:
        cells = []
        for m in models:
            v = np.array([r["test_dice"][m] for r in runs if r["test_dice"][m] is not None])
            cells.append(f"{v.mean():.4f} +/- {v.std():.4f}")
        lines.append("| mean +/- std | | | | " + " | ".join(cells) + " |")
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in runs]
    notes = [n for r in runs for n in r.get("notes", [])]
    if notes:
        lines += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--suffix", default="_bench", help="Trainer variant. Default: _bench (50 x 60 iterations).")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_bench_<seed>")
    args = parser.parse_args(argv)
    os.environ["nnUNet_KD_SEED"] = str(args.seed)
    from nnunet_kd.demo import demo
    start = datetime.datetime.now()
    report = demo(args.out or f"/tmp/nnunet_kd_bench_{args.seed}", seed=args.seed, suffix=args.suffix)
    minutes = (datetime.datetime.now() - start).total_seconds() / 60
    run = {"seed": args.seed, "date": start.strftime("%Y-%m-%d"), "machine": _machine(), "minutes": minutes,
           "command": "python benchmarks/domain_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "test_dice": {label: (m["test"] or {}).get("foreground") for label, m in report["models"].items()}}
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "domain_shift.json")
    runs = json.load(open(path)) if os.path.isfile(path) else []
    runs = [r for r in runs if not (r["seed"] == run["seed"] and r["command"] == run["command"])] + [run]
    with open(path, "w") as f:
        json.dump(runs, f, indent=1)
    with open(os.path.join(RESULTS, "domain_shift.md"), "w") as f:
        f.write(render(runs))
    print(render(runs))


if __name__ == "__main__":
    main()
