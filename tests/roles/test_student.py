import os

import numpy as np
import pytest
import torch

from helpers import use_env
from nnunet_kd import trainer_path


def test_unlabelled_target_images_join_the_students_batches(kd, kd_pipeline, tmp_path, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    env = dict(kd_pipeline.copy(tmp_path), nnUNet_extTrainer=trainer_path(), nnUNet_n_proc_DA="0")
    before = sorted(os.listdir(os.path.join(env["nnUNet_results"], kd.target)))
    no_images = kd.student_plans(kd.plans, "_nounl", unlabelled_ratio=1)
    proc = kd.run(["nnUNetv2_train", kd.target, "2d", "0", "-p", no_images, "-tr", "nnUNetTrainerJointKD_tiny",
                   "-device", "cpu"], env=env, check=False)
    assert proc.returncode != 0 and "distill.unlabelled_ratio is 1, but Dataset001_KDTarget has no unlabelled" in \
        proc.stderr and "--extra-target-images" in proc.stderr
    assert sorted(os.listdir(os.path.join(env["nnUNet_results"], kd.target))) == before  # refused before writing

    use_env(monkeypatch, env)
    name = kd.plan_with_unlabelled_images()
    auto = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny", name, device=torch.device("cpu"))
    assert auto.distill.unlabelled_ratio == "auto" and auto.unlabelled_batch_size == 0  # segmentation: off
    trainer = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny",
                                    kd.student_plans(name, "_unl", unlabelled_ratio=0.5), device=torch.device("cpu"))
    trainer.on_train_start()
    try:
        assert trainer.unlabelled_batch_size == 1  # half of the batch of 2
        seen = []
        for net in (trainer.stock_network(), trainer.joint_teacher):
            net.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
        unlabelled = next(trainer.dataloader_unlabelled)
        assert [k.startswith("unlabelled_") for k in unlabelled["keys"]] == [True]
        out = trainer.train_step(next(trainer.dataloader_train))
        assert sorted(seen) == [3, 3]  # teacher and student saw the 2 labelled and 1 unlabelled image
        assert all(np.isfinite(out[k]) and out[k] > 0 for k in ("feat_loss", "kd_loss"))
    finally:
        trainer.on_train_end()


def test_the_segmentation_student_starts_from_the_target_teachers_weights_where_it_can(kd, kd_pipeline, tmp_path,
                                                                                       monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd.checkpoints import load_checkpoint
    from nnunet_kd.errors import KDError
    checkpoint = os.path.join(kd_pipeline.target_teacher, "fold_0", "checkpoint_final.pth")
    log = "".join(open(os.path.join(kd_pipeline.student, "fold_0", f)).read()
                  for f in os.listdir(os.path.join(kd_pipeline.student, "fold_0")) if f.startswith("training_log"))
    # the default ("auto"), through nnUNetv2_train (in the results folder the run had: a copy has another root)
    assert log.split("student initialised from ")[1].split()[0].endswith(os.path.relpath(checkpoint, kd.results))
    target = load_checkpoint(checkpoint)["network_weights"]
    use_env(monkeypatch, dict(kd_pipeline.copy(tmp_path), nnUNet_extTrainer=trainer_path(), nnUNet_n_proc_DA="0"))

    def starts_as_target_teacher(suffix, **student):
        trainer = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny",
                                        kd.student_plans(kd.plans, suffix, student=student), device=torch.device("cpu"))
        trainer.on_train_start()
        try:
            weights = trainer.stock_network().state_dict()
            return weights.keys() == target.keys() and all(torch.equal(weights[k], v) for k, v in target.items())
        finally:
            trainer.on_train_end()

    assert starts_as_target_teacher("_auto")
    assert not starts_as_target_teacher("_cold", init_from_target_teacher=False)
    assert not starts_as_target_teacher("_half", width=0.5)  # auto: other widths start from random weights
    with pytest.raises(KDError, match="init_from_target_teacher is true, but the target teacher .*other widths"):
        starts_as_target_teacher("_half_true", width=0.5, init_from_target_teacher=True)
