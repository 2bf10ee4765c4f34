import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

from nnunet_kd.classification.metrics import classification_summary, write_summary
from nnunet_kd.core.errors import KDError

NAMES = ["none", "round", "elongated"]
Y = np.array([0, 0, 1, 1, 1, 2, 2, 0, 2, 1])
LOGITS = np.array([[2.0, 0.1, 0.3], [0.2, 1.0, 0.1], [0.1, 2.5, 0.0], [0.3, 0.2, 0.9], [0.0, 1.1, 0.2],
                   [0.1, 0.4, 1.7], [0.9, 0.1, 0.8], [1.2, 0.3, 0.2], [0.2, 0.1, 2.2], [0.1, 0.7, 0.6]])
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)


def test_equals_sklearn():
    s = classification_summary(Y, PROBS, NAMES)
    pred = PROBS.argmax(1)
    assert s["accuracy"] == pytest.approx(accuracy_score(Y, pred))
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(Y, pred))
    assert s["macro_f1"] == pytest.approx(f1_score(Y, pred, average="macro"))
    assert s["macro_auroc"] == pytest.approx(roc_auc_score(Y, PROBS, multi_class="ovr", average="macro"))
    assert s["auroc"]["round"] == pytest.approx(roc_auc_score(Y == 1, PROBS[:, 1]))
    assert s["confusion_matrix"] == confusion_matrix(Y, pred).tolist()
    assert s["num_cases"] == 10 and s["class_names"] == NAMES and "per_case" not in s
    json.dumps(s)


def test_per_case_classes_with_case_ids():
    s = classification_summary(Y, PROBS, NAMES, [f"c{i}" for i in range(10)])
    pred = PROBS.argmax(1)
    assert s["per_case"] == [{"case": f"c{i}", "true": NAMES[Y[i]], "predicted": NAMES[pred[i]],
                              "probabilities": PROBS[i].tolist()} for i in range(10)]


def test_absent_class_gives_nan_auroc_without_crash():
    y = np.array([0, 1, 0, 1, 1])
    probs = PROBS[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn warnings either
        s = classification_summary(y, probs, NAMES)
    assert math.isnan(s["auroc"]["elongated"])
    assert s["macro_auroc"] == pytest.approx(np.mean([s["auroc"]["none"], s["auroc"]["round"]]))
    assert s["auroc"]["none"] == pytest.approx(roc_auc_score(y == 0, probs[:, 0]))
    cm = np.array(s["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == 5 and cm[2].sum() == 0  # row of the absent class
    single = classification_summary([1, 1], PROBS[:2], NAMES)
    assert all(math.isnan(v) for v in single["auroc"].values()) and math.isnan(single["macro_auroc"])


def test_write_summary_round_trip(tmp_path):
    s = classification_summary([0, 1, 0, 1, 1], PROBS[:5], NAMES)
    write_summary(str(tmp_path / "summary.json"), s)
    with open(tmp_path / "summary.json") as f:
        loaded = json.load(f)
    assert math.isnan(loaded["auroc"]["elongated"])
    assert loaded["confusion_matrix"] == s["confusion_matrix"] and loaded["accuracy"] == s["accuracy"]


@pytest.mark.parametrize("y, probs", [([0, 1], PROBS[:3]), ([0, 3], PROBS[:2]), ([], np.zeros((0, 3))),
                                      ([0, 1], PROBS[:2, :2])])
def test_bad_shapes_are_refused(y, probs):
    with pytest.raises(KDError):
        classification_summary(y, probs, NAMES)
