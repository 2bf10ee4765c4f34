"""The KD block: the ``nnunet_kd`` entry of a shared plans file.

nnU-Net fixes a trainer's constructor, so every setting of the plugin travels in the plans file. ``nnunet_kd plan``
writes the block from a preset (``nnunet_kd/presets/<name>.json``); the trainers read it back with :func:`kd_block_from_plans`.
Every key and its default is documented in docs/kd-block.md.
"""
import copy
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any

from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import parse_json_object, read_json_object
from nnunet_kd.protocol import KD_MODES

KD_BLOCK_KEY = "nnunet_kd"
SEED_ENV = "nnUNet_KD_SEED"

# the short-trainer variants (trainer name suffix -> nnU-Net trainer attributes; "source": what source teachers train
# instead)
VARIANTS = {"_tiny": dict(num_epochs=2, num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, save_every=1),
            "_5epochs": dict(num_epochs=5),
            # the built-in demo: about a minute per stage on 2 CPU cores at 64x64 with the tiny preset
            "_demo": dict(num_epochs=20, num_iterations_per_epoch=30, num_val_iterations_per_epoch=4, save_every=5),
            # the benchmarks (benchmarks/PROTOCOL.md): source teachers, trained once on large datasets, train 4x as
            # many steps, in longer epochs
            "_bench": dict(num_epochs=40, num_iterations_per_epoch=40, num_val_iterations_per_epoch=4, save_every=10,
                           source=dict(num_epochs=80, num_iterations_per_epoch=80))}


def variant_schedule(suffix: str, role: str | None = None) -> dict:
    """The nnU-Net trainer attributes the variant ``suffix`` sets for a trainer of ``role`` (empty: nnU-Net's own
    schedule of 1000 epochs x 250 iterations)."""
    schedule = dict(VARIANTS.get(suffix, {}))
    source = schedule.pop("source", {})
    return {**schedule, **source} if role == "source" else schedule


def describe_schedule(suffix: str) -> str:
    """"40 epochs × 40 iterations (source teachers 80 epochs × 80 iterations)": the variant's training length."""
    def length(s: dict) -> str:
        return f"{s.get('num_epochs', 1000)} epochs × {s.get('num_iterations_per_epoch', 250)} iterations"
    own, source = variant_schedule(suffix), variant_schedule(suffix, "source")
    return length(own) + (f" (source teachers {length(source)})" if source != own else "")


FINE_TUNING_LR = 1e-3  # student.initial_lr "auto" of a student started from the target teacher's weights
NNUNET_INITIAL_LR = 1e-2  # nnU-Net's (nnUNetTrainer.initial_lr): student.initial_lr "auto" of one trained from scratch


def concrete_values(block: dict, has_unlabelled: bool, warm_start: bool) -> dict:
    """A copy of the KD block with every "auto" setting replaced by the value it stands for, as `plan` writes it (a
    plans file says what will run): distill.unlabelled_ratio 1 where the plans have unlabelled images, else 0;
    student.init_from_target_teacher ``warm_start`` (the task's default, where the student has the target teacher's
    architecture); student.initial_lr FINE_TUNING_LR for a student started from the target teacher, else nnU-Net's."""
    block = copy.deepcopy(block)
    distill, student = block["distill"], block["student"]
    if distill["unlabelled_ratio"] == "auto":
        distill["unlabelled_ratio"] = 1.0 if has_unlabelled else 0.0
    if student["init_from_target_teacher"] == "auto":
        student["init_from_target_teacher"] = warm_start
    if student["initial_lr"] == "auto":
        student["initial_lr"] = FINE_TUNING_LR if student["init_from_target_teacher"] else NNUNET_INITIAL_LR
    return block


DATASET_KEYS = ("version", "preset", "target", "sources", "configurations", "teachers")
# optional records: the arguments the shared plans name hashes ("arguments", from `plan`), the teachers a student was
# distilled from ("run", written by `nnunet_kd run` into its model folder)
RECORD_KEYS = ("arguments", "run")
TEACHER_KEYS = {"role", "dataset", "trainer", "plans", "configuration", "fold", "model_folder"}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


MAX_STAGE = 16  # stage indices and counts: nnU-Net's planned networks have at most 8 stages
MAX_UNITS = 65536  # features, hidden units, batch sizes


def _is_stage_list(v) -> bool:
    return isinstance(v, list) and bool(v) and all(_is_int(i) and -MAX_STAGE <= i < MAX_STAGE for i in v)


def _is_count(v, top: int = MAX_UNITS) -> bool:
    return _is_int(v) and 1 <= v <= top


def _is_levels(v) -> bool:
    return v in ("encoder", "bottleneck") or _is_stage_list(v)


