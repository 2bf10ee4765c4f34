"""The whole method through nnU-Net's own entry points: teachers -> joint teacher -> student -> stock tools."""
import json
import os
import sys

import numpy as np
import pytest
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import use_env
from nnunet_kd import trainer_path
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.core.teachers import file_sha256, resolve_path
from nnunet_kd.segmentation.network import CLASS_NAME

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _ckpt(folder, fold=0):
    return load_checkpoint(os.path.join(folder, f"fold_{fold}", "checkpoint_final.pth"))


def _test_predictions(kd, kd_pipeline, trainer):
    """The shared run's predictions of the target's test images (`run --test-images`, nnU-Net's predictor)."""
    return os.path.join(kd_pipeline.env["nnUNet_results"], kd.target, f"nnunet_kd_test_{kd.plans}_2d", trainer)


def test_student_logs_and_plots_every_term(kd_pipeline):
    ckpt = _ckpt(kd_pipeline.student)
    for key in ("task_losses", "feat_losses", "kd_losses"):
        values = ckpt["logging"][key]
        assert len(values) == 2 and all(np.isfinite(values)), key
    assert ckpt["logging"]["kd_losses"][0] > 0 and ckpt["logging"]["feat_losses"][0] > 0
    assert os.path.isfile(os.path.join(kd_pipeline.student, "fold_0", "progress_kd.png"))
    adapters = ckpt["kd_state"]["modules"]
    assert len([k for k in adapters if k.endswith("weight")]) == 3  # one adapter per encoder level
    record = ckpt["kd_state"]["teachers"][0]
    assert record["role"] == "joint" and record["sha256"] == file_sha256(resolve_path(record["checkpoint"]))


def test_joint_teacher_is_self_contained(kd, kd_pipeline):
    plans = load_json(os.path.join(kd_pipeline.joint_teacher, "plans.json"))
    arch = plans["configurations"]["2d"]["architecture"]
    assert arch["network_class_name"] == CLASS_NAME and len(arch["arch_kwargs"]["teachers"]) == 3
    assert os.path.isfile(os.path.join(kd_pipeline.joint_teacher, "fold_0", "validation", "summary.json"))
    pred = _test_predictions(kd, kd_pipeline, "nnUNetTrainerJointTeacher_tiny")  # from its own folder alone
    assert len([f for f in os.listdir(pred) if f.endswith(".png")]) == 4


def test_teachers_are_bit_identical_after_training(kd_pipeline):
    joint = _ckpt(kd_pipeline.joint_teacher)
    records = joint["kd_state"]["teachers"]
    assert [r["role"] for r in records] == ["target", "source", "source"]
    for i, (record, folder) in enumerate(zip(records, [kd_pipeline.target_teacher] + kd_pipeline.source_teachers)):
        assert record["checkpoint"].startswith("$nnUNet_results/")  # portable: relative to nnUNet_results
        assert record["sha256"] == file_sha256(resolve_path(record["checkpoint"]))
        teacher = _ckpt(folder, record["fold"])["network_weights"]
        for k, v in teacher.items():
            if k.startswith("encoder."):
                assert torch.equal(joint["network_weights"][f"teacher_encoders.{i}.{k[8:]}"], v), k


def test_continue_restores_student_adapters(kd, kd_pipeline, tmp_path, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    use_env(monkeypatch, dict(kd_pipeline.copy(tmp_path), nnUNet_extTrainer=trainer_path()))  # the trainer logs
    saved = _ckpt(kd_pipeline.student)["kd_state"]
    trainer = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny", kd.plans,
                                    continue_training=True, device=torch.device("cpu"))
    trainer.load_checkpoint(os.path.join(trainer.output_folder, "checkpoint_final.pth"))
    assert trainer.kd_step == saved["step"] == 4
    for k, v in trainer.kd_modules.state_dict().items():
        assert torch.equal(v, saved["modules"][k])


# a challenge container: stock nnU-Net, the plugin not importable (also not through an editable install's finder)
BLOCKER = """import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name == "nnunet_kd" or name.startswith("nnunet_kd."):
            raise ImportError(name + " is blocked: the container has stock nnU-Net only")
sys.meta_path.insert(0, _Blocked())
"""


