"""`nnunet_kd predict-cls` on the classification fixture's models."""
import os

import numpy as np
import pandas as pd


def _predict(cls_run, trainer, out, *folds, check=True):
    return cls_run.setup.run(["nnunet_kd", "predict-cls", "-i", os.path.join(cls_run.setup.raw, cls_run.target,
                                                                             "imagesTs"),
                              "-o", str(out), "-m", cls_run.model_folder(trainer), "-f", *folds, "-device", "cpu"],
                             ext_trainer=False, check=check)


def _probs(csv):
    table = pd.read_csv(csv)
    return table, table[[c for c in table.columns if c.startswith("p_")]].to_numpy()


def test_folds_are_ensembled(cls_run, tmp_path):
    cls_run.setup.train(cls_run.target, "nnUNetTrainerCls_tiny", 1)
    for folds in (["0"], ["1"], ["0", "1"]):
        _predict(cls_run, "nnUNetTrainerCls_tiny", tmp_path / f"{''.join(folds)}.csv", *folds)
    (t0, p0), (_, p1), (t01, p01) = (_probs(tmp_path / f"{n}.csv") for n in ("0", "1", "01"))
    assert list(t01.columns) == ["case", "p_none", "p_round", "p_elongated", "predicted"]
    assert sorted(t01["case"]) == sorted(f[:-9] for f in os.listdir(os.path.join(cls_run.setup.raw, cls_run.target,
                                                                                 "imagesTs")))
    np.testing.assert_allclose(p01.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(p01, (p0 + p1) / 2, atol=2e-6)
    assert list(t01["predicted"]) == [["none", "round", "elongated"][i] for i in p01.argmax(1)]


def test_joint_teacher_and_student_predict(cls_run, tmp_path):
    for trainer in ("nnUNetTrainerClsJointTeacher_tiny", "nnUNetTrainerClsJointKD_tiny"):
        _predict(cls_run, trainer, tmp_path / "p.csv", "0")
        assert len(pd.read_csv(tmp_path / "p.csv")) == 6


def test_bad_input_names_the_path(cls_run, tmp_path):
    proc = _predict(cls_run, "nnUNetTrainerCls_tiny", tmp_path / "p.csv", "3", check=False)
    assert proc.returncode == 2 and "fold_3" in proc.stderr and "Traceback" not in proc.stderr
    proc = _predict(cls_run, "nnUNetTrainerNope", tmp_path / "p.csv", "0", check=False)
    assert proc.returncode == 2 and "plans.json is missing" in proc.stderr
    assert not os.path.exists(tmp_path / "p.csv")
