"""Shared test helpers: the fixture datasets' nnU-Net folders and commands (`KDSetup`), tree digests, checkpoints."""
import collections
import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from nnunet_kd import trainer_path

CHANNEL_MAP = {"3": {"T1": "mri"}}
# `nnunet_kd run` of the fixture's experiment
RUN = ["nnunet_kd", "run", "-t", "1", "-s", "2", "3", "-c", "2d", "-f", "0", "--preset", "tiny", "--channel-map",
       json.dumps(CHANNEL_MAP), "--suffix", "_tiny", "--device", "cpu"]
# nnU-Net's worker processes (nnUNet_def_n_proc): both cores, or one per pytest-xdist worker (scripts/test.sh runs two)
XDIST = "PYTEST_XDIST_WORKER" in os.environ  # this process is a pytest-xdist worker
NUM_PROCESSES = 1 if XDIST else 2
# a variable every process started by the shared run inherits: the soak test looks for processes that carry it
SOAK_MARK = "nnUNet_KD_TEST_RUN"
# a small 3-stage PlainConvUNet plans architecture entry (2D)
PLAIN_ARCH_2D = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 32], "conv_op": "torch.nn.modules.conv.Conv2d",
                    "kernel_sizes": [[3, 3]] * 3, "strides": [[1, 1], [2, 2], [2, 2]], "n_conv_per_stage": [1] * 3,
                    "n_conv_per_stage_decoder": [1] * 2, "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
                    "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def tree_digest(folder: str) -> dict:
    """Relative path -> sha1 of every file below folder."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha1(fh.read()).hexdigest()
    return out


class OpensAFile:
    """Unpickling this calls open(path, "w"): the file appears only if the pickle's code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def nnunet_like_checkpoint() -> dict:
    """What nnU-Net 2.8.1's save_checkpoint writes, with the plugin's kd_state."""
    return {"network_weights": collections.OrderedDict(w=torch.ones(2)),
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01, "nesterov": True, "params": [0]}]},
            "grad_scaler_state": None,
            "logging": {"mean_fg_dice": [np.float32(0.5), np.float64(0.6)], "ema_fg_dice": [np.float64(0.55)],
                        "epoch_start_timestamps": [1.0]},
            "_best_ema": np.float64(0.55), "current_epoch": 3,
            "init_args": {"plans": {"a": 1}, "configuration": "2d", "fold": 0, "dataset_json": {},
                          "device": torch.device("cpu")},
            "trainer_name": "nnUNetTrainerJointKD", "inference_allowed_mirroring_axes": (0, 1),
            "kd_state": {"step": 4, "teachers": [], "modules": {"x": torch.zeros(1)}}}


@dataclass
class KDSetup:
    root: str
    raw: str
    preprocessed: str
    results: str
    plans: str = ""
    raw_digest_before: dict = field(default_factory=dict)
    target: str = "Dataset001_KDTarget"
    source_a: str = "Dataset901_KDSourceAForKDTarget"  # mapped by channel name
    source_b: str = "Dataset902_KDSourceBForKDTarget"  # mapped with --channel-map

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(nnUNet_raw=self.raw, nnUNet_preprocessed=self.preprocessed, nnUNet_results=self.results,
                   nnUNet_def_n_proc=str(NUM_PROCESSES), nnUNet_n_proc_DA="0", nnUNet_compile="f", PYTHONUNBUFFERED="1",
                   PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
        env.pop("nnUNet_extTrainer", None)
        return env

    def run(self, args, env=None, ext_trainer=True, check=True, **env_overrides) -> subprocess.CompletedProcess:
        env = dict(env or self.env)
        env.update(env_overrides)
        if ext_trainer:
            env["nnUNet_extTrainer"] = trainer_path()
        # in the fixture folder, where anything a command writes to its working directory stays
        proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=self.root)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def train(self, dataset, trainer, fold="all", *extra, **kw):
        return self.run(["nnUNetv2_train", str(dataset), "2d", str(fold), "-p", self.plans, "-tr", trainer,
                         "-device", "cpu", *extra], **kw)

    @classmethod
    def at(cls, root: str) -> "KDSetup":
        """The nnU-Net folders raw, preprocessed and results under root."""
        return cls(root, *(os.path.join(root, d) for d in ("raw", "preprocessed", "results")))

    @classmethod
    def create(cls, root: str) -> "KDSetup":
        """Empty nnU-Net folders raw, preprocessed and results under root."""
        setup = cls.at(root)
        for d in (setup.raw, setup.preprocessed, setup.results):
            os.makedirs(d)
        return setup

    def model_folder(self, dataset, trainer, results=None) -> str:
        return os.path.join(results or self.results, dataset, f"{trainer}__{self.plans}__2d")

    def plan_with_unlabelled_images(self) -> str:
        """Shared plans of the fixture's datasets with the target's test images as unlabelled target images."""
        from nnunet_kd.planning.shared import plan
        from nnunet_kd.planning.request import PlanRequest
        return plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP,
                                extra_target_images=os.path.join(self.raw, self.target, "imagesTs")),
                    num_processes=NUM_PROCESSES, verbose=False).name

    def student_plans(self, name: str, suffix: str, student: dict | None = None, **distill) -> str:
        """A copy of the target's shared plans ``name`` with distill (and student) settings, distilling from the joint
        teacher of the fixture's plans."""
        with open(os.path.join(self.preprocessed, self.target, name + ".json")) as f:
            plans = json.load(f)
        plans["plans_name"] = name + suffix
        plans["nnunet_kd"]["distill"].update(distill)
        plans["nnunet_kd"]["student"].update(student or {})
        plans["nnunet_kd"]["student"]["joint_teacher_plans"] = self.plans
        with open(os.path.join(self.preprocessed, self.target, name + suffix + ".json"), "w") as f:
            json.dump(plans, f)
        return name + suffix


