import dataclasses
import json
import os

import pytest
import torch
from nnunetv2.utilities.crossval_split import generate_crossval_split

from nnunet_kd import trainer_path
from nnunet_kd.data.loaders import dataset_loader, fold_training_keys
from nnunet_kd.errors import KDError

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


def test_source_teacher_draws_only_the_folds_training_cases(kd, nnunet_env, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
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
