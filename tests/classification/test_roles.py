"""The classification roles through the real entry points (`nnunet_kd run --task cls` -> nnUNetv2_train)."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from helpers import check_student_without_unet_decoder
from nnunet_kd.core.checkpoints import load_checkpoint

TRAINERS = ["nnUNetTrainerCls_tiny", "nnUNetTrainerClsJointTeacher_tiny", "nnUNetTrainerClsJointKD_tiny",
            "nnUNetTrainerClsMultiHead_tiny"]


def _checkpoint(cls_run, trainer, dataset=None, fold="fold_0"):
    path = os.path.join(cls_run.model_folder(trainer, dataset), fold, "checkpoint_final.pth")
    return load_checkpoint(path)


def test_every_role_trains_and_the_report_shows_balanced_accuracy(cls_run):
    lines = [line for line in cls_run.stdout.splitlines() if line.startswith("[")]
    assert sum(" done in " in line for line in lines) == 7, lines
    assert "Val balanced accuracy (mean ± std)" in cls_run.stdout
    for trainer in TRAINERS:
        assert f"| {trainer} | 0 | " in cls_run.stdout


@pytest.mark.parametrize("trainer", TRAINERS)
def test_validation_summary_is_scikit_learn_on_the_predictions(cls_run, trainer):
    folder = os.path.join(cls_run.model_folder(trainer), "fold_0", "validation")
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    table = pd.read_csv(os.path.join(folder, "predictions.csv"))
    classes = summary["class_names"]
    assert classes == ["none", "round", "elongated"]
    y_true = [classes.index(c) for c in table["true"]]
    y_pred = np.argmax(table[[f"p_{c}" for c in classes]].to_numpy(), 1)
    assert [classes[i] for i in y_pred] == list(table["predicted"])
    assert summary["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert summary["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert summary["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert summary["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()


def test_source_teachers_have_their_own_class_sets_and_domain_heads(cls_run):
    for dataset, n_classes in (("Dataset022_ClsSourceA", 3), ("Dataset023_ClsSourceB", 3)):
        ckpt = _checkpoint(cls_run, "nnUNetTrainerClsDomainAdversarial_tiny", dataset, "fold_all")
        assert ckpt["network_weights"]["head.weight"].shape[0] == n_classes
        assert any(k.startswith("heads.") for k in ckpt["kd_state"]["modules"])  # the domain classifier
        assert len(ckpt["logging"]["domain_losses"]) == 2
    with open(os.path.join(cls_run.model_folder("nnUNetTrainerClsDomainAdversarial_tiny", "Dataset023_ClsSourceB"),
                           "dataset.json")) as f:
        assert json.load(f)["classes"] == ["none", "round", "double"]


def test_joint_teacher_fuses_frozen_teachers_and_the_student_distils_from_it(cls_run):
    joint = _checkpoint(cls_run, "nnUNetTrainerClsJointTeacher_tiny")
    assert len(joint["kd_state"]["teachers"]) == 3
    target = _checkpoint(cls_run, "nnUNetTrainerCls_tiny")
    enc = {k[len("encoder."):]: v for k, v in target["network_weights"].items() if k.startswith("encoder.")}
    for k, v in enc.items():  # the target teacher's encoder is in the joint network, unchanged by its training
        assert torch.equal(joint["network_weights"][f"teacher_encoders.0.{k}"], v)
    student = _checkpoint(cls_run, "nnUNetTrainerClsJointKD_tiny")
    assert [t["role"] for t in student["kd_state"]["teachers"]] == ["joint"]
    assert student["kd_state"]["teachers"][0]["checkpoint"].endswith(
        os.path.join("nnUNetTrainerClsJointTeacher_tiny__" + cls_run.plans + "__2d", "fold_0", "checkpoint_final.pth"))
    assert set(student["network_weights"]) == set(target["network_weights"])  # a plain classifier
    assert student["kd_state"]["modules"]  # the feature adapters
    assert len(student["logging"]["kd_losses"]) == 2 and all(np.isfinite(student["logging"]["kd_losses"]))


def test_multi_head_keeps_a_head_per_source(cls_run):
    ckpt = _checkpoint(cls_run, "nnUNetTrainerClsMultiHead_tiny")
    assert [k for k in ckpt["kd_state"]["modules"] if k.endswith("weight")] == ["heads.0.weight", "heads.1.weight"]


def test_plan_refuses_datasets_without_class_labels(cls_run, tmp_path):
    setup = cls_run.setup
    labels = os.path.join(setup.raw, "Dataset022_ClsSourceA", "labels.csv")
    original = open(labels).read()
    try:
        with open(labels, "a") as f:
            f.write("clssourcea_train_000,pneumonia\n")
        proc = setup.run(["nnunet_kd", "plan", "--task", "cls", "-t", "21", "-s", "22", "-c", "2d"], check=False,
                         ext_trainer=False)
    finally:
        with open(labels, "w") as f:
            f.write(original)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pneumonia" in proc.stderr and "labels.csv" in proc.stderr


def test_the_student_refuses_decoder_levels_and_channel_wise_kd():
    from nnunet_kd.classification.student import nnUNetTrainerClsJointKD
    check_student_without_unet_decoder(nnUNetTrainerClsJointKD, "classifier")
