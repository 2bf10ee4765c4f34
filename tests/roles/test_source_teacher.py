import json
import os

import numpy as np
import pytest
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import NUM_PROCESSES, use_env
from nnunet_kd import trainer_path
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.settings import KD_BLOCK_KEY


def _checkpoint(folder, name="checkpoint_final.pth"):
    return load_checkpoint(os.path.join(folder, "fold_all", name))


def test_checkpoint_is_stock_loadable_and_carries_kd_state(source_teacher):
    ckpt = _checkpoint(source_teacher)
    assert ckpt["trainer_name"] == "nnUNetTrainer"
    assert ckpt["kd_trainer_name"] == "nnUNetTrainerDomainAdversarial_tiny"
    assert ckpt["kd_state"]["step"] == 4  # 2 epochs x 2 iterations
    assert any(k.startswith("heads.0.classify") for k in ckpt["kd_state"]["modules"])
    assert not any("heads" in k for k in ckpt["network_weights"])  # the network stays the stock network
    logging = ckpt["logging"]
    assert len(logging["domain_losses"]) == 2 and len(logging["grl_lambdas"]) == 2
    assert 0 < logging["grl_lambdas"][0] < logging["grl_lambdas"][1] < 1
    assert all(0 <= a <= 1 for a in logging["domain_accs"])
    fold = os.path.join(source_teacher, "fold_all")
    assert os.path.isfile(os.path.join(fold, "progress_kd.png"))
    assert os.path.isfile(os.path.join(fold, "validation", "summary.json"))
    assert not [f for f in os.listdir(fold) if ".tmp" in f]  # atomic writes leave no temporary files


def test_continue_restores_kd_state(kd, kd_pipeline, source_teacher, tmp_path, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    env = kd_pipeline.copy(tmp_path)  # --c writes a new checkpoint_final.pth
    use_env(monkeypatch, dict(env, nnUNet_extTrainer=trainer_path()))
    ckpt = _checkpoint(source_teacher)
    # modify the in-memory extras, then load: kd_state must overwrite them
    trainer = get_trainer_from_args(kd.source_a, "2d", "all", "nnUNetTrainerDomainAdversarial_tiny", kd.plans,
                                    continue_training=True, device=torch.device("cpu"))
    trainer.load_checkpoint(os.path.join(trainer.output_folder, "checkpoint_final.pth"))
    assert trainer.kd_step == 4
    for k, v in trainer.kd_modules.state_dict().items():
        assert torch.equal(v, ckpt["kd_state"]["modules"][k]), k
    # the optimizer state of the extras is part of nnU-Net's optimizer state
    assert len(trainer.optimizer.param_groups) == 2
    assert len(trainer.optimizer.state_dict()["state"]) == len(ckpt["optimizer_state"]["state"])
    # and the real entry point continues from it
    proc = kd.train(kd.source_a, "nnUNetTrainerDomainAdversarial_tiny", "all", "--c", env=env)
    assert "Mean Validation Dice" in proc.stdout


def test_stock_predict_without_the_plugin(kd, source_teacher, tmp_path):
    out = tmp_path / "pred"
    kd.run(["nnUNetv2_predict", "-i", os.path.join(kd.raw, kd.target, "imagesTs"), "-o", str(out),
            "-d", kd.source_a, "-c", "2d", "-f", "all", "-p", kd.plans, "-tr", "nnUNetTrainerDomainAdversarial_tiny",
            "-device", "cpu"], ext_trainer=False)
    preds = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    assert preds == sorted(f.replace("_0000", "") for f in os.listdir(os.path.join(kd.raw, kd.target, "imagesTs")))


def test_seeded_runs_give_identical_first_epoch_losses(kd, source_teacher, tmp_path):
    results = str(tmp_path / "results")
    kd.train(kd.source_a, "nnUNetTrainerDomainAdversarial_tiny", nnUNet_KD_SEED="0", nnUNet_results=results)
    first = _checkpoint(source_teacher)["logging"]
    second = _checkpoint(kd.model_folder(kd.source_a, "nnUNetTrainerDomainAdversarial_tiny", results))["logging"]
    for key in ("train_losses", "task_losses", "domain_losses"):
        assert first[key][0] == second[key][0], key


def test_domain_head_and_probe_tell_the_scanners_apart_without_reversal(kd, nnunet_env, tmp_path, monkeypatch):
    """With gamma 0 (lambda stays 0) nothing hides the domain, so the head must learn it within a short run. A head on
    raw pooled features stayed at chance (loss 0.693, accuracy 0.50) for whole trainings."""
    from nnunetv2.run.run_training import get_trainer_from_args
    for dataset in (kd.source_a, kd.target):
        _write_plans_variant(kd, dataset, "_gamma0", lambda p: p[KD_BLOCK_KEY]["dann"].update(gamma=0.0, weight=1.0))
    monkeypatch.setenv("nnUNet_results", str(tmp_path))  # the trainer writes its log
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_KD_SEED", "0")
    trainer = get_trainer_from_args(kd.source_a, "2d", "all", "nnUNetTrainerDomainAdversarial_tiny", kd.plans + "_gamma0",
                                    device=torch.device("cpu"))
    trainer.on_train_start()
    try:
        assert trainer.target_batch_size == (trainer.batch_size + 1) // 2  # the default: half the source batch
        target_batch = next(trainer.dataloader_target)  # the light pipeline: images only
        assert target_batch["data"].shape[0] == trainer.target_batch_size and set(target_batch) == {"data", "keys"}
        outputs = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(40)]
        probe = trainer.epoch_probe_accuracy()
    finally:
        trainer.on_train_end()
    assert all(o["lambda"] == 0 for o in outputs)
    late = outputs[-10:]
    assert np.mean([o["domain_acc"] for o in late]) >= 0.8
    assert np.mean([o["domain_loss"] for o in late]) < 0.6
    assert probe >= 0.8


