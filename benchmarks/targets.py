"""Issue 14's result targets, checked against benchmarks/results/archive/summary.json: met or missed, by how much, and the
ablation arms tried on each benchmark.

    python benchmarks/targets.py [--results benchmarks/results]

Writes results/archive/targets.md and prints it. The targets: no measure (class, FROC, mAP@0.5) of the student with its paired
interval to the baseline entirely below 0; segmentation and classification students above the baseline (interval
above 0) and keeping at least 0.7 of the joint teacher's gain; the detection student's FROC and mAP@0.5 intervals not
below 0. The cost target (student epoch with unlabelled KD at most 1.5x) is measured by epoch_overhead.py.
"""
import argparse
import json
import os

from ablation import arms
from seed_runs import RESULTS

BENCHMARKS = {"seg": "domain_shift", "seg_small_lesion": "small_lesion", "cls": "cls_domain_shift",
              "det": "det_domain_shift"}
RETENTION = 0.7


def check(task: str, entry: dict) -> list:
    """[(target, value, met, missed by)] of a task's summary.json entry; missed by is None where met or undefined."""
    rows = []
    below = entry["student_below_baseline"]
    by_measure = entry["student_by_measure"]
    rows.append(("no student measure below the baseline (CI under 0)",
                 ", ".join(f"{m} {by_measure[m]['ci95'][1]:+.4f}" for m in below) or "none below",
                 not below, max((-by_measure[m]["ci95"][1] for m in below), default=None)))
    if task == "det":
        for m in ("FROC", "mAP@0.5"):
            low, high = by_measure[m]["ci95"]
            rows.append((f"student {m} interval not below 0", f"{by_measure[m]['mean']:+.4f} [{low:+.4f}, {high:+.4f}]",
                         high >= 0, None if high >= 0 else -high))
    elif task in ("seg", "cls"):
        s = entry["student"]
        low, high = s["ci95"]
        rows.append(("student interval above 0", f"{s['mean']:+.4f} [{low:+.4f}, {high:+.4f}]", low > 0,
                     None if low > 0 else -low))
        kept = entry["retention"]
        if kept is None:
            rows.append((f"retention >= {RETENTION}", "undefined: the joint teacher is not better than the baseline",
                         False, None))
        else:
            rows.append((f"retention >= {RETENTION}", f"{kept:.2f}", kept >= RETENTION,
                         None if kept >= RETENTION else RETENTION - kept))
    return rows


def render(summary: dict, results: str) -> str:
    lines = ["# Issue 14's targets", "", "From `benchmarks/results/archive/summary.json` (each task's final run); written by "
             "`python benchmarks/targets.py`. Differences are student minus baseline on the same test cases, 95% "
             "intervals.", "", "| task | metric | seeds | target | value | verdict | missed by |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, entry in summary.items():
        for target, value, met, by in check(task, entry):
            verdict = "met" if met else "missed"
            lines.append(f"| {task} | {entry['metric'].split(': ')[-1]} | {entry['seeds']} | {target} | {value} | {verdict} | "
                         f"{'-' if by is None else f'{by:.4f}'} |")
    lines += ["", "Tried (the arms of each benchmark's `<benchmark>_ablation.md`; `+NAME`: a student variant on the "
              "arm's teachers):", ""]
    for task, benchmark in BENCHMARKS.items():
        if task in summary:
            tried = [a for a in arms(benchmark, results) if a != "default"]
            lines.append(f"- {task} (`{benchmark}`): " + (", ".join(f"`{a}`" for a in tried) or "nothing else"))
    lines += ["", "Cost (student epoch with unlabelled KD at most 1.5x without): `benchmarks/epoch_overhead.py`, "
              "results in `epoch_overhead_cpu.md`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=RESULTS, help="Results folder. Default: benchmarks/results/archive")
    args = parser.parse_args(argv)
    path = os.path.join(args.results, "summary.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{path} is missing: run a domain-shift benchmark (e.g. benchmarks/domain_shift.py) first.")
    with open(path) as f:
        summary = json.load(f)
    text = render(summary, args.results)
    out = os.path.join(args.results, "targets.md")
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)
    print(text)


if __name__ == "__main__":
    main()
