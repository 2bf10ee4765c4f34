"""The report's pictures beyond report.png: the task's figures (its `Task.figures`: per-class Dice, confusion matrices
and ROC curves, FROC curves), each from the summaries the report read (the test set's where a model has one, else its
validation folds pooled), links to every fold's training curves, and the figure helpers the tasks draw with."""
import json
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnunet_kd.core import tasks


def draw_figures(report: dict, out_dir: str) -> list[tuple[str, str]]:
    """Writes the task's pictures into out_dir; returns (caption, file name) of each."""
    rows = {label: r for label, r in report["models"].items() if r["summaries"]["test"] or r["summaries"]["validation"]}
    summaries = {label: [_load(f) for f in r["summaries"]["test"] or r["summaries"]["validation"]]
                 for label, r in rows.items()}
    split = {label: "test set" if r["summaries"]["test"] else "validation" for label, r in rows.items()}
    return tasks.get(report["task"]).figures(report, summaries, split, out_dir)


def training_curves(report: dict, out_dir: str) -> list[str]:
    """Markdown lines linking each model's progress.png / progress_kd.png per fold (paths relative to out_dir)."""
    lines = []
    for label, r in report["models"].items():
        links = [f"[{fold} {name[:-4]}]({os.path.relpath(os.path.join(r['folder'], fold, name), out_dir)})"
                 for fold in r["folds"] for name in ("progress.png", "progress_kd.png")
                 if os.path.isfile(os.path.join(r["folder"], fold, name))]
        if links:
            lines.append(f"- {label}: " + ", ".join(links))
    return lines


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def figure(panels: int, width: float = 4.5, height: float = 4.0):
    fig = Figure(figsize=(width * panels, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, k + 1) for k in range(panels)]


def save(fig, out_dir: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=100)
    return name
