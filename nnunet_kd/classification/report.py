"""Classification's part of the report: balanced accuracy from its summary.json, each case's true and predicted class,
and the confusion matrices and ROC curves (scikit-learn's displays)."""
import numpy as np

from nnunet_kd.report.figures import figure, save


def headline(summary: dict) -> dict:
    return {"foreground": float(summary["balanced_accuracy"]), "per_class": {}, "metric": "balanced accuracy"}


def per_case(summary: dict) -> dict:
    cases = {r["case"]: (r["true"], r["predicted"]) for r in summary.get("per_case", [])}
    return {"balanced accuracy": ("classes", cases)} if cases else {}


def figures(report: dict, summaries: dict, split: dict, out_dir: str) -> list[tuple[str, str]]:
    return [_confusion(summaries, split, out_dir), *_roc(summaries, split, out_dir)] if summaries else []


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
    fig, axes = figure(len(summaries))
    for ax, (label, s) in zip(axes, summaries.items()):
        true, predicted, _, classes = _cases(s)
        if true:
            ConfusionMatrixDisplay.from_predictions(true, predicted, labels=classes, ax=ax, colorbar=False)
        ax.set_title(f"{label}\n({split[label]})", fontsize="small")
    return "Confusion matrices (rows: true class, columns: predicted)", save(fig, out_dir, "confusion.png")


def _roc(summaries: dict, split: dict, out_dir: str) -> list[tuple[str, str]]:
    from sklearn.metrics import RocCurveDisplay
    drawn = {label: _cases(s) for label, s in summaries.items()}
    drawn = {label: c for label, c in drawn.items() if c[2] is not None}
    if not drawn:
        return []
    fig, axes = figure(len(drawn))
    for ax, (label, (true, _, probs, classes)) in zip(axes, drawn.items()):
        true = np.asarray(true)
        for k, name in enumerate(classes):
            positive = true == name
            if positive.any() and not positive.all():
                RocCurveDisplay.from_predictions(positive, probs[:, k], name=name, ax=ax)
        ax.set_title(f"{label}\n({split[label]})", fontsize="small")
    return [("ROC curves, one class against the rest", save(fig, out_dir, "roc.png"))]
