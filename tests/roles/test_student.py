import os

import numpy as np
import pytest
import torch

from helpers import use_env
from nnunet_kd import trainer_path
from nnunet_kd.roles.student import WarmupPolyLR


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
    assert auto.distill.unlabelled_ratio == 1 and auto.unlabelled_ratio == 1  # `plan` wrote "auto" as 1
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

    # every distillation weight 0 (the benchmarks' compute-matched control): no teacher pass, no unlabelled images
    control = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny",
                                    kd.student_plans(name, "_control", unlabelled_ratio=0.5, w_feat=0.0, w_kd=0.0),
                                    device=torch.device("cpu"))
    control.on_train_start()
    try:
        assert not control.distills and control.unlabelled_batch_size == 0 and control.dataloader_unlabelled is None
        seen.clear()
        control.stock_network().register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
        control.joint_teacher.register_forward_hook(lambda m, args, out: seen.append("teacher"))
        out = control.train_step(next(control.dataloader_train))
        assert seen == [2] and out["feat_loss"] == out["kd_loss"] == out["unlabelled_loss"] == 0
        assert out["loss"] == pytest.approx(out["task_loss"]) and out["task_loss"] > 0
    finally:
        control.on_train_end()


def test_the_segmentation_student_starts_from_the_target_teachers_weights_where_it_can(kd, kd_pipeline, tmp_path,
                                                                                       monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd.core.checkpoints import load_checkpoint
    from nnunet_kd.core.errors import KDError
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

    assert starts_as_target_teacher("_planned")  # `plan` wrote "auto" as true
    assert starts_as_target_teacher("_auto", init_from_target_teacher="auto")  # as plans of earlier versions have it
    assert not starts_as_target_teacher("_cold", init_from_target_teacher=False)
    # auto: other widths start from random weights
    assert not starts_as_target_teacher("_half", width=0.5, init_from_target_teacher="auto")
    with pytest.raises(KDError, match="init_from_target_teacher is true, but the target teacher .*other widths"):
        starts_as_target_teacher("_half_true", width=0.5, init_from_target_teacher=True)


def test_the_students_schedule_warms_up_linearly_then_decays_as_nnunets_poly_schedule():
    from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

    def lrs(make):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = make(optimizer)
        out = []
        for epoch in range(10):
            scheduler.step(epoch)
            out.append(optimizer.param_groups[0]["lr"])
        return out

    warm = lrs(lambda o: WarmupPolyLR(o, 1e-3, 10, 2))
    assert warm[:3] == pytest.approx([5e-4, 1e-3, 1e-3])
    assert warm[2:] == sorted(warm[2:], reverse=True) and warm[9] == pytest.approx(1e-3 * (1 - 7 / 8) ** 0.9)
    assert lrs(lambda o: WarmupPolyLR(o, 1e-3, 10, 0)) == pytest.approx(lrs(lambda o: PolyLRScheduler(o, 1e-3, 10)))


def test_a_fine_tuned_self_distilled_student_with_unlabelled_images_a_rampup_and_a_moving_average(
        kd, kd_pipeline, tmp_path, monkeypatch):
    """student.teacher 'target', student.initial_lr and warmup, distill.rampup and w_unlabelled, student.ema: what
    each does to one step, and the moving average through the final weights and the checkpoint's kd_state."""
    import math

    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd.protocol.taps import WithEncoderFeatures
    use_env(monkeypatch, dict(kd_pipeline.copy(tmp_path), nnUNet_extTrainer=trainer_path(), nnUNet_n_proc_DA="0"))
    plans = kd.student_plans(kd.plan_with_unlabelled_images(), "_self", rampup=1.0, w_unlabelled=2.0,
                             student={"teacher": "target", "ema": 0.5, "warmup": 0.5})

    def trainer():
        return get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainerJointKD_tiny", plans, device=torch.device("cpu"))

    first = trainer()
    first.on_train_start()
    try:
        target_checkpoint = os.path.join(kd_pipeline.target_teacher, "fold_0", "checkpoint_final.pth")
        assert isinstance(first.joint_teacher, WithEncoderFeatures)  # the target teacher, no joint teacher
        assert first.teacher_records[0]["checkpoint"].endswith(os.path.relpath(target_checkpoint, kd.results))
        assert first.initial_lr == 1e-3 and first.lr_scheduler.warmup_epochs == 1  # fine-tuning: 2 epochs x 0.5
        first.on_train_epoch_start()
        assert first.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # warm-up over 1 epoch: its end at once
        assert first.unlabelled_batch_size == 2  # "auto": one unlabelled image per labelled one
        out = first.train_step(next(first.dataloader_train))
        d = first.distill
        ramp = math.exp(-5)  # step 0 of a ramp-up over all 4 steps
        expected = d.w_task * out["task_loss"] + ramp * (d.w_feat * out["feat_loss"] + d.w_kd * out["kd_loss"]
                                                         + 2.0 * out["unlabelled_loss"])
        assert out["unlabelled_loss"] > 0 and out["loss"] == pytest.approx(expected, rel=1e-5)
        assert int(first.ema.n_averaged) == 1
        state = first.kd_state_dict()
        average = {k: v.clone() for k, v in first.ema.module.state_dict().items()}
    finally:
        first.on_train_end()
    final = first.stock_network().state_dict()
    assert all(torch.equal(final[k], v) for k, v in average.items())  # the final weights are the average

    second = trainer()  # --c restores the average
    try:
        second.initialize()
        second.load_kd_state_dict(state)
        second.on_train_start()
        assert int(second.ema.n_averaged) == 1
        assert all(torch.equal(second.ema.module.state_dict()[k], v) for k, v in average.items())
    finally:
        second.on_train_end()
