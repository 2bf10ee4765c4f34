"""The KD block: the ``nnunet_kd`` entry of a shared plans file.

nnU-Net fixes a trainer's constructor, so every setting of the plugin travels in the plans file. ``nnunet_kd plan``
writes the block from a preset (``nnunet_kd/presets/<name>.json``); the trainers read it back with :func:`kd_block_from_plans`.
Every key and its default is documented in the README.
"""
import copy
import json
import math
import os
from importlib import resources

from nnunet_kd.errors import KDError

KD_BLOCK_KEY = "nnunet_kd"
SEED_ENV = "nnUNet_KD_SEED"
KD_MODES = ("voxel", "class", "channel")  # distill.kd_mode: how the logit KD weighs voxels (protocol/distill.py)

# Settings a preset may change; `plan` fills in the dataset part (target, sources, teachers, ...).
DEFAULT_SETTINGS = {
    "task": "seg",  # seg (segmentation) or cls (image classification); set by `plan --task`
    "seed": None,
    # caps applied to the planned network (nnU-Net's planners cannot narrow a network on their own)
    "architecture": {"max_stages": None, "max_features": None},
    "dann": {
        "weight": 0.1,  # L_task : L_domain = 1 : weight (chosen in benchmarks/results/dann_probe.md)
        "levels": [-1],  # encoder stages with a domain head; -1 = bottleneck
        "hidden": 256,
        "gamma": 10.0,  # lambda = 2 / (1 + exp(-gamma * p)) - 1
        "target_batch_size": None,  # None = the source batch size
        "extra_target_images": None,  # set by `plan --extra-target-images`: unlabelled target images also used
        "target_fold": None,  # None = every target training case as target-domain image; k = fold k's training keys
    },
    "fusion": {"levels": "encoder", "adapter_norm": False},
    "distill": {
        "w_task": 1.0,
        "w_feat": 1.0,
        "w_kd": 3.0,
        "temperature": 2.0,
        "kd_mode": "voxel",  # how the logit KD weighs voxels: voxel, class or channel (see protocol/distill.py)
        "unlabelled_ratio": 0.0,  # unlabelled target images (plan --extra-target-images) per labelled one in a batch
        "levels": "encoder",
        "decoder_levels": False,
    },
    # joint_teacher_plans: plans name the joint teacher was trained under (None = the student's own plans), so that a
    # student variant in a copy of the shared plans (other width or weights) distils from the existing joint teacher
    # classification trainers: class-weighted CE, class-balanced sampling, an optional 2D timm backbone (random init,
    # or weights from a local file; never downloaded)
    "classification": {"class_weights": True, "balanced_sampling": False, "backbone": None, "backbone_weights": None},
    "student": {"width": 1.0, "init_from_target_teacher": False, "joint_teacher_plans": None},
}
# the trainer of each role, per task
ROLE_TRAINERS = {
    "seg": {"target": "nnUNetTrainer", "source": "nnUNetTrainerDomainAdversarial",
            "joint": "nnUNetTrainerJointTeacher", "student": "nnUNetTrainerJointKD", "multihead": "nnUNetTrainerMultiHead"},
    "cls": {"target": "nnUNetTrainerCls", "source": "nnUNetTrainerClsDomainAdversarial",
            "joint": "nnUNetTrainerClsJointTeacher", "student": "nnUNetTrainerClsJointKD",
            "multihead": "nnUNetTrainerClsMultiHead"},
    "det": {"target": "nnUNetTrainerDet", "source": "nnUNetTrainerDetDomainAdversarial",
            "joint": "nnUNetTrainerDetJointTeacher", "student": "nnUNetTrainerDetJointKD", "multihead": None},
}
# the short-trainer variants (trainer name suffix -> nnU-Net trainer attributes)
VARIANTS = {"_tiny": dict(num_epochs=2, num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, save_every=1),
            "_5epochs": dict(num_epochs=5),
            # the built-in demo: about a minute per stage on 2 CPU cores at 64x64 with the tiny preset
            "_demo": dict(num_epochs=20, num_iterations_per_epoch=30, num_val_iterations_per_epoch=4, save_every=5),
            # benchmarks/domain_shift.py: longer training of the demo benchmark
            "_bench": dict(num_epochs=40, num_iterations_per_epoch=40, num_val_iterations_per_epoch=4, save_every=10)}
