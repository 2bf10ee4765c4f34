"""Segmentation's part of the report: Dice from nnU-Net's summary.json, per case and per class, and the per-class
figure."""
import os

import numpy as np

from nnunet_kd.report.figures import figure, save


def headline(summary: dict) -> dict:
    """Mean Dice over the classes (NaN ignored) and each class's Dice."""
    dice = {c: float(m["Dice"]) for c, m in summary["mean"].items() if c != "0"}
    finite = [d for d in dice.values() if np.isfinite(d)]
    return {"foreground": float(np.mean(finite)) if finite else None,
            "per_class": {c: None if np.isnan(d) else d for c, d in dice.items()}, "metric": "Dice"}


def per_case(summary: dict) -> dict:
    """The foreground (mean Dice over a case's classes, NaN ignored) and, with several classes, every class (nnU-Net's
    metric_per_case, cases keyed by reference file name)."""
    measures = {"foreground": {}}
    for r in summary.get("metric_per_case", []):
        case = os.path.basename(r["reference_file"])
        dice = {c: float(m["Dice"]) for c, m in r["metrics"].items() if c != "0"}
        for c, d in dice.items():
            measures.setdefault(c, {})[case] = d
        finite = [d for d in dice.values() if np.isfinite(d)]
        measures["foreground"][case] = float(np.mean(finite)) if finite else None
    if len(measures) == 2:  # one class: the same figures as the foreground
        measures = {"foreground": measures["foreground"]}
    return {m: ("values", cases) for m, cases in measures.items()} if measures["foreground"] else {}


def figures(report: dict, summaries: dict, split: dict, out_dir: str) -> list[tuple[str, str]]:
    classes = list(dict.fromkeys(c for r in report["models"].values() for c in r["validation"]["per_class"]))
    return [_per_class(report, classes, out_dir)] if len(classes) > 1 else []


def _per_class(report: dict, classes: list[str], out_dir: str) -> tuple[str, str]:
    """Grouped bars: each class's Dice per model, validation mean over folds and the test set where it exists."""
    names = report["class_names"]
    rows = report["models"]
    fig, (ax,) = figure(1, width=max(6.0, 1.2 * len(classes) * len(rows)), height=4.5)
    width = 0.8 / len(rows)
    x = np.arange(len(classes))
    for k, (label, r) in enumerate(rows.items()):
        test = (r["test"] or {}).get("per_class") or {}
        values = [test.get(c) if test else r["validation"]["per_class"].get(c, {}).get("mean") for c in classes]
        ax.bar(x + (k - (len(rows) - 1) / 2) * width, [np.nan if v is None else v for v in values], width,
               label=f"{label} ({'test' if test else 'val'})")
    ax.set_xticks(x, [names.get(c, c) for c in classes])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("Dice")
    ax.set_title("Dice per class")
    ax.legend(loc="upper center", ncol=min(len(rows), 4), frameon=False, fontsize="small")
    return "Dice per class (test set where predicted, else validation mean over folds)", \
        save(fig, out_dir, "per_class.png")
