"""The dataset-specific detector through nnU-Net's real entry points."""
import json
import math
import os

import torch

from conftest import KDSetup
from nnunet_kd.detection.synthetic import det_benchmark, write_det_dataset


def test_detector_trains_and_validates_with_coco_map_and_froc(tmp_path):
    setup = KDSetup.create(str(tmp_path))
    target, source, _ = det_benchmark(n_target=6, n_source=6, n_test=2)
    for spec in (target, source):
        write_det_dataset(setup.raw, spec)
    setup.plans = setup.run(["nnunet_kd", "plan", "-t", "41", "-s", "42", "-c", "2d", "--preset", "tiny", "--quiet"],
                            ext_trainer=False).stdout.split()[-1]
    setup.train("Dataset041_DetTarget", "nnUNetTrainerDet_tiny", "all")
    folder = os.path.join(setup.model_folder("Dataset041_DetTarget", "nnUNetTrainerDet_tiny"), "fold_all")
    with open(os.path.join(folder, "validation", "summary.json")) as f:
        summary = json.load(f)
    assert summary["num_images"] == 6 and summary["num_boxes"] > 0
    assert 0 <= summary["mAP"] <= 1 and 0 <= summary["mAP_50"] <= 1 and 0 <= summary["froc"] <= 1
    assert set(summary["sensitivity"]) == {"0.125", "0.25", "0.5", "1", "2", "4", "8"}
    ckpt = torch.load(os.path.join(folder, "checkpoint_final.pth"), map_location="cpu", weights_only=False)
    assert ckpt["kd_trainer_name"] == "nnUNetTrainerDet_tiny"
    assert all(math.isfinite(v) for v in ckpt["logging"]["train_losses"])
    assert any(k.startswith("roi_heads.") for k in ckpt["network_weights"])
