"""Image-level classification metrics (scikit-learn) as a JSON-serialisable summary."""
import math
import warnings

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import save_json
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             roc_auc_score)

from nnunet_kd.core.errors import KDError


def _auroc(is_class: np.ndarray, score: np.ndarray) -> float:
    """One-vs-rest AUROC; NaN when the class is absent from, or the only class in, the ground truth."""
    if is_class.all() or not is_class.any():
        return math.nan
    return float(roc_auc_score(is_class, score))


def classification_summary(y_true, probabilities, class_names: list[str], cases=None) -> dict:
    """Accuracy, balanced accuracy, macro F1 (over the classes in y_true or predicted), per-class and macro
    one-vs-rest AUROC (over the classes with an AUROC; NaN if none), the confusion matrix (rows: true class,
    columns: predicted class = argmax of the probabilities) and, given the case ids, the true and predicted class and
    the probabilities of every case (paired statistics, ROC curves)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), n) or len(y_true) == 0:
        raise KDError(f"classification_summary needs one row of {n} class probabilities ({class_names}) per case, "
                      f"got {len(y_true)} labels and probabilities of shape {probabilities.shape}.")
    if y_true.min() < 0 or y_true.max() >= n:
        raise KDError(f"classification_summary: labels must be class indices 0..{n - 1} ({class_names}), got "
                      f"{sorted(set(y_true.tolist()))}.")
    y_pred = probabilities.argmax(1)
    aurocs = {name: _auroc(y_true == c, probabilities[:, c]) for c, name in enumerate(class_names)}
    valid = [v for v in aurocs.values() if not math.isnan(v)]
    with warnings.catch_warnings():  # balanced accuracy warns when a predicted class is absent from y_true
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    return {
        "task": "cls",
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "macro_auroc": float(np.mean(valid)) if valid else math.nan,
        "auroc": aurocs,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(range(n))).tolist(),
        "num_cases": int(len(y_true)),
        "class_names": list(class_names),
        **({} if cases is None else {"per_case": [
            {"case": str(c), "true": class_names[t], "predicted": class_names[p],
             "probabilities": [float(v) for v in prob]}
            for c, t, p, prob in zip(cases, y_true, y_pred, probabilities)]}),
    }


def write_summary(path: str, summary: dict) -> None:
    """Writes the summary as JSON (NaN as NaN, like nnU-Net's summary.json)."""
    save_json(summary, path, sort_keys=False)
