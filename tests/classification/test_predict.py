"""`nnunet_kd predict-cls` on the classification fixture's models."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from nnunet_kd.classification.labels import TEST_LABELS_CSV
from nnunet_kd.classification.predict import predict_cls
from nnunet_kd.cli import main
from nnunet_kd.core.errors import KDError


def _images(cls_run):
    return os.path.join(cls_run.setup.raw, cls_run.target, "imagesTs")


def _probs(csv):
    table = pd.read_csv(csv)
    return table, table[[c for c in table.columns if c.startswith("p_")]].to_numpy()


def test_folds_are_ensembled(cls_run, tmp_path):
    cls_run.setup.train(cls_run.target, "nnUNetTrainerCls_tiny", 1)
    folder = cls_run.model_folder("nnUNetTrainerCls_tiny")
    cls_run.setup.run(["nnunet_kd", "predict-cls", "-i", _images(cls_run), "-o", str(tmp_path / "01.csv"), "-m",
                       folder, "-f", "0", "1", "-device", "cpu"], ext_trainer=False)  # the entry point
    p0, p1 = (predict_cls(_images(cls_run), str(tmp_path / f"{f}.csv"), folder, [f]) for f in ("0", "1"))
    t01, p01 = _probs(tmp_path / "01.csv")
    assert list(t01.columns) == ["case", "p_none", "p_round", "p_elongated", "predicted"]
    assert sorted(t01["case"]) == sorted(f[:-9] for f in os.listdir(_images(cls_run)))
    np.testing.assert_allclose(p01.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(p01, (p0 + p1) / 2, atol=2e-6)
    assert list(t01["predicted"]) == [["none", "round", "elongated"][i] for i in p01.argmax(1)]


def test_joint_teacher_and_student_predict(cls_run, tmp_path):
    truth = os.path.join(cls_run.setup.raw, cls_run.target, TEST_LABELS_CSV)
    for trainer in ("nnUNetTrainerClsJointTeacher_tiny", "nnUNetTrainerClsJointKD_tiny"):
        probs = predict_cls(_images(cls_run), str(tmp_path / "p.csv"), cls_run.model_folder(trainer), ["0"],
                            truth=truth)
        table = pd.read_csv(tmp_path / "p.csv", dtype=str)
        assert probs.shape == (6, 3) and len(table) == 6
        summary = json.loads((tmp_path / "p_summary.json").read_text())  # --truth: the summary with every case
        true = pd.read_csv(truth, dtype=str).set_index("case")["class"]
        assert summary["per_case"] == [{"case": c, "true": true[c], "predicted": p, "probabilities": list(q)}
                                       for c, p, q in zip(table["case"], table["predicted"], probs.tolist())]
        assert summary["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(true[table["case"]],
                                                                                     table["predicted"]))
    (tmp_path / "short.csv").write_text("case,class\n" + f"{table['case'][0]},round\n")
    with pytest.raises(KDError, match="no class for the cases"):
        predict_cls(_images(cls_run), str(tmp_path / "q.csv"), cls_run.model_folder(trainer), ["0"],
                    truth=str(tmp_path / "short.csv"))


def test_bad_input_names_the_path(cls_run, tmp_path, capsys):
    args = ["predict-cls", "-i", _images(cls_run), "-o", str(tmp_path / "p.csv"), "-device", "cpu"]
    assert main(args + ["-m", cls_run.model_folder("nnUNetTrainerCls_tiny"), "-f", "3"]) == 2
    assert "fold_3" in capsys.readouterr().err
    assert main(args + ["-m", cls_run.model_folder("nnUNetTrainerNope"), "-f", "0"]) == 2
    assert "plans.json is missing" in capsys.readouterr().err
    model = cls_run.model_folder("nnUNetTrainerCls_tiny")
    plans = json.loads(open(os.path.join(model, "plans.json")).read())
    for task, hint in (("seg", "segmentation model, not a classification one. Predict it with stock nnU-Net: "
                               "nnUNetv2_predict -i IMAGES -o OUTPUT -d"),
                       ("det", "Predict it with nnunet_kd predict-det")):
        other = tmp_path / f"nnUNetTrainer__Plans{task}__2d"  # a model of another task
        other.mkdir()
        p = json.loads(json.dumps(plans))
        if task == "seg":
            p.pop("nnunet_kd")  # stock nnU-Net plans
        else:
            p["nnunet_kd"]["task"] = task
        (other / "plans.json").write_text(json.dumps(p))
        (other / "dataset.json").write_text(open(os.path.join(model, "dataset.json")).read())
        assert main(args + ["-m", str(other)]) == 2
        assert hint in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "p.csv")
    folds = sorted(d for d in os.listdir(model) if os.path.isfile(os.path.join(model, d, "checkpoint_final.pth")))
    assert main(["predict-cls", "-i", _images(cls_run), "-o", str(tmp_path / "all.csv"), "-device", "cpu", "-m",
                 model]) == 0  # default: every fold the model has
    _, p_all = _probs(tmp_path / "all.csv")
    np.testing.assert_allclose(p_all, predict_cls(_images(cls_run), str(tmp_path / "f.csv"), model,
                                                  [f[5:] for f in folds]), atol=2e-6)