def _results_snapshot(kd):
    """Every folder and file below nnUNet_results (an empty model folder counts too)."""
    return sorted(os.path.relpath(os.path.join(root, n), kd.results)
                  for root, dirs, files in os.walk(kd.results) for n in dirs + files)


def _write_plans_variant(kd, dataset, suffix, edit):
    src = os.path.join(kd.preprocessed, dataset, kd.plans + ".json")
    plans = load_json(src)
    plans["plans_name"] = kd.plans + suffix
    edit(plans)
    with open(os.path.join(kd.preprocessed, dataset, kd.plans + suffix + ".json"), "w") as f:
        json.dump(plans, f)


def _without_block(plans):
    del plans[KD_BLOCK_KEY]


def _missing_target_data(plans):
    plans["configurations"]["2d"]["data_identifier"] = "does_not_exist_2d"


def _different_stages(plans):
    arch = plans["configurations"]["2d"]["architecture"]["arch_kwargs"]
    arch["n_stages"] = 2


@pytest.mark.parametrize("dataset_attr, variants, message", [
    ("target", {}, "is the target of plans"),
    ("source_a", {"source_a": _without_block}, "has no 'nnunet_kd' block"),
    ("source_a", {"source_a": lambda p: None, "target": _missing_target_data}, "has no preprocessed data"),
    ("source_a", {"source_a": _different_stages, "target": lambda p: None}, "differ in"),
])
def test_bad_input_stops_before_anything_is_written(kd, dataset_attr, variants, message, request):
    suffix = "_bad" + request.node.callspec.id.split("-")[0] if variants else ""
    for attr, edit in variants.items():
        _write_plans_variant(kd, getattr(kd, attr), suffix, edit)
    before = _results_snapshot(kd)
    proc = kd.run(["nnUNetv2_train", getattr(kd, dataset_attr), "2d", "all", "-p", kd.plans + suffix,
                   "-tr", "nnUNetTrainerDomainAdversarial_tiny", "-device", "cpu"], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert _results_snapshot(kd) == before


def test_extra_unlabelled_target_images_join_the_target_domain_loader(kd, nnunet_env, tmp_path, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd.data.loaders import dataset_loader
    from nnunet_kd.planning.shared import plan
    from nnunet_kd.planning.request import PlanRequest
    images = os.path.join(kd.raw, kd.target, "imagesTs")
    name = plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map={"3": {"T1": "mri"}},
                            extra_target_images=images),
                num_processes=NUM_PROCESSES, verbose=False).name
    assert name != kd.plans
    target_plans = load_json(os.path.join(kd.preprocessed, kd.target, name + ".json"))
    assert target_plans[KD_BLOCK_KEY]["dann"]["extra_target_images"] == images
    folder = os.path.join(kd.preprocessed, kd.target, target_plans["configurations"]["2d"]["data_identifier"]
                          + "_unlabelled")
    assert len([f for f in os.listdir(folder) if f.endswith(".pkl")]) == 4
    monkeypatch.setenv("nnUNet_results", str(tmp_path))  # the trainer writes its log
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    trainer = get_trainer_from_args(kd.source_a, "2d", "all", "nnUNetTrainerDomainAdversarial_tiny", name,
                                    device=torch.device("cpu"))
    trainer.initialize()
    loader = dataset_loader(trainer, kd.target, 2)
    ids = loader.data_loader.indices
    assert len(ids) == 10 + 4 and sum(i.startswith("unlabelled_") for i in ids) == 4
    unlabelled = [i for i in ids if i.startswith("unlabelled_")]
    data, seg, _, properties = loader.data_loader._data.load_case(unlabelled[0])
    assert properties["class_locations"] == {}
    loader.data_loader.indices = unlabelled  # draw only unlabelled cases through the real loader and augmentation
    batch = next(loader)
    assert batch["data"].shape == (2, 1, 64, 64) and set(batch) == {"data", "keys"}