DATASET_KEYS = ("version", "preset", "target", "sources", "configurations", "teachers")
# optional records: the arguments the shared plans name hashes ("arguments", from `plan`), the teachers a student was
# distilled from ("run", written by `nnunet_kd run` into its model folder)
RECORD_KEYS = ("arguments", "run")
TEACHER_KEYS = {"role", "dataset", "trainer", "plans", "configuration", "fold", "model_folder"}


def _merge(base: dict, override: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if k not in base:
            raise KDError(f"{where}: unknown key '{k}'. Known keys here: {sorted(base)}.")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise KDError(f"{where}: '{k}' must be an object with keys {sorted(base[k])}, got {v!r}.")
            out[k] = _merge(base[k], v, f"{where}.{k}")
        else:
            out[k] = copy.deepcopy(v)
    return out


def preset_names() -> list:
    folder = resources.files("nnunet_kd") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_preset(name: str) -> dict:
    """Default settings overridden by ``nnunet_kd/presets/<name>.json`` (or a path to a JSON file)."""
    if name.endswith(".json") and os.path.isfile(name):
        path, text = name, open(name, encoding="utf-8").read()
    else:
        res = resources.files("nnunet_kd") / "presets" / f"{name}.json"
        if not res.is_file():
            raise KDError(f"Unknown KD preset '{name}'. Available presets: {preset_names()}, or give a path to a JSON file.")
        path, text = f"nnunet_kd/presets/{name}.json", res.read_text(encoding="utf-8")
    try:
        override = json.loads(text)
    except json.JSONDecodeError as e:
        raise KDError(f"KD preset {path} is not valid JSON: {e}") from None
    override.pop("description", None)
    settings = _merge(DEFAULT_SETTINGS, override, f"KD preset {path}")
    validate_settings(settings, f"KD preset {path}")
    return settings


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_levels(v) -> bool:
    return v in ("encoder", "bottleneck") or (isinstance(v, list) and bool(v) and all(_is_int(i) for i in v))


_LEVELS = "'encoder', 'bottleneck' or a non-empty list of stage indices (-1 = bottleneck)"
# key path -> (accepts the value, what it must be); null is allowed where the rule says so
_RULES = {
    "task": (lambda v: v in ROLE_TRAINERS, f"one of {list(ROLE_TRAINERS)}"),
    "seed": (lambda v: v is None or _is_int(v), "an integer or null"),
    "architecture.max_stages": (lambda v: v is None or _is_int(v) and v >= 2, "an integer >= 2 or null"),
    "architecture.max_features": (lambda v: v is None or _is_int(v) and v >= 1, "a positive integer or null"),
    "dann.weight": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "dann.levels": (lambda v: isinstance(v, list) and bool(v) and all(_is_int(i) for i in v),
                    "a non-empty list of encoder stage indices (-1 = bottleneck)"),
    "dann.hidden": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "dann.gamma": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "dann.target_batch_size": (lambda v: v is None or _is_int(v) and v >= 1, "a positive integer or null"),
    "dann.extra_target_images": (lambda v: v is None or isinstance(v, str) and bool(v), "a folder path or null"),
    "dann.target_fold": (lambda v: v is None or _is_int(v) and v >= 0, "a fold number (0-4) or null"),
    "fusion.levels": (_is_levels, _LEVELS),
    "fusion.adapter_norm": (lambda v: isinstance(v, bool), "true or false"),
    "distill.w_task": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "distill.w_feat": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "distill.w_kd": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "distill.temperature": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "distill.kd_mode": (lambda v: v in KD_MODES, f"one of {list(KD_MODES)}"),
    "distill.unlabelled_ratio": (lambda v: _is_number(v) and 0 <= v <= 8, "a number in [0, 8]"),
    "distill.levels": (_is_levels, _LEVELS),
    "distill.decoder_levels": (lambda v: isinstance(v, bool), "true or false"),
    "classification.class_weights": (lambda v: isinstance(v, bool), "true or false"),
    "classification.balanced_sampling": (lambda v: isinstance(v, bool), "true or false"),
    "classification.backbone": (lambda v: v is None or isinstance(v, str) and bool(v), "a timm model name or null"),
    "classification.backbone_weights": (lambda v: v is None or isinstance(v, str) and bool(v),
                                        "a path to a local weights file or null"),
    "student.width": (lambda v: _is_number(v) and 0 < v <= 4, "a number in (0, 4]"),
    "student.init_from_target_teacher": (lambda v: isinstance(v, bool), "true or false"),
    "student.joint_teacher_plans": (lambda v: v is None or isinstance(v, str) and bool(v), "a plans name or null"),
}


def _leaves(settings: dict):
    """(key path, value) of every setting (settings have the two levels of DEFAULT_SETTINGS)."""
    for k, v in settings.items():
        if isinstance(DEFAULT_SETTINGS[k], dict):
            yield from ((f"{k}.{kk}", vv) for kk, vv in v.items())
        else:
            yield k, v


def validate_settings(settings: dict, where: str) -> None:
    """Every setting against its rule; the message names the key path."""
    for path, value in _leaves(settings):
        accepts, what = _RULES[path]
        if not accepts(value):
            raise KDError(f"{where}: {path} must be {what}, got {value!r}.")


def validate_block(block: dict, where: str) -> dict:
    """Checks a KD block read from a plans file; returns it with defaults filled in."""
    settings = {k: v for k, v in block.items() if k not in DATASET_KEYS + RECORD_KEYS}
    missing = [k for k in DATASET_KEYS if k not in block]
    if missing:
        raise KDError(f"{where}: the KD block lacks {missing}. Recreate it with `nnunet_kd plan`.")
    merged = _merge(DEFAULT_SETTINGS, settings, f"{where} (KD block)")
    validate_settings(merged, f"{where} (KD block)")
    for i, t in enumerate(block["teachers"]):
        unknown = set(t) - TEACHER_KEYS
        if unknown:
            raise KDError(f"{where}: teachers[{i}] has unknown keys {sorted(unknown)}. Known: {sorted(TEACHER_KEYS)}.")
        if t.get("role") not in ("target", "source"):
            raise KDError(f"{where}: teachers[{i}].role must be 'target' or 'source', got {t.get('role')!r}.")
    roles = [t.get("role") for t in block["teachers"]]
    if block["teachers"] and (roles.count("target") != 1 or roles[0] != "target"):
        raise KDError(f"{where}: the KD block's teachers must be exactly one target teacher, first (the levels that are "
                      f"not fused come from it), then the source teachers; their roles are {roles}. Put the target "
                      f"teacher first, or recreate the block with `nnunet_kd plan`.")
    merged.update({k: block[k] for k in DATASET_KEYS})
    return merged


def kd_block_from_plans(plans: dict, where: str, required: bool = True):
    """The validated KD block of a plans dict, or None when absent and not required."""
    block = plans.get(KD_BLOCK_KEY)
    if block is None:
        if required:
            raise KDError(
                f"{where} has no '{KD_BLOCK_KEY}' block, so this trainer does not know the target and source datasets. "
                f"Create shared plans with `nnunet_kd plan -t TARGET -s SOURCE [SOURCE ...] -c CONFIG` and train with "
                f"the plans name it prints (-p).")
        return None
    return validate_block(block, where)


def resolve_seed(block) -> "int | None":
    env = os.environ.get(SEED_ENV)
    if env not in (None, ""):
        try:
            return int(env)
        except ValueError:
            raise KDError(f"{SEED_ENV} must be an integer, got {env!r}.") from None
    return None if block is None else block.get("seed")
