"""The shared trainer machinery: non-finite steps, failpoints, DDP wrapping of the extras."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers import OpensAFile, nnunet_like_checkpoint, spawn_gloo
from nnunet_kd.core.errors import KDError
from nnunet_kd.protocol.domain import AdversarialDomainHeads
from nnunet_kd.segmentation.baseline import nnUNetTrainerKD
from nnunet_kd.core.ddp import wrap_ddp


def _bare_trainer():
    """The mixin's step logic on a tiny linear network, without nnU-Net's data set-up."""
    t = object.__new__(nnUNetTrainerKD)
    t.network, t.kd_modules = nn.Linear(3, 1), nn.Linear(1, 1)
    t.optimizer = torch.optim.SGD(list(t.network.parameters()) + list(t.kd_modules.parameters()), lr=0.1)
    t.grad_scaler, t.kd_step, t.nonfinite_steps, t.nonfinite_in_a_row = None, 0, 0, 0
    t.output_folder, t.log, t.is_ddp, t.device = "/nowhere", [], False, torch.device("cpu")
    t.print_to_log_file = lambda *a, **k: t.log.append(" ".join(map(str, a)))
    return t


def _step(t, poison=False):
    out = t.kd_modules(t.network(torch.ones(2, 3))).mean()
    feat = out * (float("nan") if poison else 1.0)
    return t.backward_and_step(out + feat, {"loss": out + feat, "feat_loss": feat})


def test_non_finite_terms_skip_the_step_and_are_named():
    t = _bare_trainer()
    before = t.network.weight.clone()
    out = _step(t, poison=True)
    assert out["skipped"] and np.isnan(out["feat_loss"])
    assert torch.equal(t.network.weight, before) and t.kd_step == 0
    assert "non-finite loss, feat_loss" in t.log[-1]
    out = _step(t)
    assert "skipped" not in out and t.kd_step == 1 and not torch.equal(t.network.weight, before)
    assert t.nonfinite_steps == 1 and t.nonfinite_in_a_row == 0


def test_repeated_non_finite_steps_stop_training():
    t = _bare_trainer()
    for _ in range(t.max_nonfinite_steps - 1):
        _step(t, poison=True)
    with pytest.raises(KDError, match="in a row had non-finite loss terms"):
        _step(t, poison=True)


def test_continue_gives_nnunet_a_copy_of_the_safely_read_checkpoint(tmp_path, monkeypatch):
    """--c: nnU-Net 2.8.1 unpickles the path it is given with weights_only=False; a file swapped for a payload after the
    plugin's safe read must never reach it."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    path, ran = str(tmp_path / "checkpoint_latest.pth"), str(tmp_path / "ran")
    torch.save(nnunet_like_checkpoint(), path)
    given = []

    def swap_then_load(self, filename):  # the file changes between the two reads, then nnU-Net 2.8.1's own load
        torch.save({"payload": OpensAFile(ran)}, path)
        given.append(torch.load(filename, map_location="cpu", weights_only=False))
    monkeypatch.setattr(nnUNetTrainer, "load_checkpoint", swap_then_load)
    t, kd_states = _bare_trainer(), []
    t.load_kd_state_dict = kd_states.append
    t.load_checkpoint(path)
    assert not os.path.exists(ran)
    assert given[0]["current_epoch"] == 3 and torch.equal(given[0]["network_weights"]["w"], torch.ones(2))
    assert [s["step"] for s in kd_states] == [4]


@pytest.mark.slow
def test_failpoint_kills_the_process(tmp_path):
    code = "from nnunet_kd.core.failpoints import failpoint; failpoint('student', 'after_epoch_0'); print('alive')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, nnUNet_KD_FAILPOINT="student:after_epoch_0"))
    assert proc.returncode == -9 and "alive" not in proc.stdout
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, nnUNet_KD_FAILPOINT="student:after_epoch_1"))
    assert proc.returncode == 0 and "alive" in proc.stdout


def _ddp_worker(rank, world, out_dir):
    torch.manual_seed(0)  # same initial weights on both ranks, as DDP requires
    heads = wrap_ddp(AdversarialDomainHeads([4, 8], [-1, 0], hidden=8), torch.device("cpu"))
    torch.manual_seed(1 + rank)  # different data per rank
    skips = [torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)]
    for _ in range(2):  # one forward per backward, twice
        logits = heads(skips, 1.0)
        nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    torch.save({n: p.grad for n, p in heads.module.named_parameters()}, os.path.join(out_dir, f"grads{rank}.pt"))
    # the step logic: at step 0 only worker 1 has a NaN term; both must skip it together, then step together
    torch.manual_seed(0)
    t = _bare_trainer()
    t.is_ddp, t.network, t.kd_modules = True, wrap_ddp(t.network, t.device), wrap_ddp(t.kd_modules, t.device)
    first = _step(t, poison=rank == 1)
    _step(t)
    torch.save({"skipped": bool(first.get("skipped")), "log": t.log, "steps": t.kd_step,
                "weight": t.network.module.weight.detach().clone()}, os.path.join(out_dir, f"step{rank}.pt"))


