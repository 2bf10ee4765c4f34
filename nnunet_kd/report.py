"""Results table of a KD experiment: the Dice of nnU-Net's summary.json of every model (the balanced accuracy for
classification) -> report.md/json/png."""
import json
import os
import re
from typing import Optional

import numpy as np

from nnunet_kd.config import ROLE_TRAINERS
from nnunet_kd.errors import KDError



def models_for(task: str) -> dict:
    """{row label: trainer} of a task's four models; the first is the baseline."""
    role = ROLE_TRAINERS[task]
    models = {"dataset-specific (target teacher)": role["target"], "multi-head": role["multihead"],
              "joint teacher": role["joint"], "student": role["student"]}
    return {label: trainer for label, trainer in models.items() if trainer}


DEFAULT_MODELS = models_for("seg")


def _stats(values) -> dict:
    """Mean and population std of values, NaN and None ignored; None where nothing is left."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    if np.all(np.isnan(v)):
        return {"mean": None, "std": None}
    return {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v))}


def _dice(summary_file: str) -> dict:
    """summary.json -> {"foreground": mean Dice over the classes, NaN ignored, "per_class": {class: Dice}}; of a
    classification summary: {"foreground": balanced accuracy, "per_class": {}}."""
    try:
        with open(summary_file, encoding="utf-8") as f:
            summary = json.load(f)
        if "balanced_accuracy" in summary:
            return {"foreground": float(summary["balanced_accuracy"]), "per_class": {}, "metric": "balanced accuracy"}
        if "mAP" in summary:
            return {"foreground": float(summary["mAP"]), "per_class": {}, "metric": "mAP"}
        dice = {c: float(m["Dice"]) for c, m in summary["mean"].items() if c != "0"}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KDError(f"Cannot read the Dice of {summary_file} ({e!r}). Is it an nnU-Net summary.json?") from None
    return {"foreground": _stats(dice.values())["mean"],
            "per_class": {c: None if np.isnan(d) else d for c, d in dice.items()}, "metric": "Dice"}


def _changed_teachers(fold_folder: str) -> list:
    """Teacher checkpoints that changed since this model was trained from them (recorded in its kd_state)."""
    path = os.path.join(fold_folder, "checkpoint_final.pth")
    if not os.path.isfile(path):
        return []
    import torch
    from nnunet_kd.protocol.teachers import changed_teachers
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        return [f"{path} does not load ({type(e).__name__})"]
    return changed_teachers(checkpoint.get("kd_state", {}).get("teachers", []))


def _diff(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b


def collect(results_root: str, target: str, plans: str, configuration: str, models: dict,
            test_folders: Optional[dict] = None) -> dict:
    """The report of the models {row label: trainer}; the first one is the baseline. NaN is written as None."""
    test_folders = test_folders or {}
    if not models:
        raise KDError("No models to report.")
    unknown = sorted(set(test_folders) - set(models))
    if unknown:
        raise KDError(f"Test folders given for unknown models {unknown}; the models are {list(models)}.")
    rows = {}
    for label, trainer in models.items():
        folder = os.path.join(results_root, target, f"{trainer}__{plans}__{configuration}")
        folds, notes = {}, []
        for fold in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            summary = os.path.join(folder, fold, "validation", "summary.json")
            if re.fullmatch(r"fold_(\d+|all)", fold) and os.path.isfile(summary):
                folds[fold] = _dice(summary)
                notes += [f"{fold}: {p}" for p in _changed_teachers(os.path.join(folder, fold))]
        if not folds:
            notes.append(f"no fold_*/validation/summary.json in {folder}" if os.path.isdir(folder)
                         else f"no model folder {folder}")
        classes = dict.fromkeys(c for d in folds.values() for c in d["per_class"])
        test = None
        if label in test_folders:
            summary = os.path.join(test_folders[label], "summary.json")
            if os.path.isfile(summary):
                test = _dice(summary)
            else:
                notes.append(f"no test-set summary {summary}")
        rows[label] = {"trainer": trainer, "folder": folder, "folds": folds,
                       "validation": {"foreground": _stats(d["foreground"] for d in folds.values()),
                                      "per_class": {c: _stats(d["per_class"].get(c) for d in folds.values())
                                                    for c in classes}},
                       "test": test, "notes": notes}
    baseline = next(iter(models))
    base = rows[baseline]
    for label, row in rows.items():
        row["delta_vs_baseline"] = None if label == baseline else {
            "validation": _diff(row["validation"]["foreground"]["mean"], base["validation"]["foreground"]["mean"]),
            "test": _diff(row["test"] and row["test"]["foreground"], base["test"] and base["test"]["foreground"])}
    metrics = {d["metric"] for r in rows.values() for d in list(r["folds"].values()) + [r["test"] or {"metric": None}]}
    metric = next((m for m in ("balanced accuracy", "mAP") if m in metrics), "Dice")
    return {"target": target, "plans": plans, "configuration": configuration, "results_root": results_root,
            "baseline": baseline, "metric": metric, "models": rows}


def _fmt(x: Optional[float], sign: bool = False) -> str:
    return "" if x is None else f"{x:+.4f}" if sign else f"{x:.4f}"


def _plot(report: dict, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    rows = report["models"]
    x = np.arange(len(rows))
    val = [r["validation"]["foreground"] for r in rows.values()]
    test = [r["test"]["foreground"] if r["test"] else None for r in rows.values()]
    has_test = any(t is not None for t in test)
    width = 0.4 if has_test else 0.6
    fig = Figure(figsize=(max(6.0, 1.8 * len(rows)), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(x - width / 2 if has_test else x, [np.nan if v["mean"] is None else v["mean"] for v in val], width,
           yerr=[v["std"] or 0.0 for v in val], capsize=4, label="validation (mean ± std over folds)")
    if has_test:
        ax.bar(x + width / 2, [np.nan if t is None else t for t in test], width, label="test set")
    ax.set_xticks(x, list(rows), rotation=15, ha="right")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(_metric_label(report))
    ax.set_title(f"{report['target']}  {report['plans']}  {report['configuration']}")
    ax.legend(loc="upper center", ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _metric_label(report: dict) -> str:
    return "fg Dice" if report.get("metric", "Dice") == "Dice" else report["metric"]


def write_report(report: dict, out_dir: str) -> str:
    """Writes report.md, report.json and report.png to out_dir; returns the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    rows = report["models"]
    classes = list(dict.fromkeys(c for r in rows.values() for c in r["validation"]["per_class"]))
    has_test = any(r["test"] for r in rows.values())
    m = _metric_label(report)
    header = ["Model", "Trainer", "Folds", f"Val {m} (mean ± std)", *(f"Val Dice {c}" for c in classes),
              *([f"Test {m}"] if has_test else []), "Δ val vs baseline", *(["Δ test vs baseline"] if has_test else [])]
    lines = [f"# {report['target']}  {report['plans']}  {report['configuration']}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, r in rows.items():
        fg, delta = r["validation"]["foreground"], r["delta_vs_baseline"] or {}
        cells = [label, r["trainer"], ", ".join(f.removeprefix("fold_") for f in r["folds"]),
                 "" if fg["mean"] is None else f"{fg['mean']:.4f} ± {fg['std']:.4f}",
                 *(_fmt(r["validation"]["per_class"].get(c, {}).get("mean")) for c in classes)]
        if has_test:
            cells.append(_fmt(r["test"] and r["test"]["foreground"]))
        cells.append("(baseline)" if label == report["baseline"] else _fmt(delta["validation"], sign=True))
        if has_test:
            cells.append("(baseline)" if label == report["baseline"] else _fmt(delta["test"], sign=True))
        lines.append("| " + " | ".join(cells) + " |")
    source = {"balanced accuracy": "Balanced accuracy from the classification summary.json (scikit-learn)",
              "mAP": "COCO mAP@[.5:.95] from the detection summary.json (pycocotools)"}.get(
        m, "Dice from nnU-Net's summary.json; fg = mean over the foreground classes, NaN ignored")
    lines += ["", source + "; ± = population std over the folds."]
    notes = [f"- {label}: {note}" for label, r in rows.items() for note in r["notes"]]
    lines += ["", "Notes:", *notes] if notes else []
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, allow_nan=False)
    _plot(report, os.path.join(out_dir, "report.png"))
    return text


def report(results_root: str, target: str, plans: str, configuration: str, models: dict,
           test_folders: Optional[dict] = None, out_dir: Optional[str] = None) -> dict:
    """collect + write_report (default out_dir: <results_root>/<target>/nnunet_kd_report_<plans>_<configuration>)
    and print the table."""
    out_dir = out_dir or os.path.join(results_root, target, f"nnunet_kd_report_{plans}_{configuration}")
    result = collect(results_root, target, plans, configuration, models, test_folders)
    print(write_report(result, out_dir))
    print(f"Report written to {out_dir}")
    return result