@dataclass(frozen=True)
class Setting:
    """One key of the KD block a preset may change: its default, its rule (``accepts``, ``must_be`` for the error) and
    its meaning (the table of docs/kd-block.md, `settings_table`)."""
    default: Any
    accepts: Callable[[Any], bool]
    must_be: str | Callable[[], str]  # a callable where the rule is known only at run time (the tasks)
    meaning: str


_LEVELS = f"'encoder', 'bottleneck' or a non-empty list of stage indices below {MAX_STAGE} (-1 = bottleneck)"
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_WEIGHT = (lambda v: _is_number(v) and v >= 0, "a finite number >= 0")


def _optional(accepts: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or accepts(v)


def _setting(default, accepts: Callable[[Any], bool], must_be: str | Callable[[], str], meaning: str):
    """A dataclass field of a setting: its default, its rule and its meaning in the field's metadata."""
    mutable = isinstance(default, (list, dict))
    kw = {"default_factory": lambda: copy.deepcopy(default)} if mutable else {"default": default}
    return field(metadata={"setting": Setting(default, accepts, must_be, meaning)}, **kw)


@dataclass(frozen=True)
class ArchitectureSettings:
    """Caps applied to the planned network (nnU-Net's planners cannot narrow a network on their own)."""
    max_stages: int | None = _setting(None, _optional(lambda v: _is_count(v, MAX_STAGE) and v >= 2),
                                         f"an integer in [2, {MAX_STAGE}] or null",
                                         "cap on the planned network's stages (preset `tiny`: 3)")
    max_features: int | None = _setting(None, _optional(_is_count), f"an integer in [1, {MAX_UNITS}] or null",
                                           "cap on the planned network's features per stage (preset `tiny`: 32)")


@dataclass(frozen=True)
class DannSettings:
    """The source teachers' domain-adversarial term."""
    weight: float = _setting(0.1, *_WEIGHT, "L_task + weight * L_domain (larger weights hide the domain better and "
                             "cost more of the source task)")
    levels: list[int] = _setting([-1], _is_stage_list,
                                 f"a non-empty list of encoder stage indices below {MAX_STAGE} (-1 = bottleneck)",
                                 "encoder stages with a domain head (-1 = bottleneck)")
    hidden: int = _setting(256, _is_count, f"an integer in [1, {MAX_UNITS}]",
                           "hidden units of each domain classifier")
    gamma: float = _setting(10.0, *_WEIGHT, "lambda = 2/(1+exp(-gamma p)) - 1")
    target_batch_size: int | None = _setting(None, _optional(_is_count), f"an integer in [1, {MAX_UNITS}] or null",
                                                "target-domain images in each source-teacher step (null = half "
                                                "the source batch, rounded up; they go through the encoder only, so "
                                                "they cost less than source images); the domain loss weighs both "
                                                "domains equally")
    extra_target_images: str | None = _setting(
        None, _optional(lambda v: isinstance(v, str) and bool(v)), "a folder path or null",
        "set by `plan --extra-target-images DIR`: unlabelled target images (nnU-Net naming) preprocessed into "
        "`<data_identifier>_unlabelled` beside the target's data and drawn by the source teachers' target-domain "
        "loader")
    target_fold: int | None = _setting(
        None, _optional(lambda v: _is_int(v) and v >= 0), "a fold number (0-4) or null",
        "null: the source teachers draw target-domain images from every target training case; k: only from fold k's "
        "training cases, so that fold k's validation is not transductive (see `report`)")


@dataclass(frozen=True)
class FusionSettings:
    """The joint teacher's level-wise fusion."""
    levels: str | list[int] = _setting("encoder", _is_levels, _LEVELS,
                                             "levels fused from all teachers (`encoder` = every stage, "
                                             "`bottleneck`, or indices); other levels use the target teacher")
    adapter_norm: bool = _setting(False, *_BOOL, "a norm before each teacher's 1x1 adapter")


@dataclass(frozen=True)
class DistillSettings:
    """The student's loss."""
    w_task: float = _setting(1.0, *_WEIGHT, "weight of nnU-Net's loss (MLFD's 0.2/0.2/0.6 task/feature/logit "
                             "weights rescaled so the task term keeps nnU-Net's scale)")
    w_feat: float = _setting(1.0, *_WEIGHT, "weight of the feature MSE")
    w_kd: float = _setting(3.0, *_WEIGHT, "weight of the logit KD (times T^2)")
    temperature: float = _setting(2.0, lambda v: _is_number(v) and v > 0, "a finite number > 0",
                                  "KD temperature T")
    kd_mode: str = _setting(
        "voxel", lambda v: v in KD_MODES, f"one of {list(KD_MODES)}",
        "how the logit KD weighs voxels: `voxel` (mean over voxels; the background dominates), `class` (mean within "
        "each class the teacher predicts, then over classes: a small class weighs as much as the background), "
        "`channel` (channel-wise distillation, Shu et al. 2021: each class channel a distribution over space; "
        "segmentation only)")
    unlabelled_ratio: float | str = _setting(
        "auto", lambda v: v == "auto" or _is_number(v) and 0 <= v <= 8, "a number in [0, 8] or \"auto\"",
        "unlabelled target images (`plan --extra-target-images DIR`) per labelled image in each student batch (at "
        "least 1 when > 0); on them only the feature and logit terms act, augmented as usual (detection: FPN "
        "features, and ROI class logits on the student's 128 best proposals per image). `auto`: 1 when the plans "
        "have unlabelled images, else 0 (`plan` writes the value)")
    w_box: float = _setting(1.0, *_WEIGHT, "detection: weight of the box-regression distillation (smooth L1 of the "
                            "ROI head's and the RPN's box deltas to the teacher's, weighted by the teacher's object "
                            "probability)")
    w_unlabelled: float = _setting(1.0, *_WEIGHT,
                                   "weight of the feature and logit terms on the unlabelled images (averaged over "
                                   "those images alone, then weighted by w_feat and w_kd as on the labelled ones)")
    rampup: float = _setting(0.2, lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]",
                             "fraction of the student's training steps over which the feature and logit terms rise "
                             "from 0 to their weights (sigmoid ramp-up exp(-5 (1 - t)^2), as in mean-teacher training)")
    levels: str | list[int] = _setting("encoder", _is_levels, _LEVELS,
                                             "student levels distilled with adapters + MSE")
    decoder_levels: bool = _setting(False, *_BOOL, "also distil decoder stages")


