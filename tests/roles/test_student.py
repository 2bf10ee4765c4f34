import os

import numpy as np
import torch

from nnunet_kd import trainer_path


def test_unlabelled_target_images_join_the_students_batches(kd, kd_pipeline, nnunet_env, monkeypatch):
    from nnunetv2.run.run_training import get_trainer_from_args
    before = sorted(os.listdir(os.path.join(kd.results, kd.target)))
    no_images = kd.student_plans(kd.plans, "_nounl", unlabelled_ratio=1)
    proc = kd.run(["nnUNetv2_train", kd.target, "2d", "0", "-p", no_images, "-tr", "nnUNetTrainerJointKD_tiny",
                   "-device", "cpu"], check=False)
    assert proc.returncode != 0 and "distill.unlabelled_ratio is 1, but Dataset001_KDTarget has no unlabelled" in \
        proc.stderr and "--extra-target-images" in proc.stderr
    assert sorted(os.listdir(os.path.join(kd.results, kd.target))) == before  # refused before writing anything

    name = kd.plan_with_unlabelled_images()
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path())
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
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