# sbatch for the tests: records each submission in the ledger FAKE_SBATCH_LEDGER; with execute, it also runs each job at
# once, in submission order, unless a job it comes after failed (afterok)
FAKE_SBATCH = """#!{python}
import json, os, subprocess, sys
path = os.environ["FAKE_SBATCH_LEDGER"]
ledger = json.load(open(path)) if os.path.exists(path) else []
options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
flags = [a for a in sys.argv[1:] if "=" not in a]
after = options.get("dependency", "afterok").split(":")[1:]
job = str(1000 + len(ledger))
rc = None
if {execute} and all([j["rc"] for j in ledger if j["id"] == a] == [0] for a in after):
    with open(options["output"], "a") as out:
        rc = subprocess.run(["sh", "-c", options["wrap"]], stdout=out, stderr=subprocess.STDOUT).returncode
ledger.append(dict(id=job, name=options["job-name"], after=after, rc=rc, options=options, flags=flags))
json.dump(ledger, open(path, "w"))
print(job + ";testcluster")
"""


def fake_sbatch(folder, env: dict, execute: bool) -> dict:
    """env with FAKE_SBATCH first on PATH, its ledger in folder."""
    bin_dir = os.path.join(str(folder), "bin")
    os.makedirs(bin_dir)
    with open(os.path.join(bin_dir, "sbatch"), "w") as f:
        f.write(FAKE_SBATCH.format(python=sys.executable, execute=execute))
    os.chmod(os.path.join(bin_dir, "sbatch"), 0o755)
    return dict(env, PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
                FAKE_SBATCH_LEDGER=os.path.join(str(folder), "ledger.json"))


def use_env(monkeypatch, env: dict) -> None:
    """This process's environment as env (for in-process `main` calls), restored after the test."""
    for k in set(os.environ) - set(env):
        if k.startswith("nnUNet"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def set_nnunet_env(setup: KDSetup) -> None:
    os.environ.update(nnUNet_raw=setup.raw, nnUNet_preprocessed=setup.preprocessed, nnUNet_results=setup.results,
                      nnUNet_def_n_proc=str(NUM_PROCESSES))


def check_student_without_unet_decoder(trainer, kind: str) -> None:
    """A classifier's or detector's student refuses decoder levels and channel-wise KD, which the segmentation student
    takes, and accepts class-wise KD."""
    from nnunet_kd.settings import DEFAULT_SETTINGS
    from nnunet_kd.core.errors import KDError
    from nnunet_kd.segmentation.student import nnUNetTrainerJointKD
    plans = {"dataset_name": "Dataset041_Target", "plans_name": "nnUNetPlans_kd"}

    def block(**distill):
        return {"target": "Dataset041_Target", "distill": dict(DEFAULT_SETTINGS["distill"], **distill)}
    decoder, channel = block(decoder_levels=True), block(kd_mode="channel")
    with pytest.raises(KDError, match=f"'nnUNetPlans_kd': distill.decoder_levels is true, but {kind}s have no U-Net"):
        trainer.check_inputs(plans, "2d", 0, decoder)
    with pytest.raises(KDError, match=f"distill.kd_mode is 'channel' .* but a {kind}'s logits have no spatial axis"):
        trainer.check_inputs(plans, "2d", 0, channel)
    trainer.check_inputs(plans, "2d", 0, block(kd_mode="class"))
    for ok in (decoder, channel):  # the segmentation student has a decoder and spatial logits
        nnUNetTrainerJointKD.check_inputs(plans, "2d", 0, ok)


def write_png(path, array) -> None:
    Image.fromarray(array).save(path)


def spawn_gloo(worker, out_dir, world: int = 2) -> None:
    """Runs worker(rank, world, out_dir) in ``world`` processes joined in a gloo process group on this machine (DDP
    on CPU), each process ending only when all are done."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gloo_worker, args=(worker, world, port, str(out_dir)), nprocs=world, join=True)


def _gloo_worker(rank, worker, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    worker(rank, world, out_dir)
    dist.barrier()  # every rank done before any leaves
    # leave without gloo's C++ teardown, which has aborted a rank under load ("terminate called without an active
    # exception"); the worker's files are written and closed by now
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
