"""The benchmarks that run once per seed: their environment, and their results kept in results/<name>.json and
rendered to results/<name>.md."""
import json
import os
import platform
import sys

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


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


def render(runs: list, title: str, metrics: dict) -> str:
    """A table per metric ({run key: what it is}; each run holds {model: value or None} under that key), one row per
    seed, and mean +/- std per model once 3 seeds exist."""
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
    lines += ["Commands:", ""] + [f"- `{r['command']}`" for r in runs]
    notes = [n for r in runs for n in r.get("notes", [])]
    if notes:
        lines += ["", "## Findings", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def record(name: str, run: dict, title: str, metrics: dict) -> str:
    """Adds run to results/<name>.json (replacing a run of the same seed and command), rewrites results/<name>.md
    from all runs and returns its text."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    runs = []
    if os.path.isfile(path):
        with open(path) as f:
            runs = json.load(f)
    runs = [r for r in runs if not (r["seed"] == run["seed"] and r["command"] == run["command"])] + [run]
    with open(path, "w") as f:
        json.dump(runs, f, indent=1)
    text = render(runs, title, metrics)
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write(text)
    return text
