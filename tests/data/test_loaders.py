import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from nnunetv2.utilities.crossval_split import generate_crossval_split
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunet_kd import trainer_path
from nnunet_kd.data.loaders import _ImagesLoader, dataset_loader, fold_training_keys
from nnunet_kd.core.errors import KDError

KEYS = [f"case_{i:02d}" for i in range(10)]


def test_fold_training_keys_write_nnunets_default_split_where_there_is_none(tmp_path):
    assert fold_training_keys(str(tmp_path), KEYS, 1) == sorted(generate_crossval_split(KEYS, 12345, 5)[1]["train"])
    with open(tmp_path / "splits_final.json") as f:
        assert json.load(f) == json.loads(json.dumps(generate_crossval_split(KEYS, 12345, 5)))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_fold_training_keys_keep_an_existing_split(tmp_path):
    (tmp_path / "splits_final.json").write_text(json.dumps([{"train": KEYS[:3], "val": KEYS[3:]}]))
    assert fold_training_keys(str(tmp_path), KEYS, 0) == KEYS[:3]
    with pytest.raises(KDError, match="defines folds 0-0"):
        fold_training_keys(str(tmp_path), KEYS, 2)


def test_source_teacher_draws_only_the_folds_training_cases(kd, nnunet_env, tmp_path, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    monkeypatch.setenv("nnUNet_results", str(tmp_path))  # the trainer writes its log
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")  # a SingleThreadedAugmenter: its data_loader is at hand
    trainer = get_trainer_from_args(kd.source_a, "2d", "all", "nnUNetTrainerDomainAdversarial_tiny", kd.plans,
                                    device=torch.device("cpu"))
    everything = set(dataset_loader(trainer, kd.target, 2).data_loader.indices)
    trainer.settings = dataclasses.replace(trainer.settings, dann=dataclasses.replace(trainer.settings.dann, target_fold=0))
    restricted = set(dataset_loader(trainer, kd.target, 2).data_loader.indices)
    with open(os.path.join(kd.preprocessed, kd.target, "splits_final.json")) as f:
        split = json.load(f)[0]
    assert restricted == set(split["train"]) and not restricted & set(split["val"])
    assert everything == set(split["train"]) | set(split["val"])


class _UnlabelledCases:
    """Unlabelled 2d cases as nnU-Net's datasets load them (no class locations); every pixel of case k is k."""
    identifiers = ["u0", "u1", "u2"]

    def load_case(self, key):
        image = np.full((1, 1, 40, 50), float(self.identifiers.index(key)), dtype=np.float32)
        return image, np.zeros((1, 1, 40, 50), dtype=np.int8), None, {"class_locations": {}}


def test_images_loader_augments_random_patches_of_the_image_alone_also_under_an_ignore_label():
    """nnU-Net's loader would centre patches on annotated voxels (none here) because the labels have an ignore label."""
    calls = []

    def transforms(**kwargs):
        calls.append(sorted(kwargs))
        return {"image": kwargs["image"] + 1}

    labels = LabelManager({"background": 0, "organ": 1, "ignore": 2}, regions_class_order=None)
    loader = _ImagesLoader(_UnlabelledCases(), 4, (32, 32), (32, 32), labels, transforms=transforms)
    batch = next(loader)
    assert set(batch) == {"data", "keys"} and batch["data"].shape == (4, 1, 32, 32)
    assert calls == [["image"]] * 4
    for image, key in zip(batch["data"], batch["keys"]):
        assert torch.all(image == _UnlabelledCases.identifiers.index(key) + 1)
