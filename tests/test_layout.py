"""The checkout imports like the installed package: every module under nnunet_kd/, and nnunet_kd/trainers a working
nnUNet_extTrainer from the checkout too."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIND = """
import nnunet_kd, nnunet_kd.planning.shared, nnunet_kd.trainers
from nnunet_kd.settings import preset_names
from nnunet_kd.segmentation.trainers import nnUNetTrainerJointKD
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
found = recursive_find_trainer_class_by_name("nnUNetTrainerJointKD_tiny")
assert issubclass(found, nnUNetTrainerJointKD), found.__mro__
assert {"default", "tiny"} <= set(preset_names()), preset_names()
print(nnunet_kd.__file__)
"""


def test_the_checkout_imports_its_own_tree_and_the_trainer_folder_finds_the_trainers():
    env = dict(os.environ, nnUNet_extTrainer=os.path.join(ROOT, "nnunet_kd", "trainers"))
    proc = subprocess.run([sys.executable, "-c", FIND], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.dirname(proc.stdout.strip().splitlines()[-1]) == os.path.join(ROOT, "nnunet_kd")
    folder = os.path.join(ROOT, "nnunet_kd", "trainers")  # nnU-Net imports every module there: a thin re-export
    assert sorted(f for f in os.listdir(folder) if f.endswith(".py")) == ["__init__.py", "nnunet_kd_trainers.py"]


def test_cli_runs_as_a_module_from_the_checkout():
    proc = subprocess.run([sys.executable, "-m", "nnunet_kd.cli", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "nnunet_kd COMMAND -h" in proc.stdout


def test_the_development_page_names_every_module_and_package():
    with open(os.path.join(ROOT, "docs", "development.md")) as f:
        text = f.read()
    layout = text[text.index("Layout (the checkout"):text.index("Tests mirror the package")]
    entries = [e for e in os.listdir(os.path.join(ROOT, "nnunet_kd")) if not e.startswith("__")]
    named = {e: f"`{e}`" in layout or f"`nnunet_kd/{e}`" in layout or f"`{e}/`" in layout
             or f"`nnunet_kd/{e}/`" in layout for e in entries}
    assert all(named.values()), [e for e, ok in named.items() if not ok]
