"""The shared fixtures: three tiny 2D datasets (a target and two sources from other scanners), planned once with the
`tiny` preset; three tiny generated 2D classification datasets (a target with a test set and two sources from other
scanners, one with another class set), run once through `nnunet_kd run --task cls`. Tests that train use the real
nnU-Net entry points in subprocesses with the environment of `kd.env`.

Under pytest-xdist (scripts/test.sh: `-n 2 --dist loadgroup`) each of these is built once, by the first worker that
needs it, and every worker works on its own copy; the tests that build them are scheduled first, one per worker."""
import fcntl
import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass

import pytest

from helpers import CHANNEL_MAP, NUM_PROCESSES, RUN, SOAK_MARK, XDIST, KDSetup, set_nnunet_env, tree_digest
from nnunet_kd.classification.synthetic import cls_benchmark, write_cls_dataset
from nnunet_kd.segmentation.synthetic import tiny_benchmark, write_dataset

# Fixtures that plan, preprocess or train with real nnU-Net runs: a test that uses one is `slow`.
SLOW_FIXTURES = {"kd", "cls_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if XDIST:  # first a test that builds the shared run, then one that builds the cls run, then tests needing neither
        names = {i: set(getattr(i, "fixturenames", ())) for i in items}
        first = {f: next((i for i in items if f in names[i]), None) for f in ("kd_pipeline", "cls_run")}
        items.sort(key=lambda i: 0 if i is first["kd_pipeline"] else 1 if i is first["cls_run"] else
                   2 if not SLOW_FIXTURES & names[i] else 3)


def built_once(tmp_path_factory, name: str, build) -> tuple[str, dict, bool]:
    """(folder, info, built here): build(folder) -> info (JSON) runs once per test session. Under pytest-xdist the
    first worker that needs it builds it into a folder all workers share, and the others wait for it."""
    if not XDIST:
        folder = str(tmp_path_factory.mktemp(name))
        return folder, build(folder), True
    shared = tmp_path_factory.getbasetemp().parent
    folder, done, built = shared / name, shared / f"{name}.json", False
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            done.write_text(json.dumps(build(str(folder))))
            built = True
    return str(folder), json.loads(done.read_text()), built


def own_copy(tmp_path_factory, folder: str, name: str) -> str:
    """folder itself, or under pytest-xdist a copy of it for this worker (tests write into their fixture's folders)."""
    if not XDIST:
        return folder
    copy = str(tmp_path_factory.mktemp(name))
    shutil.copytree(folder, copy, dirs_exist_ok=True)
    return copy


@pytest.fixture(scope="session")
def kd(tmp_path_factory) -> KDSetup:
    saved = {k: os.environ.get(k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc")}

    def build(folder):
        setup = KDSetup.create(folder)
        for spec in tiny_benchmark():
            write_dataset(setup.raw, spec)
        digest = tree_digest(setup.raw)
        set_nnunet_env(setup)
        from nnunet_kd.planning.shared import plan
        from nnunet_kd.planning.request import PlanRequest
        return {"raw_digest": digest, "plans": plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny",
                                                                channel_map=CHANNEL_MAP),
                                                    num_processes=NUM_PROCESSES, verbose=False).name}
    folder, info, _ = built_once(tmp_path_factory, "kd", build)
    setup = KDSetup.at(own_copy(tmp_path_factory, folder, "kd"))
    setup.plans, setup.raw_digest_before = info["plans"], info["raw_digest"]
    set_nnunet_env(setup)
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

    def build(folder):  # in this worker's kd, its results kept in folder for the other workers
        proc = kd.run(RUN + ["--with-baselines", "--npz", "--test-images", os.path.join(raw, "imagesTs"),
                             "--test-labels", os.path.join(raw, "labelsTs")], env=env)
        if XDIST:
            shutil.copytree(kd.results, os.path.join(folder, "results"))
        return {"stdout": proc.stdout}
    results, info, built = built_once(tmp_path_factory, "kd_pipeline", build)
    if not built:
        shutil.copytree(os.path.join(results, "results"), kd.results, dirs_exist_ok=True)
    folder = functools.partial(kd.model_folder, kd.target)
    pipeline = Pipeline(kd, env, info["stdout"], folder("nnUNetTrainer_tiny"),
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
    def build(folder):
        setup = KDSetup.create(folder)
        for spec in cls_benchmark():
            write_cls_dataset(setup.raw, spec)
        proc = setup.run(CLS_RUN, ext_trainer=False)
        return {"stdout": proc.stdout, "plans": next(line.split("-p ")[1].split()[0] for line in
                                                      proc.stdout.splitlines() if "nnUNetv2_train" in line)}
    folder, info, _ = built_once(tmp_path_factory, "cls", build)
    setup = KDSetup.at(own_copy(tmp_path_factory, folder, "cls"))
    setup.plans = info["plans"]
    return ClsRun(setup, info["stdout"], info["plans"])
