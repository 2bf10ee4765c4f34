"""Trained nnU-Net models as teachers (`--target-teacher`, `--source-teacher`) on the fixture's trained pipeline."""
import json
import os
import shutil

import pytest
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import CHANNEL_MAP, tree_digest
from nnunet_kd.checkpoints import load_checkpoint
from nnunet_kd.protocol.teachers import file_sha256

RUN = ["nnunet_kd", "run", "-t", "1", "-s", "2", "3", "-c", "2d", "-f", "0", "--preset", "tiny", "--channel-map",
       json.dumps(CHANNEL_MAP), "--suffix", "_tiny", "--device", "cpu"]


def _existing(kd_pipeline):
    return ["--target-teacher", kd_pipeline.target_teacher, "--source-teacher", kd_pipeline.source_teachers[0]]


def test_dry_run_trains_only_the_teachers_not_given(kd, kd_pipeline, tmp_path):
    env = dict(kd.env, nnUNet_results=str(tmp_path / "results"))
    os.makedirs(env["nnUNet_results"])
    out = kd.run(RUN + _existing(kd_pipeline) + ["--dry-run"], env=env).stdout
    stages = {line.split("\t")[0]: line.split("\t")[1] for line in out.splitlines() if not line.startswith("#")}
    assert list(stages) == ["plan", f"source:{kd.source_b}", "joint:0", "student:0"]  # no target, no source A
    assert stages["joint:0"] == f"after=source:{kd.source_b}"


@pytest.mark.parametrize("make_args, message", [
    (lambda p, tmp: ["--target-teacher", p.source_teachers[1]],
     "was trained on Dataset902_KDSourceBForKDTarget, not on the target Dataset001_KDTarget"),
    (lambda p, tmp: ["--source-teacher", p.target_teacher],
     "was trained on Dataset001_KDTarget, which is not among the sources"),
    (lambda p, tmp: ["--target-teacher", os.path.join(p.target_teacher, "fold_3")],
     "fold_3 has no checkpoint_final.pth (finished folds: ['0'])"),
    (lambda p, tmp: ["--target-teacher", str(tmp)], "not a trained nnU-Net model folder"),
    (lambda p, tmp: ["--source-teacher", p.source_teachers[0], "--source-teacher", p.source_teachers[0]],
     "Two --source-teacher models for Dataset002_KDSourceA"),
    (lambda p, tmp: ["--target-teacher", _with_spacing(p.target_teacher, tmp)],
     "was trained on other input than the shared plans make (spacing [2.0, 2.0] vs [1.0, 1.0])"),
])
def test_unusable_models_are_clear_errors_before_training(kd, kd_pipeline, tmp_path, make_args, message):
    env = dict(kd.env, nnUNet_results=str(tmp_path / "results"))
    os.makedirs(env["nnUNet_results"])
    before = tree_digest(kd.preprocessed)
    proc = kd.run(RUN + make_args(kd_pipeline, tmp_path), env=env, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in proc.stderr
    assert os.listdir(env["nnUNet_results"]) == []
    new = {k for k in set(tree_digest(kd.preprocessed)) - set(before) if not k.endswith("nnunet_kd_raw_files.json")}
    assert not [k for k in new if k.endswith(".json") and "nnUNetPlans_kd_" in k]  # no plans written


def _with_spacing(model_folder, tmp):
    """A copy of the model whose plans say it was trained at another spacing."""
    copy = os.path.join(str(tmp), "copy", os.path.basename(model_folder))
    shutil.copytree(model_folder, copy)
    plans = load_json(os.path.join(copy, "plans.json"))
    plans["configurations"]["2d"]["spacing"] = [2.0, 2.0]
    with open(os.path.join(copy, "plans.json"), "w") as f:
        json.dump(plans, f)
    return copy


def test_existing_teachers_are_used_not_trained(kd, kd_pipeline, tmp_path):
    """Both existing teachers and the remaining source teacher make the joint teacher; the report's baseline is the
    existing target teacher."""
    env = dict(kd.env, nnUNet_results=str(tmp_path / "results"))
    os.makedirs(env["nnUNet_results"])
    proc = kd.run(RUN + ["--target-teacher", kd_pipeline.target_teacher, "--source-teacher",
                         kd_pipeline.source_teachers[0], "--source-teacher", kd_pipeline.source_teachers[1]], env=env)
    assert list(dict.fromkeys(line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("["))) == [
        "[1/3] shared plans", "[2/3] joint teacher fold 0", "[3/3] student fold 0"]
    target = os.path.join(env["nnUNet_results"], kd.target)
    joint = next(d for d in os.listdir(target) if d.startswith("nnUNetTrainerJointTeacher_tiny__"))
    records = load_checkpoint(os.path.join(target, joint, "fold_0", "checkpoint_final.pth"))["kd_state"]["teachers"]
    expected = [os.path.join(kd_pipeline.target_teacher, "fold_0", "checkpoint_final.pth")] + [
        os.path.join(s, "fold_all", "checkpoint_final.pth") for s in kd_pipeline.source_teachers]
    assert [r["sha256"] for r in records] == [file_sha256(p) for p in expected]
    assert f"| dataset-specific (target teacher) | {os.path.basename(kd_pipeline.target_teacher)} |" in proc.stdout
