"""The ablation table of a domain-shift benchmark: every arm against its own baseline, from the results files.

    python benchmarks/ablation.py [--benchmark domain_shift] [--versus ARM REFERENCE_ARM ...]

Reads benchmarks/results/archive/<benchmark>.json (the default arm) and every <benchmark>_<tag>.json (an arm run with --tag)
and writes benchmarks/results/archive/<benchmark>_ablation.md: per arm, the paired differences of the joint teacher and the
student (and the multi-head baseline, where run) to that arm's dataset-specific baseline over the pooled test cases of
its seeds, the retention (student - baseline) / (joint - baseline), the seeds, minutes per seed and commands; each
--versus pair then puts every model of an arm against the same model of a reference arm on the seeds both ran (an arm
run with changed code against the arm as it was, for example).
"""
import argparse
import json
import os

import numpy as np

from nnunet_kd.report.tables import paired_table
from seed_runs import RESULTS, paired, paired_arms, retention


def arms(benchmark: str, results: str) -> dict:
    """{arm: runs} of the benchmark's results files, the default arm first."""
    out = {}
    for name in sorted(os.listdir(results)):
        if name == f"{benchmark}.json" or (name.startswith(f"{benchmark}_") and name.endswith(".json")):
            arm = "default" if name == f"{benchmark}.json" else name[len(benchmark) + 1:-5]
            with open(os.path.join(results, name)) as f:
                out[arm] = json.load(f)
    # the default arm first, each arm before its student variants (<arm>+<variant>)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "default", kv[0].split("+")[0], kv[0])))


def render(benchmark: str, arm_runs: dict, versus=()) -> str:
    lines = [f"# Ablation: {benchmark}", "", "Each arm against its own dataset-specific baseline (same seeds, same "
             f"test cases), from `benchmarks/results/archive/{benchmark}*.json`; written by `benchmarks/ablation.py`."]
    for arm, runs in arm_runs.items():
        comparisons = paired(runs)
        if not comparisons:
            continue
        baseline = next(iter(runs[0]["summaries"]))
        seeds = sorted({r["seed"] for r in runs})
        trainings = f" ({len(runs)} trainings)" if len(runs) > len(seeds) else ""
        lines += paired_table(baseline, f"arm '{arm}', seeds {seeds}{trainings}", comparisons, {})
        headline = next(iter(comparisons["student"]))
        kept = retention(comparisons["joint teacher"][headline], comparisons["student"][headline])
        kept = "- (the joint teacher is not better)" if kept is None else f"{kept:.2f}"
        lines += ["", f"Retention ({headline}): {kept}; minutes per {'training' if trainings else 'seed'}: "
                  f"{np.mean([r['minutes'] for r in runs]):.0f}. Commands: " +
                  "; ".join(f"`{r['command']}`" for r in runs)]
    for arm, reference in versus:
        for name in (arm, reference):
            if name not in arm_runs:
                raise SystemExit(f"--versus: no arm '{name}' in benchmarks/results ({benchmark}_{name}.json); arms: "
                                 f"{list(arm_runs)}")
        comparisons = paired_arms(arm_runs[arm], arm_runs[reference])
        if not comparisons:
            raise SystemExit(f"--versus {arm} {reference}: the arms share no seed with test summaries")
        seeds = sorted({r["seed"] for r in arm_runs[arm]} & {r["seed"] for r in arm_runs[reference]})
        lines += paired_table(f"arm '{reference}'", f"each model of arm '{arm}' against itself in arm '{reference}', "
                              f"seeds {seeds}", comparisons, {})
        lines += ["", f"Command: `python benchmarks/ablation.py --benchmark {benchmark} --versus {arm} {reference}`"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="domain_shift", help="Results name. Default: domain_shift.")
    parser.add_argument("--results", default=RESULTS, help="Results folder. Default: benchmarks/results/archive")
    parser.add_argument("--versus", nargs=2, action="append", default=[], metavar=("ARM", "REFERENCE_ARM"),
                        help="Also compare every model of ARM with the same model of REFERENCE_ARM (repeatable).")
    args = parser.parse_args(argv)
    text = render(args.benchmark, arms(args.benchmark, args.results), args.versus)
    with open(os.path.join(args.results, f"{args.benchmark}_ablation.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