@dataclass(frozen=True)
class ClassificationSettings:
    """The classification trainers (class-weighted CE, sampling, an optional 2D timm backbone)."""
    class_weights: bool = _setting(True, *_BOOL, "class-weighted cross-entropy (n / (classes x count))")
    balanced_sampling: bool = _setting(False, *_BOOL, "draw each class about equally often")
    backbone: str | None = _setting(None, _optional(lambda v: isinstance(v, str) and bool(v)),
                                       "a timm model name or null",
                                       "a 2D timm backbone by name (random init unless `backbone_weights`)")
    backbone_weights: str | None = _setting(None, _optional(lambda v: isinstance(v, str) and bool(v)),
                                               "a path to a local weights file or null",
                                               "a local weights file of the backbone (never downloaded)")


@dataclass(frozen=True)
class StudentSettings:
    """The student's network and its joint teacher."""
    width: float = _setting(1.0, lambda v: _is_number(v) and 0 < v <= 4, "a number in (0, 4]",
                            "student width factor (e.g. 0.5); recorded in the model folder's plans.json. Change it in a "
                            "preset: in a planned file, set `init_from_target_teacher` false with it")
    init_from_target_teacher: bool | str = _setting(
        "auto", lambda v: isinstance(v, bool) or v == "auto", "true, false or \"auto\"",
        "start the student from the target teacher's weights: `auto` for segmentation students of the target "
        "teacher's architecture (others start from random weights; `plan` writes true or false), `true` always (an "
        "error where the architectures differ), `false` never")
    initial_lr: float | str = _setting(
        "auto", lambda v: v == "auto" or _is_number(v) and 0 < v <= 1, "a number in (0, 1] or \"auto\"",
        "the student's initial learning rate (nnU-Net's SGD and poly decay): `auto` is 1e-3 for a student that starts "
        "from the target teacher's weights (fine-tuning) and nnU-Net's 1e-2 otherwise (`plan` writes the value)")
    warmup: float = _setting(0.0, lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)",
                             "fraction of the student's epochs with a linear learning-rate warm-up before the poly "
                             "decay (nnU-Net's `nnUNetTrainer_warmup` schedulers)")
    ema: float | None = _setting(None, _optional(lambda v: _is_number(v) and 0 < v < 1), "a number in (0, 1) or null",
                                 "decay of an exponential moving average of the student's weights, updated every step; "
                                 "the final checkpoint holds the average (null: no average)")
    teacher: str = _setting("joint", lambda v: v in ("joint", "target"), "'joint' or 'target'",
                            "the teacher distilled from: `joint` (the method) or `target`, the target teacher alone "
                            "(self-distillation: what the student gains without the source datasets)")
    joint_teacher_plans: str | None = _setting(
        None, _optional(lambda v: isinstance(v, str) and bool(v)), "a plans name or null",
        "plans name of the joint teacher to distil from (null = the student's plans); lets a student variant in a copy "
        "of the plans file (e.g. `width` 0.5) reuse the trained joint teacher")


