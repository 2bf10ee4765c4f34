import glob
import json
import os

import numpy as np

from nnunet_kd.classification.labels import read_case_classes


def test_the_target_split_is_stratified_by_class(cls_run):
    """The fixture trains fold 0, so the classification trainer wrote the target's split."""
    with open(os.path.join(cls_run.setup.preprocessed, cls_run.target, "splits_final.json")) as f:
        splits = json.load(f)
    classes = read_case_classes(os.path.join(cls_run.setup.raw, cls_run.target))
    assert len(splits) == 5
    assert sorted(k for s in splits for k in s["val"]) == sorted(classes)  # every case validated exactly once
    assert all(sorted(s["train"] + s["val"]) == sorted(classes) for s in splits)
    per_fold = np.array([np.bincount([classes[k] for k in s["val"]], minlength=3) for s in splits])
    assert (per_fold.max(0) - per_fold.min(0) <= 1).all()  # each class spread evenly over the validation folds
    logs = glob.glob(os.path.join(cls_run.model_folder("nnUNetTrainerCls_tiny"), "fold_0", "training_log_*.txt"))
    assert any("split stratified by class" in open(log).read() for log in logs)


def test_class_weights_are_balanced_over_the_present_classes():
    from nnunet_kd.classification.trainer import class_weighted_ce
    assert np.allclose(class_weighted_ce(np.array([6, 0, 2]), True, "cpu").weight.numpy(), [8 / 12, 1.0, 2.0])
    assert class_weighted_ce(np.array([6, 0, 2]), False, "cpu").weight is None


def test_other_datasets_load_as_whole_images_like_the_trainers_own(cls_run, monkeypatch):
    """The source teacher's target-domain images and the multi-head's source batches: each whole image resized to
    the patch size (the trainer's own view of a case), not a random patch cut out of it."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd import trainer_path
    from nnunet_kd.classification.trainer import WholeImageDataset
    from nnunet_kd.data.loaders import dataset_loader
    for k, v in cls_run.setup.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())
    trainer = get_trainer_from_args("22", "2d", "all", "nnUNetTrainerClsDomainAdversarial_tiny", cls_run.plans,
                                    device=torch.device("cpu"))
    trainer.initialize()
    for with_labels in (False, True):
        loader = dataset_loader(trainer, cls_run.target, 2, with_labels=with_labels)
        assert isinstance(loader.data_loader._data, WholeImageDataset)
        assert next(loader)["data"].shape[2:] == tuple(trainer.configuration_manager.patch_size)


def test_auto_unlabelled_ratio_of_earlier_plans_gives_a_classification_student_the_plans_unlabelled_images(
        cls_run, tmp_path, monkeypatch):
    import shutil
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json, save_json
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd import trainer_path
    from nnunet_kd.planning.unlabelled import find_cases, preprocess_unlabelled, unlabelled_folder
    for k, v in cls_run.setup.env.items():
        monkeypatch.setenv(k, v)
    preprocessed = tmp_path / cls_run.target  # a copy of the fixture's plans: its own folder stays without images
    preprocessed.mkdir()
    for name in (cls_run.plans + ".json", "dataset.json"):
        shutil.copy(os.path.join(cls_run.setup.preprocessed, cls_run.target, name), preprocessed)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path))
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())

    def student():
        return get_trainer_from_args(cls_run.target, "2d", 0, "nnUNetTrainerClsJointKD_tiny", cls_run.plans,
                                     device=torch.device("cpu"))

    plans, dataset_json = (load_json(str(preprocessed / f)) for f in (cls_run.plans + ".json", "dataset.json"))
    assert plans["nnunet_kd"]["distill"]["unlabelled_ratio"] == 0  # what `plan` wrote for "auto": no images
    plans["nnunet_kd"]["distill"]["unlabelled_ratio"] = "auto"  # as earlier versions wrote it
    save_json(plans, str(preprocessed / (cls_run.plans + ".json")))
    assert student().unlabelled_ratio == 0  # no unlabelled images
    preprocess_unlabelled(find_cases(os.path.join(cls_run.setup.raw, cls_run.target, "imagesTs"), dataset_json),
                          plans, "2d", dataset_json,
                          unlabelled_folder(str(preprocessed), plans["configurations"]["2d"]["data_identifier"]))
    assert student().unlabelled_ratio == 1  # one unlabelled image per labelled one in every batch
