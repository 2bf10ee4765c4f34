"""Trained nnU-Net models as teachers (`--target-teacher`, `--source-teacher`) on the fixture's trained pipeline."""
import json
import os
import shutil

import pytest
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import RUN, fake_sbatch, tree_digest, use_env
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.cli import main
from nnunet_kd.core.teachers import file_sha256



def _existing(kd_pipeline):
    return ["--target-teacher", kd_pipeline.target_teacher, "--source-teacher", kd_pipeline.source_teachers[0]]


def test_dry_run_trains_only_the_teachers_not_given(kd, kd_pipeline, tmp_path, monkeypatch, capsys):
    use_env(monkeypatch, dict(kd.env, nnUNet_results=str(tmp_path / "results")))
    os.makedirs(tmp_path / "results")
    assert main(RUN[1:] + _existing(kd_pipeline) + ["--dry-run"]) == 0
    out = capsys.readouterr().out
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
    (lambda p, tmp: ["--target-teacher", str(tmp / "absent")], "absent does not exist. Give the teacher's model folder"),
    (lambda p, tmp: ["--source-teacher", p.source_teachers[0], "--source-teacher", p.source_teachers[0]],
     "Two --source-teacher models for Dataset002_KDSourceA"),
    (lambda p, tmp: ["--target-teacher", _with_spacing(p.target_teacher, tmp)],
     "was trained on other input than the shared plans make (spacing [2.0, 2.0] vs [1.0, 1.0])"),
])
def test_unusable_models_are_clear_errors_before_training(kd, kd_pipeline, tmp_path, monkeypatch, capfd, make_args,
                                                          message):
    use_env(monkeypatch, dict(kd.env, nnUNet_results=str(tmp_path / "results")))
    os.makedirs(tmp_path / "results")
    before = tree_digest(kd.preprocessed)
    assert main(RUN[1:] + make_args(kd_pipeline, tmp_path)) == 2
    assert message in capfd.readouterr().err  # the run's, or its planning stage's (a child process)
    assert os.listdir(tmp_path / "results") == []
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


def test_existing_teachers_are_used_not_trained_by_slurm_jobs(kd, kd_pipeline, tmp_path, monkeypatch, capsys):
    """Both existing teachers and the remaining source teacher make the joint teacher, in SLURM jobs (run at once by
    a fake sbatch); the last job's report has the existing target teacher as its baseline."""
    env = fake_sbatch(tmp_path, dict(kd.env, nnUNet_results=str(tmp_path / "results")), execute=True)
    kd.run(RUN + ["--target-teacher", kd_pipeline.target_teacher, "--source-teacher", kd_pipeline.source_teachers[0],
                  "--source-teacher", kd_pipeline.source_teachers[1], "--slurm", "--submit"], env=env)
    ledger = load_json(env["FAKE_SBATCH_LEDGER"])
    assert [(j["name"], j["rc"]) for j in ledger] == [(f"nnunet_kd_{n}", 0) for n in ("plan", "joint_0", "student_0",
                                                                                      "run")]
    target = os.path.join(env["nnUNet_results"], kd.target)
    joint = next(d for d in os.listdir(target) if d.startswith("nnUNetTrainerJointTeacher_tiny__"))
    records = load_checkpoint(os.path.join(target, joint, "fold_0", "checkpoint_final.pth"))["kd_state"]["teachers"]
    expected = [os.path.join(kd_pipeline.target_teacher, "fold_0", "checkpoint_final.pth")] + [
        os.path.join(s, "fold_all", "checkpoint_final.pth") for s in kd_pipeline.source_teachers]
    assert [r["sha256"] for r in records] == [file_sha256(p) for p in expected]
    for trainer in ("nnUNetTrainerJointTeacher_tiny", "nnUNetTrainerJointKD_tiny"):  # adopted by the last job
        folder = os.path.join(target, joint.replace("nnUNetTrainerJointTeacher_tiny", trainer), "fold_0")
        assert load_json(os.path.join(folder, "nnunet_kd_stage.json"))["adopted"]
    plans = joint.split("__")[1]
    with open(os.path.join(target, f"nnunet_kd_run_{plans}.log")) as f:
        log = f.read()
    assert f"| dataset-specific (target teacher) | {os.path.basename(kd_pipeline.target_teacher)} |" in log
    assert "| student | nnUNetTrainerJointKD_tiny | 0 |" in log
    # a standalone `report` finds the existing target teacher in the experiment's KD block too
    use_env(monkeypatch, env)
    assert main(["report", "-t", "1", "-p", plans, "-c", "2d", "--suffix", "_tiny", "-o", str(tmp_path / "r")]) == 0
    assert f"| dataset-specific (target teacher) | {os.path.basename(kd_pipeline.target_teacher)} |" in \
        capsys.readouterr().out
