"""The classification fixture: three tiny generated 2D classification datasets (a target with a test set and two
sources from other scanners, one with another class set), run once through `nnunet_kd run --task cls`."""
import os
from dataclasses import dataclass

import pytest

from helpers import KDSetup
from nnunet_kd.classification.synthetic import cls_benchmark, write_cls_dataset

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