@pytest.mark.slow
def test_ddp_with_gloo_on_cpu_extras_and_skipped_steps(tmp_path):
    """Extras are DDP-wrapped; a non-finite step is skipped by every worker or none (otherwise worker 0 waits in the
    gradient all-reduce for one that skipped: a hang, here a gloo timeout)."""
    spawn_gloo(_ddp_worker, tmp_path)
    g0, g1 = (torch.load(tmp_path / f"grads{r}.pt") for r in (0, 1))
    assert set(g0) == set(g1) and all(g is not None for g in g0.values())  # every extra took part
    for k in g0:
        assert torch.allclose(g0[k], g1[k])  # gradients averaged across the two processes
    w0, w1 = (torch.load(tmp_path / f"step{r}.pt") for r in (0, 1))
    assert w0["skipped"] and w1["skipped"] and w0["steps"] == w1["steps"] == 1
    assert "terms on another DDP worker" in w0["log"][0] and "non-finite loss, feat_loss" in w1["log"][0]
    assert torch.allclose(w0["weight"], w1["weight"])


def variants_table() -> str:
    """The table of every short trainer variant (docs/trainers.md), from the task modules' trainer classes."""
    from nnunet_kd.classification import trainers as cls
    from nnunet_kd.settings import VARIANTS, describe_schedule
    from nnunet_kd.detection import trainers as det
    from nnunet_kd.segmentation import trainers as seg
    lines = ["| suffix | length | classes |", "| --- | --- | --- |"]
    for suffix in VARIANTS:
        names = [n for module in (seg, cls, det) for n in module.__all__ if n.endswith(suffix)]
        lines.append(f"| `{suffix}` | {describe_schedule(suffix)} | "
                     + ", ".join(f"`{n}`" for n in names) + " |")
    return "\n".join(lines)


def test_the_docs_list_every_variant_class():
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                           "trainers.md")) as f:
        page = f.read()
    table = variants_table()
    assert table in page, f"Put this table in docs/trainers.md:\n{table}"
    from nnunet_kd.segmentation.trainers import nnUNetTrainerJointKD, nnUNetTrainerJointKD_tiny
    assert issubclass(nnUNetTrainerJointKD_tiny, nnUNetTrainerJointKD) and "`nnUNetTrainerJointKD_tiny`" in table


def test_every_role_trainer_has_each_training_length_variant_as_an_explicit_class():
    """The variant classes are written out (grep finds them); none missing, none extra, each the role's trainer with
    the variant's schedule first in its bases."""
    import importlib

    from nnunet_kd.settings import VARIANTS
    from nnunet_kd.core import tasks
    from nnunet_kd.core.variants import TrainingLength
    nnunet_own = {"nnUNetTrainer_5epochs"}
    for task in tasks.all_tasks():
        module = importlib.import_module(f"{task.package}.trainers")
        variants = {n for n, c in vars(module).items() if isinstance(c, type) and issubclass(c, TrainingLength)
                    and c.__module__ == module.__name__}
        expected = {t + suffix for t in task.trainers.values() if t for suffix in VARIANTS} - nnunet_own
        assert variants == expected, (task.name, sorted(variants ^ expected))
        for name in variants:
            cls = getattr(module, name)
            mixin, base = cls.__bases__
            assert mixin.variant_suffix == cls.variant_suffix and not issubclass(base, TrainingLength), name
            assert task.trainer(base.kd_role) + cls.variant_suffix == name, name


def test_progress_png_names_the_tasks_metric(tmp_path, monkeypatch):
    """Classification and detection log their metric where nnU-Net logs the pseudo Dice: progress.png names it."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from nnunet_kd.classification.trainer import ClsTrainerMixin
    from nnunet_kd.core.logger import KDLocalLogger
    saved, close = [], plt.close

    def recording_close(fig=None):
        saved.append({t.get_text() for t in (fig or plt.gcf()).findobj(Text)})
        close(fig)

    monkeypatch.setattr(plt, "close", recording_close)
    logger = KDLocalLogger(["kd_loss"], ClsTrainerMixin.epoch_metric)
    for epoch in range(2):
        for key in logger.my_fantastic_logging:
            logger.log(key, [0.5] if key == "dice_per_class_or_region" else 0.5 + epoch, epoch)
    logger.plot_progress_png(str(tmp_path))
    assert os.path.isfile(tmp_path / "progress.png") and os.path.isfile(tmp_path / "progress_kd.png")
    progress = saved[0]
    assert {"balanced accuracy", "balanced accuracy (mov. avg.)"} <= progress
    assert not [t for t in progress if "pseudo dice" in t]
    assert "kd_loss" in saved[1]
    from nnunetv2.training.logging.nnunet_logger import LocalLogger
    plain = LocalLogger()
    for key in plain.my_fantastic_logging:
        plain.log(key, [0.5] if key == "dice_per_class_or_region" else 0.5, 0)
    plain.plot_progress_png(str(tmp_path))
    assert "pseudo dice" in saved[-1]  # renamed only inside the plugin's logger


def test_a_variant_gives_source_teachers_their_own_schedule():
    """`_bench` trains source teachers longer, in longer epochs (its "source" entry); the other roles keep its own."""
    from nnunet_kd.settings import VARIANTS
    from nnunet_kd.core.variants import Bench

    class Role:
        def __init__(self, plans, configuration, fold, dataset_json, device):
            self.num_epochs = 1000

    seen = {}
    for role in ("source", "target", "joint", "student"):
        trainer = type(f"T_{role}", (Bench, Role), {"kd_role": role})(None, "2d", 0, None, None)
        seen[role] = (trainer.num_epochs, trainer.num_iterations_per_epoch)
        assert trainer.num_val_iterations_per_epoch == VARIANTS["_bench"]["num_val_iterations_per_epoch"]
        assert not hasattr(trainer, "source")
    source = VARIANTS["_bench"]["source"]
    assert seen == {"source": (source["num_epochs"], source["num_iterations_per_epoch"]), "target": (40, 40),
                    "joint": (40, 40), "student": (40, 40)}
