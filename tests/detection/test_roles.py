"""The detection roles through the real entry points (`nnunet_kd run --task det` -> nnUNetv2_train)."""
import json
import math
import os

import pytest
import torch

from helpers import KDSetup, check_student_without_unet_decoder
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.settings import load_preset
from nnunet_kd.detection.labels import TEST_BOXES_JSON, read_boxes
from nnunet_kd.detection.predict import predict_det
from nnunet_kd.detection.synthetic import det_benchmark, write_det_dataset

ROLES = {"nnUNetTrainerDet_tiny": "Dataset041_DetTarget", "nnUNetTrainerDetDomainAdversarial_tiny": "Dataset042_DetSourceA",
         "nnUNetTrainerDetJointTeacher_tiny": "Dataset041_DetTarget", "nnUNetTrainerDetJointKD_tiny": "Dataset041_DetTarget"}


@pytest.mark.slow
def test_every_detection_role_trains_and_validates(tmp_path):
    """The pipeline with unlabelled target images (the test images, unlabelled here), distilled on by the student."""
    setup = KDSetup.create(str(tmp_path))
    target, source, _ = det_benchmark(n_target=6, n_source=6, n_test=2)
    for spec in (target, source):
        write_det_dataset(setup.raw, spec)
    preset = tmp_path / "tiny_unlabelled.json"
    preset.write_text(json.dumps(dict(load_preset("tiny", "det"), task="det",
                                      distill=dict(load_preset("tiny")["distill"], unlabelled_ratio=0.5))))
    proc = setup.run(["nnunet_kd", "run", "--task", "det", "-t", "41", "-s", "42", "-c", "2d", "-f", "all",
                      "--preset", str(preset), "--suffix", "_tiny", "--device", "cpu", "--extra-target-images",
                      os.path.join(setup.raw, "Dataset041_DetTarget", "imagesTs")], ext_trainer=False)
    assert "Val mAP (mean ± std)" in proc.stdout
    setup.plans = next(line.split("-p ")[1].split()[0] for line in proc.stdout.splitlines() if "nnUNetv2_train" in line)
    ckpts = {}
    for trainer, dataset in ROLES.items():
        folder = os.path.join(setup.model_folder(dataset, trainer), "fold_all")
        with open(os.path.join(folder, "validation", "summary.json")) as f:
            summary = json.load(f)
        assert summary["num_images"] == 6 and summary["num_boxes"] > 0
        assert 0 <= summary["mAP"] <= 1 and 0 <= summary["mAP_50"] <= 1 and 0 <= summary["froc"] <= 1
        assert set(summary["sensitivity"]) == {"0.125", "0.25", "0.5", "1", "2", "4", "8"}
        ckpts[trainer] = load_checkpoint(os.path.join(folder, "checkpoint_final.pth"))
        assert ckpts[trainer]["kd_trainer_name"] == trainer
        assert all(math.isfinite(v) for v in ckpts[trainer]["logging"]["train_losses"])
    source = ckpts["nnUNetTrainerDetDomainAdversarial_tiny"]
    assert any(k.startswith("heads.") for k in source["kd_state"]["modules"])  # the domain classifier
    assert len(source["logging"]["domain_losses"]) == 2
    joint = ckpts["nnUNetTrainerDetJointTeacher_tiny"]
    assert [t["role"] for t in joint["kd_state"]["teachers"]] == ["target", "source"]
    target_enc = {k[len("backbone.encoder."):]: v for k, v in ckpts["nnUNetTrainerDet_tiny"]["network_weights"].items()
                  if k.startswith("backbone.encoder.")}
    for k, v in target_enc.items():  # the frozen target teacher's encoder, unchanged by the joint teacher's training
        assert torch.equal(joint["network_weights"][f"backbone.encoder.teacher_encoders.0.{k}"], v)
    student = ckpts["nnUNetTrainerDetJointKD_tiny"]
    assert [t["role"] for t in student["kd_state"]["teachers"]] == ["joint"]
    folder = os.path.join(setup.model_folder("Dataset041_DetTarget", "nnUNetTrainerDetJointKD_tiny"), "fold_all")
    log = "".join(open(os.path.join(folder, f)).read() for f in os.listdir(folder) if f.startswith("training_log"))
    assert "nnunet_kd: 1 unlabelled target image(s) in every batch" in log
    assert set(student["network_weights"]) == set(ckpts["nnUNetTrainerDet_tiny"]["network_weights"])
    assert len(student["logging"]["kd_losses"]) == 2 and all(math.isfinite(v) for v in student["logging"]["kd_losses"])
    # the student predicts raw test images: COCO result entries in the original pixels
    out = tmp_path / "results.json"
    truth = os.path.join(setup.raw, "Dataset041_DetTarget", TEST_BOXES_JSON)
    results = predict_det(os.path.join(setup.raw, "Dataset041_DetTarget", "imagesTs"), str(out),
                          setup.model_folder("Dataset041_DetTarget", "nnUNetTrainerDetJointKD_tiny"), ["all"],
                          truth=truth)
    assert json.loads(out.read_text()) == results
    summary = json.loads((tmp_path / "results_summary.json").read_text())  # --truth: every image's boxes and results
    assert sorted(summary["per_case"]) == ["dettarget_test_000", "dettarget_test_001"]
    assert sum(len(c["predictions"]) for c in summary["per_case"].values()) == len(results)
    assert [len(c["boxes"]) for _, c in sorted(summary["per_case"].items())] == [
        len(v) for _, v in sorted(read_boxes(os.path.dirname(truth), TEST_BOXES_JSON).items())]
    assert {r["image_id"] for r in results} <= {"dettarget_test_000", "dettarget_test_001"}
    for r in results:
        x, y, w, h = r["bbox"]
        assert r["category"] in ("nodule", "mass") and r["category_id"] in (1, 2) and 0 <= r["score"] <= 1
        assert -1e-3 <= x and -1e-3 <= y and w > 0 and h > 0 and x + w <= 64 + 1e-3 and y + h <= 64 + 1e-3


def test_the_student_refuses_decoder_levels_and_channel_wise_kd():
    from nnunet_kd.detection.student import nnUNetTrainerDetJointKD
    check_student_without_unet_decoder(nnUNetTrainerDetJointKD, "detector")
