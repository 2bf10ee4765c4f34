"""The shared fixtures: three tiny 2D datasets (a target and two sources from other scanners), planned once with the
`tiny` preset; three tiny generated 2D classification datasets (a target with a test set and two sources from other
scanners, one with another class set), run once through `nnunet_kd run --task cls`. Tests that train use the real
nnU-Net entry points in subprocesses with the environment of `kd.env`."""
import functools
import os
import shutil
import uuid
from dataclasses import dataclass

import pytest

from helpers import CHANNEL_MAP, RUN, SOAK_MARK, KDSetup, set_nnunet_env, tree_digest
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


@dataclass
class Pipeline:
    """The fixture's experiment trained once by `nnunet_kd run`: its environment, output and model folders."""
    setup: KDSetup
    env: dict
    stdout: str
    target_teacher: str
    source_teachers: list
    joint_teacher: str
    student: str
    multi_head: str

    def copy(self, folder) -> dict:
        """The run's environment with nnUNet_results pointing at a copy of its results under folder (and a TMPDIR of its
        own): for tests that write. Stage records and checkpoints hash content, so copied stages stay done."""
        results, tmp = os.path.join(str(folder), "results"), os.path.join(str(folder), "tmp")
        shutil.copytree(self.env["nnUNet_results"], results)
        os.makedirs(tmp)
        env = {k: v for k, v in self.env.items() if k != SOAK_MARK}  # the soak test looks at the shared run only
        return dict(env, nnUNet_results=results, TMPDIR=tmp)


@pytest.fixture(scope="session")
def kd_pipeline(kd, tmp_path_factory) -> Pipeline:
    """Every stage of the method with the `_tiny` trainers, the multi-head baseline, nnU-Net's softmax exports and the
    target's test set, through `nnunet_kd run` (-> `nnUNetv2_train`), seeded. Tests only read it (checked at the end
    of the session); a test that writes works on `copy()`."""
    env = dict(kd.env, nnUNet_KD_SEED="0", TMPDIR=str(tmp_path_factory.mktemp("run_tmp")),
               **{SOAK_MARK: uuid.uuid4().hex})
    raw = os.path.join(kd.raw, kd.target)
    proc = kd.run(RUN + ["--with-baselines", "--npz", "--test-images", os.path.join(raw, "imagesTs"),
                         "--test-labels", os.path.join(raw, "labelsTs")], env=env)
    folder = functools.partial(kd.model_folder, kd.target)
    pipeline = Pipeline(kd, env, proc.stdout, folder("nnUNetTrainer_tiny"),
                        [kd.model_folder(s, "nnUNetTrainerDomainAdversarial_tiny") for s in (kd.source_a, kd.source_b)],
                        folder("nnUNetTrainerJointTeacher_tiny"), folder("nnUNetTrainerJointKD_tiny"),
                        folder("nnUNetTrainerMultiHead_tiny"))
    shared = [os.path.join(kd.results, d) for d in (kd.target, kd.source_a, kd.source_b)]
    before = [tree_digest(d) for d in shared]
    yield pipeline
    changed = {os.path.join(d, p) for d, b in zip(shared, before) for p, h in set(tree_digest(d).items()) ^ set(b.items())}
    assert not changed, f"tests wrote into the shared run's results (work on Pipeline.copy()): {sorted(changed)}"


@pytest.fixture(scope="session")
def source_teacher(kd_pipeline) -> str:
    """Source teacher of Dataset901 (mapped by channel name) of the shared run."""
    return kd_pipeline.source_teachers[0]


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
