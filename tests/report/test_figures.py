"""The report's pictures: per-class Dice, confusion matrices and ROC curves, FROC curves, links to training curves,
all inlined in report.md by relative path."""
import json
import os

import numpy as np
import pytest

from nnunet_kd.classification.metrics import classification_summary
from nnunet_kd.detection.metrics import detection_summary
from nnunet_kd.report.collect import collect
from nnunet_kd.report.tables import write_report
from nnunet_kd.detection.report import froc_points

PNG = b"\x89PNG\r\n\x1a\n"


def _write(results, trainer, fold, summary):
    folder = os.path.join(results, "Dataset001_X", f"{trainer}__P__2d", fold)
    os.makedirs(os.path.join(folder, "validation"))
    with open(os.path.join(folder, "validation", "summary.json"), "w") as f:
        json.dump(summary, f)
    return folder


def _images(md):
    return [line.split("](")[1][:-1] for line in md.splitlines() if line.startswith("![")]


def test_segmentation_report_inlines_per_class_dice_and_links_training_curves(tmp_path):
    results, out = str(tmp_path / "results"), tmp_path / "results" / "report"
    for trainer, d in (("nnUNetTrainer", 0.6), ("nnUNetTrainerJointKD", 0.7)):
        folder = _write(results, trainer, "fold_0", {"foreground_mean": {"Dice": d}, "mean": {
            "1": {"Dice": d}, "2": {"Dice": d - 0.2}}, "metric_per_case": []})
        (tmp_path / folder / "progress.png").write_bytes(PNG)
    md = write_report(collect(results, "Dataset001_X", "P", "2d",
                              {"baseline": "nnUNetTrainer", "student": "nnUNetTrainerJointKD"}), str(out))
    assert _images(md) == ["report.png", "per_class.png"]  # relative: the folder renders as it is
    assert all((out / name).read_bytes()[:8] == PNG for name in _images(md))
    links = [line for line in md.splitlines() if line.startswith("- student: ")]
    assert links == ["- student: [fold_0 progress](../Dataset001_X/nnUNetTrainerJointKD__P__2d/fold_0/progress.png)"]
    assert (out / links[0].split("](")[1][:-1]).is_file()


def _cls_summary(seed, probabilities=True):
    rng = np.random.default_rng(seed)
    y = np.array([0, 1, 2] * 4)
    probs = rng.dirichlet(np.ones(3), len(y)) + np.eye(3)[y]
    s = classification_summary(y, probs / probs.sum(1, keepdims=True), ["a", "b", "c"], [f"c{i}" for i in range(12)])
    if not probabilities:  # a summary of an older version
        for case in s["per_case"]:
            del case["probabilities"]
    return s


@pytest.mark.parametrize("probabilities, expected", [(True, ["report.png", "confusion.png", "roc.png"]),
                                                     (False, ["report.png", "confusion.png"])])
def test_classification_report_draws_confusion_matrices_and_roc_curves(tmp_path, probabilities, expected):
    results = str(tmp_path / "results")
    _write(results, "nnUNetTrainerCls", "fold_0", _cls_summary(0, probabilities))
    _write(results, "nnUNetTrainerClsJointKD", "fold_0", _cls_summary(1, probabilities))
    rep = collect(results, "Dataset001_X", "P", "2d", {"baseline": "nnUNetTrainerCls",
                                                      "student": "nnUNetTrainerClsJointKD"})
    assert rep["task"] == "cls"
    md = write_report(rep, str(tmp_path / "out"))
    assert _images(md) == expected
    assert all((tmp_path / "out" / name).read_bytes()[:8] == PNG for name in expected)


def test_summaries_keep_each_cases_probabilities():
    s = _cls_summary(0)
    assert len(s["per_case"][0]["probabilities"]) == 3 and sum(s["per_case"][0]["probabilities"]) == pytest.approx(1)


def test_detection_report_draws_the_froc_curve_of_the_summaries(tmp_path):
    gt = {"a": [((0, 0, 10, 10), 0)], "b": [((20, 20, 30, 30), 0)]}
    found = detection_summary(gt, {"a": [((0, 0, 10, 10), 0, 0.9)], "b": [((0, 0, 4, 4), 0, 0.8)]}, ["lesion"])
    both = detection_summary(gt, {"a": [((0, 0, 10, 10), 0, 0.9)], "b": [((20, 20, 30, 30), 0, 0.8)]}, ["lesion"])
    summaries = json.loads(json.dumps([found, both]))  # as read back: rates as string keys
    rates, sensitivity = froc_points(summaries)
    assert rates == sorted(float(r) for r in found["sensitivity"]) and rates[0] < rates[-1]
    assert sensitivity[-1] == pytest.approx((found["sensitivity"][rates[-1]] + 1.0) / 2)
    results = str(tmp_path / "results")
    _write(results, "nnUNetTrainerDet", "fold_0", found)
    _write(results, "nnUNetTrainerDetJointKD", "fold_0", both)
    md = write_report(collect(results, "Dataset001_X", "P", "2d", {"baseline": "nnUNetTrainerDet",
                                                                   "student": "nnUNetTrainerDetJointKD"}),
                      str(tmp_path / "out"))
    assert _images(md) == ["report.png", "froc.png"]