@dataclass(frozen=True)
class KDSettings:
    """The settings of the KD block, typed: the one definition of their defaults, rules and meanings (`SCHEMA`, the
    table of docs/kd-block.md). Trainers read ``self.settings.distill.w_kd``; `plan` adds the dataset part
    (DATASET_KEYS)."""
    task: str = _setting(tasks.DEFAULT_TASK, lambda v: isinstance(v, str) and v in tasks.names(),
                         lambda: f"one of {tasks.names()}",
                         "the task (set by `plan --task`): picks the trainers of the roles")
    seed: int | None = _setting(None, _optional(_is_int), "an integer or null",
                                   "seeds python, numpy and torch in every plugin trainer (`nnUNet_KD_SEED` overrides)")
    architecture: ArchitectureSettings = field(default_factory=ArchitectureSettings)
    dann: DannSettings = field(default_factory=DannSettings)
    fusion: FusionSettings = field(default_factory=FusionSettings)
    distill: DistillSettings = field(default_factory=DistillSettings)
    classification: ClassificationSettings = field(default_factory=ClassificationSettings)
    student: StudentSettings = field(default_factory=StudentSettings)

    @classmethod
    def from_dict(cls, block: dict) -> "KDSettings":
        """The typed settings of a validated KD block (or of settings with every key)."""
        return cls(**{f.name: (f.default_factory(**block[f.name]) if _is_group(f) else block[f.name])
                      for f in fields(cls)})


def _is_group(f) -> bool:
    return "setting" not in f.metadata


def _schema() -> dict:
    out = {}
    for f in fields(KDSettings):
        if _is_group(f):
            out.update({f"{f.name}.{g.name}": g.metadata["setting"] for g in fields(f.default_factory)})
        else:
            out[f.name] = f.metadata["setting"]
    return out


# Every setting by key path: derived from KDSettings, so defaults, validation and the table of docs/kd-block.md never
# differ.
SCHEMA = _schema()
# Settings a preset may change, with their defaults (two levels: groups of keys, and top-level keys).
DEFAULT_SETTINGS = asdict(KDSettings())


def _markdown_value(v) -> str:
    if isinstance(v, str):
        return f"`{v}`"
    return json.dumps(v)


def settings_table() -> str:
    """The rows of the KD block's settings table (docs/kd-block.md): key, default, meaning."""
    return "\n".join(f"| `{path}` | {_markdown_value(s.default)} | {s.meaning} |" for path, s in SCHEMA.items())


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


def load_preset(name: str, task: str | None = None) -> dict:
    """Default settings overridden by ``nnunet_kd/presets/<name>.json`` (or a path to a JSON file); a preset whose
    'task' is not ``task`` (when given) is an error."""
    if name.endswith(".json") and os.path.isfile(name):
        path = name
        override = read_json_object(name, f"KD preset {name}")
    else:
        res = resources.files("nnunet_kd") / "presets" / f"{name}.json"
        if not res.is_file():
            if name.endswith(".json") or os.sep in name:
                raise KDError(f"KD preset file {os.path.abspath(name)} does not exist. Check the path, or name a "
                              f"built-in preset: {preset_names()}.")
            raise KDError(f"Unknown KD preset '{name}'. Available presets: {preset_names()}, or give a path to a JSON file.")
        path = f"nnunet_kd/presets/{name}.json"
        override = parse_json_object(res.read_text(encoding="utf-8"), f"KD preset {path}")
    override.pop("description", None)
    if task is not None and override.get("task", task) != task:
        raise KDError(f"KD preset {path} says task {override['task']!r}, but --task is {task!r}: the task comes from "
                      f"--task of `plan` and `run`. Remove the key from the preset.")
    settings = _merge(DEFAULT_SETTINGS, override, f"KD preset {path}")
    validate_settings(settings, f"KD preset {path}")
    return settings


def _leaves(settings: dict):
    """(key path, value) of every setting (settings have the two levels of DEFAULT_SETTINGS)."""
    for k, v in settings.items():
        if isinstance(DEFAULT_SETTINGS[k], dict):
            yield from ((f"{k}.{kk}", vv) for kk, vv in v.items())
        else:
            yield k, v


def setting_changes(recorded: dict, current: dict) -> list[str]:
    """'key: value there, value here' for each of current's settings that recorded (settings or a KD block) holds
    otherwise."""
    changes = []
    for path, value in _leaves(current):
        k, _, kk = path.partition(".")
        old = recorded.get(k, {}).get(kk) if kk else recorded.get(k)
        if old != value:
            changes.append(f"{path}: {old!r} there, {value!r} here")
    return changes


def validate_settings(settings: dict, where: str) -> None:
    """Every setting against its rule; the message names the key path."""
    for path, value in _leaves(settings):
        rule = SCHEMA[path]
        if not rule.accepts(value):
            must_be = rule.must_be() if callable(rule.must_be) else rule.must_be
            raise KDError(f"{where}: {path} must be {must_be}, got {value!r}.")


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
