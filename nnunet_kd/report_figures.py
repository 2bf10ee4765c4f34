"""The report's pictures beyond report.png: per-class results (segmentation), confusion matrices and ROC curves
(classification, scikit-learn's displays), FROC curves (detection), each from the summaries the report read (the
test set's where a model has one, else its validation folds pooled), and links to every fold's training curves."""
import json
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw_figures(report: dict, out_dir: str) -> list[tuple[str, str]]:
    """Writes the task's pictures into out_dir; returns (caption, file name) of each."""
    rows = {label: r for label, r in report["models"].items() if r["summaries"]["test"] or r["summaries"]["validation"]}
    summaries = {label: [_load(f) for f in r["summaries"]["test"] or r["summaries"]["validation"]]
                 for label, r in rows.items()}
    split = {label: "test set" if r["summaries"]["test"] else "validation" for label, r in rows.items()}
    task = report["task"]
    if task == "cls" and summaries:
        return [_confusion(summaries, split, out_dir), *_roc(summaries, split, out_dir)]
    if task == "det" and summaries:
        return [_froc(summaries, split, out_dir)]
    classes = list(dict.fromkeys(c for r in report["models"].values() for c in r["validation"]["per_class"]))
    return [_per_class(report, classes, out_dir)] if len(classes) > 1 else []


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


def _figure(panels: int, width: float = 4.5, height: float = 4.0):
    fig = Figure(figsize=(width * panels, height))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, panels, k + 1) for k in range(panels)]


def _save(fig, out_dir: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=100)
    return name


def _per_class(report: dict, classes: list[str], out_dir: str) -> tuple[str, str]:
    """Grouped bars: each class's Dice per model, validation mean over folds and the test set where it exists."""
    names = report["class_names"]
    rows = report["models"]
    fig, (ax,) = _figure(1, width=max(6.0, 1.2 * len(classes) * len(rows)), height=4.5)
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
        _save(fig, out_dir, "per_class.png")


def _cases(summaries: list[dict]):
    """Pooled (true, predicted, probabilities or None) over the summaries' cases, and the class names."""
    classes = summaries[0]["class_names"]
    cases = [c for s in summaries for c in s.get("per_case", [])]
    true = [c["true"] for c in cases]
    predicted = [c["predicted"] for c in cases]
    probs = np.array([c["probabilities"] for c in cases]) if cases and all("probabilities" in c for c in cases) \
        else None
    return true, predicted, probs, classes


def _confusion(summaries: dict, split: dict, out_dir: str) -> tuple[str, str]:
    from sklearn.metrics import ConfusionMatrixDisplay
    fig, axes = _figure(len(summaries))
    for ax, (label, s) in zip(axes, summaries.items()):
        true, predicted, _, classes = _cases(s)
        if true:
            ConfusionMatrixDisplay.from_predictions(true, predicted, labels=classes, ax=ax, colorbar=False)
        ax.set_title(f"{label}\n({split[label]})", fontsize="small")
    return "Confusion matrices (rows: true class, columns: predicted)", _save(fig, out_dir, "confusion.png")


def _roc(summaries: dict, split: dict, out_dir: str) -> list[tuple[str, str]]:
    from sklearn.metrics import RocCurveDisplay
    drawn = {label: _cases(s) for label, s in summaries.items()}
    drawn = {label: c for label, c in drawn.items() if c[2] is not None}
    if not drawn:
        return []
    fig, axes = _figure(len(drawn))
    for ax, (label, (true, _, probs, classes)) in zip(axes, drawn.items()):
        true = np.asarray(true)
        for k, name in enumerate(classes):
            positive = true == name
            if positive.any() and not positive.all():
                RocCurveDisplay.from_predictions(positive, probs[:, k], name=name, ax=ax)
        ax.set_title(f"{label}\n({split[label]})", fontsize="small")
    return [("ROC curves, one class against the rest", _save(fig, out_dir, "roc.png"))]


def _froc(summaries: dict, split: dict, out_dir: str) -> tuple[str, str]:
    fig, (ax,) = _figure(1, width=6.0, height=4.5)
    for label, s in summaries.items():
        ax.plot(*froc_points(s), marker="o", label=f"{label} ({split[label]})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("sensitivity")
    ax.set_ylim(0, 1.05)
    ax.set_title("FROC")
    ax.legend(frameon=False, fontsize="small")
    return "FROC curves: sensitivity against false positives per image (IoU 0.1)", _save(fig, out_dir, "froc.png")


def froc_points(summaries: list[dict]) -> tuple[list[float], list[float]]:
    """The FP rates per image and the sensitivity at each, averaged over the summaries (folds or runs; JSON keys are
    strings: '0.125', '1', ...)."""
    by_rate = [{float(r): v for r, v in s["sensitivity"].items()} for s in summaries]
    rates = sorted({r for one in by_rate for r in one})
    return rates, [float(np.nanmean([one.get(r, np.nan) for one in by_rate])) for r in rates]
