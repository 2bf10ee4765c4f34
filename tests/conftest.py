"""The shared fixtures: three tiny 2D datasets (a target and two sources from other scanners), planned once with the
`tiny` preset; three tiny generated 2D classification datasets (a target with a test set and two sources from other
scanners, one with another class set), run once through `nnunet_kd run --task cls`. Tests that train use the real
nnU-Net entry points in subprocesses with the environment of `kd.env`."""
import os
from dataclasses import dataclass

import pytest

from helpers import CHANNEL_MAP, KDSetup, set_nnunet_env, tree_digest
from nnunet_kd.classification.synthetic import cls_benchmark, write_cls_dataset
from nnunet_kd.data.synthetic import tiny_benchmark, write_dataset

# Fixtures that plan, preprocess or train with real nnU-Net runs: a test that uses one is `slow`.
SLOW_FIXTURES = {"kd", "cls_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


CLS_RUN = ["nnunet_kd", "run", "--task", "cls", "-t", "21", "-s", "22", "23", "-c", "2d", "-f", "0", "--preset", "tiny",
           "--suffix", "_tiny", "--device", "cpu", "--with-baselines"]


@dataclass
class ClsRun:
    setup: KDSetup
    stdout: str
    plans: str
    target: str = "Dataset021_ClsTarget"

    def model_folder(self, trainer: str, dataset: str = None) -> str:
        return os.path.join(self.setup.results, dataset or self.target, f"{trainer}__{self.plans}__2d")


@pytest.fixture(scope="session")
def cls_run(tmp_path_factory) -> ClsRun:
    setup = KDSetup.create(str(tmp_path_factory.mktemp("cls")))
    for spec in cls_benchmark():
        write_cls_dataset(setup.raw, spec)
    proc = setup.run(CLS_RUN, ext_trainer=False)
    plans = next(line.split("-p ")[1].split()[0] for line in proc.stdout.splitlines() if "nnUNetv2_train" in line)
    setup.plans = plans
    return ClsRun(setup, proc.stdout, plans)
