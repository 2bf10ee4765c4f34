"""Student variants of a finished KD pipeline: a copy of the shared plans with other student settings that distils
from the joint teacher of the original plans (`student.joint_teacher_plans`), and how to train and find it."""
import json
import os
import sys

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json


def trainer_env() -> dict:
    """The environment of `nnUNetv2_train` for the plugin's trainers (this Python's scripts first on PATH)."""
    from nnunet_kd import trainer_path
    return {**os.environ, "nnUNet_extTrainer": trainer_path(), "nnUNet_n_proc_DA": "0",
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}


def variant_plans(target: str, plans: str, name: str, changes: dict) -> str:
    """Writes <plans>_<name>: the shared plans with the KD block's groups updated by changes ({group: {key: value}}),
    distilling from the joint teacher of `plans`; returns its plans name. Refuses to change an existing different one."""
    from nnunet_kd.settings import KD_BLOCK_KEY, validate_block
    variant = f"{plans}_{name}"
    p = load_json(join(os.environ["nnUNet_preprocessed"], target, plans + ".json"))
    p["plans_name"] = variant
    for group, values in changes.items():
        p[KD_BLOCK_KEY][group].update(values)
    p[KD_BLOCK_KEY]["student"]["joint_teacher_plans"] = plans
    validate_block(p[KD_BLOCK_KEY], f"variant {variant}")
    path = join(os.environ["nnUNet_preprocessed"], target, variant + ".json")
    if isfile(path) and load_json(path) != p:
        raise SystemExit(f"{path} exists and differs from the variant this benchmark writes; remove it first.")
    with open(path, "w") as f:
        json.dump(p, f, indent=1)
    return variant


def model_folder(target: str, trainer: str, plans: str, configuration: str) -> str:
    return join(os.environ["nnUNet_results"], target, f"{trainer}__{plans}__{configuration}")


def only_shared_plans(folder: str) -> str:
    """The one original shared plans name (nnUNetPlans_kd_<hash>, not a variant) in a preprocessed folder."""
    names = sorted(f[:-5] for f in os.listdir(folder) if f.startswith("nnUNetPlans_kd_") and f.endswith(".json")
                   and "_" not in f[len("nnUNetPlans_kd_"):-5])
    if len(names) != 1:
        raise SystemExit(f"{folder} holds shared plans {names}; choose one with -p.")
    return names[0]
