"""The shared fixture: three tiny 2D datasets (a target and two sources from other scanners), planned once with the
`tiny` preset. Tests that train use the real nnU-Net entry points in subprocesses with the environment of `kd.env`."""
import collections
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from nnunet_kd.data.synthetic import tiny_benchmark, write_dataset

CHANNEL_MAP = {"3": {"T1": "mri"}}


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
                   nnUNet_def_n_proc="2", nnUNet_n_proc_DA="0", nnUNet_compile="f", PYTHONUNBUFFERED="1",
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
    def create(cls, root: str) -> "KDSetup":
        """Empty nnU-Net folders raw, preprocessed and results under root."""
        setup = cls(root, *(os.path.join(root, d) for d in ("raw", "preprocessed", "results")))
        for d in (setup.raw, setup.preprocessed, setup.results):
            os.makedirs(d)
        return setup

    def model_folder(self, dataset, trainer, results=None) -> str:
        return os.path.join(results or self.results, dataset, f"{trainer}__{self.plans}__2d")

    def plan_with_unlabelled_images(self) -> str:
        """Shared plans of the fixture's datasets with the target's test images as unlabelled target images."""
        from nnunet_kd.planning.shared import plan
        return plan(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP, num_processes=2, verbose=False,
                    extra_target_images=os.path.join(self.raw, self.target, "imagesTs"))

    def student_plans(self, name: str, suffix: str, **distill) -> str:
        """A copy of the target's shared plans ``name`` with distill settings, distilling from the joint teacher of
        the fixture's plans."""
        with open(os.path.join(self.preprocessed, self.target, name + ".json")) as f:
            plans = json.load(f)
        plans["plans_name"] = name + suffix
        plans["nnunet_kd"]["distill"].update(distill)
        plans["nnunet_kd"]["student"]["joint_teacher_plans"] = self.plans
        with open(os.path.join(self.preprocessed, self.target, name + suffix + ".json"), "w") as f:
            json.dump(plans, f)
        return name + suffix


def trainer_path() -> str:
    from nnunet_kd import trainer_path as installed
    return installed()


def set_nnunet_env(setup: KDSetup) -> None:
    os.environ.update(nnUNet_raw=setup.raw, nnUNet_preprocessed=setup.preprocessed, nnUNet_results=setup.results,
                      nnUNet_def_n_proc="2")


@pytest.fixture(scope="session")
def kd(tmp_path_factory) -> KDSetup:
    setup = KDSetup.create(str(tmp_path_factory.mktemp("kd")))
    for spec in tiny_benchmark():
        write_dataset(setup.raw, spec)
    setup.raw_digest_before = tree_digest(setup.raw)
    saved = {k: os.environ.get(k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc")}
    set_nnunet_env(setup)
    from nnunet_kd.planning.shared import plan
    setup.plans = plan(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP, num_processes=2, verbose=False)
    yield setup
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def nnunet_env(kd):
    """nnU-Net's folder variables of the fixture for in-process calls."""
    set_nnunet_env(kd)
    return kd


@pytest.fixture(scope="session")
def source_teacher(kd) -> str:
    """Source teacher of Dataset901, trained once through `nnUNetv2_train` with a fixed seed."""
    kd.train(kd.source_a, "nnUNetTrainerDomainAdversarial_tiny", nnUNet_KD_SEED="0")
    return kd.model_folder(kd.source_a, "nnUNetTrainerDomainAdversarial_tiny")


@dataclass
class Pipeline:
    target_teacher: str
    source_teachers: list
    joint_teacher: str
    student: str


@pytest.fixture(scope="session")
def kd_pipeline(kd, source_teacher) -> Pipeline:
    """Every stage of the method with the `_tiny` trainers, through the real `nnUNetv2_train` entry point."""
    kd.train(kd.target, "nnUNetTrainer_tiny", 0)
    kd.train(kd.source_b, "nnUNetTrainerDomainAdversarial_tiny")
    kd.train(kd.target, "nnUNetTrainerJointTeacher_tiny", 0)
    kd.train(kd.target, "nnUNetTrainerJointKD_tiny", 0, nnUNet_KD_SEED="0")
    return Pipeline(kd.model_folder(kd.target, "nnUNetTrainer_tiny"),
                    [source_teacher, kd.model_folder(kd.source_b, "nnUNetTrainerDomainAdversarial_tiny")],
                    kd.model_folder(kd.target, "nnUNetTrainerJointTeacher_tiny"),
                    kd.model_folder(kd.target, "nnUNetTrainerJointKD_tiny"))
