"""Variants beyond the fixture's 2D default: a 3D region-based target, a half-width student with decoder levels."""
import importlib.util
import json
import os

import pytest
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import NUM_PROCESSES, use_env
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.data.synthetic import Scanner
from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
from nnunet_kd.planning.shared import plan
from nnunet_kd.planning.request import PlanRequest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_3d_region_based_target_and_its_source_teacher(nnunet_env):
    kd = nnunet_env
    target = write_dataset(kd.raw, DatasetSpec(10, "Regions3D", {"T1": Scanner()}, 5, 0, (16, 24, 24),
                                               extra_labels=["core"]))
    dj = load_json(os.path.join(target, "dataset.json"))
    dj["labels"] = {"background": 0, "whole": [1, 2], "core": 2}
    dj["regions_class_order"] = [1, 2]
    with open(os.path.join(target, "dataset.json"), "w") as f:
        json.dump(dj, f)
    write_dataset(kd.raw, DatasetSpec(11, "Source3D", {"t1": Scanner(organ=0.3, lesion=0.9, noise=0.08)}, 6, 0,
                                      (16, 24, 24), spacing=(1.5, 1.0, 1.0)))
    name = plan(PlanRequest(10, [11], ["3d_fullres"], preset="tiny"), num_processes=NUM_PROCESSES, verbose=False).name
    conf = load_json(os.path.join(kd.preprocessed, "Dataset011_Source3D", name + ".json"))["configurations"]
    assert conf["3d_fullres"]["architecture"]["arch_kwargs"]["conv_op"].endswith("Conv3d")
    kd.run(["nnUNetv2_train", "11", "3d_fullres", "all", "-p", name, "-tr", "nnUNetTrainerDomainAdversarial_tiny",
            "-device", "cpu"])
    folder = os.path.join(kd.results, "Dataset011_Source3D",
                          f"nnUNetTrainerDomainAdversarial_tiny__{name}__3d_fullres", "fold_all")
    ckpt = load_checkpoint(os.path.join(folder, "checkpoint_final.pth"))
    assert ckpt["kd_state"]["step"] == 4 and len(ckpt["logging"]["domain_losses"]) == 2


def test_half_width_student_with_decoder_levels_and_the_width_benchmark(kd, kd_pipeline, tmp_path, monkeypatch):
    """A half-width student with decoder levels of the shared run's joint teacher, trained on a copy of its results:
    its recorded architecture, adapters and teacher, stock prediction; then benchmarks/student_width.py compares it
    with the full-width one (its figures not asserted)."""
    half = kd.plans + "_half"
    plans = load_json(os.path.join(kd.preprocessed, kd.target, kd.plans + ".json"))
    plans["plans_name"] = half
    # another width: from random weights at nnU-Net's learning rate (what `plan` writes for a half-width student)
    plans["nnunet_kd"]["student"].update(width=0.5, init_from_target_teacher=False, initial_lr=0.01)
    plans["nnunet_kd"]["distill"]["decoder_levels"] = True
    plans["nnunet_kd"]["student"]["joint_teacher_plans"] = kd.plans  # the shared run's joint teacher
    with open(os.path.join(kd.preprocessed, kd.target, half + ".json"), "w") as f:
        json.dump(plans, f)
    env = kd_pipeline.copy(tmp_path)  # not deeper: multiprocessing's sockets under TMPDIR need a short path
    kd.run(["nnUNetv2_train", kd.target, "2d", "0", "-p", half, "-tr", "nnUNetTrainerJointKD_tiny", "-device", "cpu"],
           env=env)
    folder = os.path.join(env["nnUNet_results"], kd.target, f"nnUNetTrainerJointKD_tiny__{half}__2d")
    arch = load_json(os.path.join(folder, "plans.json"))["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert arch["features_per_stage"] == [16, 16, 16]  # recorded for stock predict
    ckpt = load_checkpoint(os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    assert len([k for k in ckpt["kd_state"]["modules"] if k.endswith("weight")]) == 5  # 3 encoder + 2 decoder levels
    assert [t["checkpoint"] for t in ckpt["kd_state"]["teachers"]] == [
        f"$nnUNet_results/{kd.target}/nnUNetTrainerJointTeacher_tiny__{kd.plans}__2d/fold_0/checkpoint_final.pth"]
    out = tmp_path / "pred"
    kd.run(["nnUNetv2_predict", "-i", os.path.join(kd.raw, kd.target, "imagesTs"), "-o", str(out), "-d", kd.target,
            "-c", "2d", "-f", "0", "-p", half, "-tr", "nnUNetTrainerJointKD_tiny", "-device", "cpu"], env=env,
           ext_trainer=False)
    assert len([f for f in os.listdir(out) if f.endswith(".png")]) == 4

    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))  # as `python benchmarks/student_width.py` has it
    spec = importlib.util.spec_from_file_location("student_width", os.path.join(ROOT, "benchmarks", "student_width.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    use_env(monkeypatch, env)
    out = tmp_path / "width.md"
    bench.main(["-t", "1", "-p", kd.plans, "-f", "0", "--suffix", "_tiny", "--narrow-plans", half,
                "--repeats", "2", "--out", str(out)])
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| 1 ")
            or line.startswith("| 0.5 ")]
    assert [r[0].strip() for r in rows] == ["1", "0.5"]
    params = [int(r[1].replace(",", "")) for r in rows]
    assert params[1] < params[0] / 2  # half the channels: about a quarter of the weights
    assert all(0 <= float(r[4]) <= 1 for r in rows)