def test_exported_student_gives_the_reports_test_dice_where_only_stock_nnunet_runs(kd, kd_pipeline, tmp_path):
    """The README's challenge steps: export, install into an empty results folder, nnUNetv2_predict and
    nnUNetv2_evaluate_folder with the plugin unimportable give the test Dice `run --test-images` reported."""
    ckpt = _ckpt(kd_pipeline.student)
    assert ckpt["trainer_name"] == "nnUNetTrainer" and ckpt["kd_trainer_name"] == "nnUNetTrainerJointKD_tiny"
    images, labels = (os.path.join(kd.raw, kd.target, d) for d in ("imagesTs", "labelsTs"))
    reported = load_json(os.path.join(_test_predictions(kd, kd_pipeline, "nnUNetTrainerJointKD_tiny"), "summary.json"))
    zip_file = str(tmp_path / "student.zip")
    kd.run(["nnUNetv2_export_model_to_zip", "-d", kd.target, "-o", zip_file, "-c", "2d", "-tr",
            "nnUNetTrainerJointKD_tiny", "-p", kd.plans, "-f", "0"], ext_trainer=False)
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    container = {k: v for k, v in kd.env.items() if k != "nnUNet_extTrainer"}
    container.update(nnUNet_results=str(tmp_path / "fresh_results"), PYTHONPATH=str(tmp_path / "blocker"))
    os.makedirs(container["nnUNet_results"])
    blocked = kd.run([sys.executable, "-c", "import nnunet_kd"], env=container, ext_trainer=False, check=False)
    assert blocked.returncode == 1 and "is blocked" in blocked.stderr
    kd.run(["nnUNetv2_install_pretrained_model_from_zip", zip_file], env=container, ext_trainer=False)
    installed = kd.model_folder(kd.target, "nnUNetTrainerJointKD_tiny", container["nnUNet_results"])
    out = str(tmp_path / "out")
    kd.run(["nnUNetv2_predict", "-i", images, "-o", out, "-d", kd.target, "-c", "2d", "-f", "0", "-p", kd.plans,
            "-tr", "nnUNetTrainerJointKD_tiny", "-device", "cpu"], env=container, ext_trainer=False)
    kd.run(["nnUNetv2_evaluate_folder", labels, out, "-djfile", os.path.join(installed, "dataset.json"),
            "-pfile", os.path.join(installed, "plans.json"), "-np", "1"], env=container, ext_trainer=False)
    summary = load_json(os.path.join(out, "summary.json"))
    assert len(summary["metric_per_case"]) == 4
    assert summary["foreground_mean"]["Dice"] == pytest.approx(reported["foreground_mean"]["Dice"], abs=1e-6)
    for got, want in zip(summary["metric_per_case"], reported["metric_per_case"]):
        assert os.path.basename(got["reference_file"]) == os.path.basename(want["reference_file"])
        for c, m in want["metrics"].items():
            assert got["metrics"][c]["Dice"] == pytest.approx(m["Dice"], nan_ok=True)


def test_multi_head_baseline_exports_a_stock_target_head(kd, kd_pipeline):
    ckpt = _ckpt(kd_pipeline.multi_head)
    assert ckpt["trainer_name"] == "nnUNetTrainer"
    assert set(_ckpt(kd_pipeline.target_teacher)["network_weights"]) == set(ckpt["network_weights"])
    assert any(k.startswith("decoders.1.") for k in ckpt["kd_state"]["modules"])  # one decoder per source
    assert len(ckpt["logging"]["source_losses"]) == 2
    pred = _test_predictions(kd, kd_pipeline, "nnUNetTrainerMultiHead_tiny")  # predicted from the stock network
    assert len([f for f in os.listdir(pred) if f.endswith(".png")]) == 4


def test_missing_teacher_is_a_clear_error(kd, kd_pipeline, tmp_path):
    path = os.path.join(kd.preprocessed, kd.target, kd.plans + ".json")
    plans = load_json(path)
    plans["plans_name"] = kd.plans + "_fold3"
    plans["nnunet_kd"]["teachers"][1]["fold"] = 3
    with open(os.path.join(kd.preprocessed, kd.target, kd.plans + "_fold3.json"), "w") as f:
        json.dump(plans, f)
    proc = kd.run(["nnUNetv2_train", kd.target, "2d", "0", "-p", kd.plans + "_fold3", "-tr",
                   "nnUNetTrainerJointTeacher_tiny", "-device", "cpu"], env=kd_pipeline.copy(tmp_path), check=False)
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr and "-tr nnUNetTrainerDomainAdversarial_tiny" in proc.stderr


def test_a_joint_teacher_whose_plans_name_the_former_module_predicts_and_resumes(kd, kd_pipeline, tmp_path):
    """Joint teachers trained before the joint network moved to segmentation/network.py name
    nnunet_kd.segmentation.joint_network in their model folder's plans: they still predict and continue (--c)."""
    env = kd_pipeline.copy(tmp_path)
    relative = os.path.relpath(kd_pipeline.joint_teacher, kd_pipeline.env["nnUNet_results"])
    plans_file = os.path.join(env["nnUNet_results"], relative, "plans.json")
    plans = load_json(plans_file)
    plans["configurations"]["2d"]["architecture"]["network_class_name"] = \
        "nnunet_kd.segmentation.joint_network.JointTeacherNetwork"
    with open(plans_file, "w") as f:
        json.dump(plans, f)
    out = str(tmp_path / "pred")
    kd.run(["nnUNetv2_predict", "-i", os.path.join(kd.raw, kd.target, "imagesTs"), "-o", out, "-d", kd.target, "-c",
            "2d", "-f", "0", "-p", kd.plans, "-tr", "nnUNetTrainerJointTeacher_tiny", "-device", "cpu"], env=env)
    assert len([f for f in os.listdir(out) if f.endswith(".png")]) == 4
    proc = kd.train(kd.target, "nnUNetTrainerJointTeacher_tiny", 0, "--c", env=env)
    assert "Mean Validation Dice" in proc.stdout
