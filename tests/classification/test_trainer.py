import glob
import json
import os

import numpy as np

from nnunet_kd.classification.labels import read_case_classes


def test_the_target_split_is_stratified_by_class(cls_run):
    """The fixture trains fold 0, so the classification trainer wrote the target's split."""
    with open(os.path.join(cls_run.setup.preprocessed, cls_run.target, "splits_final.json")) as f:
        splits = json.load(f)
    classes = read_case_classes(os.path.join(cls_run.setup.raw, cls_run.target))
    assert len(splits) == 5
    assert sorted(k for s in splits for k in s["val"]) == sorted(classes)  # every case validated exactly once
    assert all(sorted(s["train"] + s["val"]) == sorted(classes) for s in splits)
    per_fold = np.array([np.bincount([classes[k] for k in s["val"]], minlength=3) for s in splits])
    assert (per_fold.max(0) - per_fold.min(0) <= 1).all()  # each class spread evenly over the validation folds
    logs = glob.glob(os.path.join(cls_run.model_folder("nnUNetTrainerCls_tiny"), "fold_0", "training_log_*.txt"))
    assert any("split stratified by class" in open(log).read() for log in logs)


def test_class_weights_are_balanced_over_the_present_classes():
    from nnunet_kd.classification.trainer import class_weighted_ce
    assert np.allclose(class_weighted_ce(np.array([6, 0, 2]), True, "cpu").weight.numpy(), [8 / 12, 1.0, 2.0])
    assert class_weighted_ce(np.array([6, 0, 2]), False, "cpu").weight is None
