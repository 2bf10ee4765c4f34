"""The benchmarks that run once per seed: their environment, and their results kept in results/archive/<name>.json,
rendered to results/archive/<name>.md with the paired differences to the baseline over all seeds (`nnunet_kd.report`'s code),
and summarised per task in results/archive/summary.json."""
import json
import os
import platform
import sys

import numpy as np

from nnunet_kd.report.collect import compare, per_case
from nnunet_kd.report.tables import METHOD_NOTE, paired_table
from nnunet_kd.report.stats import METHOD

# superseded by runner.py (PROTOCOL.md): their results are kept in results/archive
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "archive")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}, Python {platform.python_version()}"


def nnunet_env(out: str, seed: int, specs, write) -> dict:
    """The environment of a run in the work folder out (nnU-Net folders below it, created; training seeded; this
    Python's scripts first on PATH), with each dataset of specs written by write(raw, spec, seed=seed) unless there."""
    env = dict(os.environ, nnUNet_KD_SEED=str(seed), nnUNet_def_n_proc="2", nnUNet_n_proc_DA="0",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
               **{k: os.path.join(out, k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.makedirs(env[k], exist_ok=True)
    for spec in specs:
        if not os.path.isdir(os.path.join(env["nnUNet_raw"], f"Dataset{spec.dataset_id:03d}_{spec.name}")):
            write(env["nnUNet_raw"], spec, seed=seed)
    return env


def model_folder(dataset_results: str, trainer: str) -> str:
    """The model folder TRAINER__PLANS__CONFIGURATION of trainer in a dataset's results folder."""
    return next(os.path.join(dataset_results, f) for f in sorted(os.listdir(dataset_results))
                if f.startswith(trainer + "__"))


def kept_summary(summary: dict) -> dict:
    """What a run keeps of a model's test-set summary.json: the per-case results `report.per_case` reads."""
    if "metric_per_case" in summary:
        return {"metric_per_case": [{"reference_file": os.path.basename(r["reference_file"]),
                                     "metrics": {c: {"Dice": m["Dice"]} for c, m in r["metrics"].items()}}
                                    for r in summary["metric_per_case"]]}
    return {k: summary[k] for k in ("task", "balanced_accuracy", "mAP", "categories", "per_case") if k in summary}


def qualified(run: dict, model: str) -> dict:
    """{measure: (kind, {case: value})} of a model's test cases in a run; every seed generates its own data, so cases
    are told apart by seed."""
    measures = per_case(run["summaries"][model], f"{run['command']}: {model}")
    return {m: (kind, {f"seed{run['seed']}/{c}": v for c, v in cases.items()}) for m, (kind, cases) in measures.items()}


def paired(runs: list) -> dict:
    """{model: {measure: paired comparison with the first model}} over the runs that kept test summaries, their cases
    pooled."""
    runs = [r for r in runs if "summaries" in r]
    if not runs:
        return {}
    models = list(runs[0]["summaries"])
    base = [qualified(r, models[0]) for r in runs]
    return {m: compare([qualified(r, m) for r in runs], base) for m in models[1:]}


def paired_arms(runs: list, reference_runs: list) -> dict:
    """{model: {measure: paired comparison with the same model in reference_runs}} over the seeds both kept test
    summaries of (another arm, same data and test cases per seed); a seed's k-th training (student_variant.py
    --student-seed) against the reference's k-th of that seed."""
    def by_seed(rs):
        out = {}
        for r in rs:
            if "summaries" in r:
                out.setdefault(r["seed"], []).append(r)
        return out
    arm, reference = by_seed(runs), by_seed(reference_runs)
    seeds = sorted(set(arm) & set(reference))
    for seed in seeds:
        if len(arm[seed]) != len(reference[seed]):
            raise SystemExit(f"seed {seed}: {len(arm[seed])} training(s) against {len(reference[seed])}; compare arms "
                             f"with as many trainings of each seed ({reference[seed][0]['command']}).")
    pairs = [(a, r) for seed in seeds for a, r in zip(arm[seed], reference[seed])]
    if not pairs:
        return {}
    models = [m for m in pairs[0][0]["summaries"] if all(m in r["summaries"] for _, r in pairs)]
    return {m: compare([qualified(a, m) for a, _ in pairs], [qualified(r, m) for _, r in pairs]) for m in models}


def render(runs: list, title: str, metrics: dict) -> str:
    """A table per metric ({run key: what it is}; each run holds {model: value or None} under that key), one row per
    seed, and mean +/- std per model once 3 seeds exist; then the paired differences to the baseline."""
    lines = [f"# {title}", ""]
    for key, caption in metrics.items():
        models = list(runs[0][key])
        lines += [caption, "", "| seed | date | machine | minutes | " + " | ".join(models) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in models) + " |"]
        for r in runs:
            lines.append(f"| {r['seed']} | {r['date']} | {r['machine']} | {r['minutes']:.0f} | " + " | ".join(
                "-" if r[key][m] is None else f"{r[key][m]:.4f}" for m in models) + " |")
        if len({r["seed"] for r in runs}) >= 3:
            cells = [np.array([r[key][m] for r in runs if r[key][m] is not None]) for m in models]
            lines.append("| mean +/- std | | | | " + " | ".join(
                f"{v.mean():.4f} +/- {v.std():.4f}" if v.size else "-" for v in cells) + " |")
        lines.append("")
    comparisons = paired(runs)
    if comparisons:
        n = len([r for r in runs if "summaries" in r])
        lines += paired_table(models[0], f"test cases of {n} seed(s) pooled", comparisons, {})[1:]
        lines += ["", f"Method: {METHOD}; {METHOD_NOTE}.", ""]
    lines += ["Commands:", ""] + [f"- `{r['command']}`" for r in runs]
    notes = [n for r in runs for n in r.get("notes", [])]
    if notes:
        lines += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def retention(joint: dict | None, student: dict | None) -> float | None:
    """(student - baseline) / (joint - baseline) of two paired differences to the baseline, where the joint teacher is
    better than the baseline (its interval above 0; else None: a level joint teacher leaves nothing to keep)."""
    if not (joint and student and joint["ci95"] and joint["ci95"][0] is not None and joint["ci95"][0] > 0):
        return None
    return student["mean"] / joint["mean"]


def update_summary(task: str, runs: list, key: str, measure: str) -> dict:
    """Rewrites the task's entry of results/archive/summary.json: the headline metric's mean per model over the seeds, the
    joint teacher's and student's paired difference to the baseline with retention = (student - baseline) / (joint -
    baseline) where the joint teacher is better than the baseline, the student's difference in every measure (each
    class of a segmentation, FROC and mAP@0.5 of a detection) and the measures where it is below (CI under 0)."""
    path = os.path.join(RESULTS, "summary.json")
    summary = {}
    if os.path.isfile(path):
        with open(path) as f:
            summary = json.load(f)
    models = list(runs[0][key])
    kept = [r for r in runs if "summaries" in r]
    comparisons = paired(runs)
    entry = {"metric": f"{key}: {measure}", "seeds": len(kept), "test_cases": sum(
        len(per_case(r["summaries"][models[0]], "")[measure][1]) for r in kept),
        "mean": {m: _mean([r[key][m] for r in kept]) for m in models}}
    for role, label in (("joint", "joint teacher"), ("student", "student")):
        c = comparisons.get(label, {}).get(measure)
        entry[role] = None if c is None else {"mean": c["mean"], "ci95": c["ci95"], "p": c["p"]}
    by_measure = comparisons.get("student", {})
    entry["student_by_measure"] = {m: {"mean": c["mean"], "ci95": c["ci95"], "p": c["p"]} for m, c in by_measure.items()}
    entry["student_below_baseline"] = [m for m, c in by_measure.items()
                                       if c["ci95"] and c["ci95"][1] is not None and c["ci95"][1] < 0]
    entry["retention"] = retention(entry["joint"], entry["student"])
    summary[task] = entry
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return entry


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def add_arm_arguments(parser) -> None:
    """The options of an ablation arm of a domain-shift benchmark."""
    parser.add_argument("--preset", default="tiny", help="KD preset name or JSON file. Default: tiny.")
    parser.add_argument("--unlabelled", type=int, default=0,
                        help="Unlabelled target images (drawn after the labelled and test cases, which stay the same; "
                             "given to plan --extra-target-images). Default: %(default)s.")
    parser.add_argument("--tag", default=None,
                        help="Write results/archive/<benchmark>_<tag>.{json,md} (an ablation arm); summary.json is left alone.")


def preset_path(preset: str) -> str:
    """A preset name as it is, a preset file as an absolute path (the runs work in another folder)."""
    return os.path.abspath(preset) if preset.endswith(".json") else preset


def arm_argv(args, unlabelled_images: str) -> list:
    """`nnunet_kd run` options of the arm."""
    return ["--preset", preset_path(args.preset)] + (
        ["--extra-target-images", unlabelled_images] if args.unlabelled else [])


def record_arm(name: str, tag, run: dict, title: str, metrics: dict, summary: tuple) -> str:
    """`record` of the benchmark itself, or of its ablation arm ``tag`` (without summary.json)."""
    if tag:
        return record(f"{name}_{tag}", run, f"{title}, arm '{tag}'", metrics)
    return record(name, run, title, metrics, summary=summary)


def add_run(path: str, run: dict) -> list:
    """Adds run to the JSON list of runs in path (replacing a run of the same seed and command); returns all runs."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    runs = []
    if os.path.isfile(path):
        with open(path) as f:
            runs = json.load(f)
    runs = [r for r in runs if not (r["seed"] == run["seed"] and r["command"] == run["command"])] + [run]
    with open(path, "w") as f:
        json.dump(runs, f, indent=1)
    return runs


def record(name: str, run: dict, title: str, metrics: dict, summary: tuple = None) -> str:
    """Adds run to results/archive/<name>.json (replacing a run of the same seed and command), rewrites results/archive/<name>.md
    from all runs and returns its text; summary = (task, run key, measure) also updates results/archive/summary.json."""
    runs = add_run(os.path.join(RESULTS, f"{name}.json"), run)
    text = render(runs, title, metrics)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write(text)
    if summary:
        update_summary(summary[0], runs, *summary[1:])
    return text
