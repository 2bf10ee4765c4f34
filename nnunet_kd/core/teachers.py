"""Frozen teachers from nnU-Net model folders.

A teacher's network is rebuilt with its trainer class's static ``build_network_architecture`` from the model folder's
own ``plans.json`` / ``dataset.json``; its trainer is never instantiated.
"""
import hashlib
import os
from dataclasses import dataclass, field

from batchgenerators.utilities.file_and_folder_operations import isfile, join
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from torch import nn

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.settings import KD_BLOCK_KEY
from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.model_plans import read_model_plans


@dataclass
class Teacher:
    role: str
    dataset: str
    trainer: str
    plans: str
    configuration: str
    fold: str
    model_folder: str
    plans_dict: dict = field(default=None, repr=False)
    dataset_json: dict = field(default=None, repr=False)

    @property
    def checkpoint(self) -> str:
        return join(self.model_folder, f"fold_{self.fold}", "checkpoint_final.pth")

    @property
    def train_command(self) -> str:
        return (f"nnUNetv2_train {self.dataset} {self.configuration} {self.fold} -p {self.plans} -tr {self.trainer}")

    @property
    def arch(self) -> dict:
        return self.plans_dict["configurations"][self.configuration]["architecture"]

    @property
    def num_input_channels(self) -> int:
        pm = PlansManager(self.plans_dict)
        return determine_num_input_channels(pm, pm.get_configuration(self.configuration), self.dataset_json)

    @property
    def num_outputs(self) -> int:
        return PlansManager(self.plans_dict).get_label_manager(self.dataset_json).num_segmentation_heads


def resolve_teachers(kd_block: dict, configuration: str, fold, suffix: str = "") -> list[Teacher]:
    """The block's teachers with defaults filled in: configuration = the student's, target fold = the student's fold,
    trainer names + the short-variant suffix of the running trainer (``_tiny`` student -> ``_tiny`` teachers)."""
    from nnunet_kd.core.datasets import dataset_name
    out = []
    for spec in kd_block["teachers"]:
        conf = spec.get("configuration") or configuration
        t_fold = spec.get("fold")
        t_fold = str(fold) if t_fold is None else str(t_fold)
        trainer = spec["trainer"] + ("" if spec.get("model_folder") else suffix)
        ds = dataset_name(spec["dataset"])
        folder = resolve_path(spec["model_folder"]) if spec.get("model_folder") else \
            join(nnUNet_results.get(), ds, f"{trainer}__{spec['plans']}__{conf}")
        out.append(Teacher(spec["role"], ds, trainer, spec["plans"], conf, t_fold, folder))
    return out


def _read_teacher_files(t: Teacher) -> None:
    for name in ("plans.json", "dataset.json"):
        if not isfile(join(t.model_folder, name)):
            raise KDError(f"The {t.role} teacher's model folder {t.model_folder} has no {name}: it was not trained yet. "
                          f"Train it first: {t.train_command}")
    if not isfile(t.checkpoint):
        raise KDError(f"The {t.role} teacher's checkpoint {t.checkpoint} does not exist (training unfinished?). "
                      f"Train it first: {t.train_command}")
    t.plans_dict, t.dataset_json = read_model_plans(t.model_folder)
    if t.configuration not in t.plans_dict["configurations"]:
        raise KDError(f"The {t.role} teacher {t.model_folder} has no configuration {t.configuration} in its plans.json.")


def same_network(a: dict, b: dict) -> bool:
    """Whether two plans architectures have the same widths and block type (a student of one can start from the
    other's weights)."""
    return a["arch_kwargs"]["features_per_stage"] == b["arch_kwargs"]["features_per_stage"] \
        and a["network_class_name"] == b["network_class_name"]


def check_compatible(teachers: list[Teacher], student_arch: dict, student_in_channels: int,
                     student_outputs: int) -> None:
    """Input channels, conv dimension, stage count and strides must match; widths and block type may differ.
    Label count is compared with the target teacher only (source teachers predict other structures)."""
    s = student_arch["arch_kwargs"]
    for t in teachers:
        _read_teacher_files(t)
        a = t.arch["arch_kwargs"]
        diffs = []
        if t.num_input_channels != student_in_channels:
            diffs.append(f"input channels {t.num_input_channels} vs {student_in_channels}")
        if a["conv_op"] != s["conv_op"]:
            diffs.append(f"conv op {a['conv_op']} vs {s['conv_op']}")
        if a["n_stages"] != s["n_stages"]:
            diffs.append(f"stages {a['n_stages']} vs {s['n_stages']}")
        elif [list(x) if isinstance(x, (list, tuple)) else x for x in a["strides"]] != \
                [list(x) if isinstance(x, (list, tuple)) else x for x in s["strides"]]:
            diffs.append(f"strides {a['strides']} vs {s['strides']}")
        if t.role == "target" and t.num_outputs != student_outputs:
            diffs.append(f"output channels (labels) {t.num_outputs} vs {student_outputs}")
        if diffs:
            raise KDError(f"Teacher checkpoint {t.checkpoint} ({t.role}, {t.dataset}) does not match this network: "
                          + "; ".join(diffs) + ". Teachers must share input channels, conv dimension, stages and "
                          "strides with the student (train them under the same shared plans).")


def build_teacher_network(t: Teacher, checkpoint: dict | None = None) -> nn.Module:
    """The teacher's network with its weights, frozen and in eval mode."""
    if t.plans_dict is None:
        _read_teacher_files(t)
    if checkpoint is None:
        checkpoint = load_checkpoint(t.checkpoint)
    pm = PlansManager(t.plans_dict)
    return freeze(network_from_checkpoint(checkpoint, pm, pm.get_configuration(t.configuration), t.num_input_channels,
                                          t.num_outputs))


def network_from_checkpoint(checkpoint: dict, pm: PlansManager, cm, num_input_channels: int,
                            num_outputs: int) -> nn.Module:
    """The network of the checkpoint's trainer class (its static ``build_network_architecture``) with the checkpoint's
    weights."""
    trainer_class = recursive_find_trainer_class_by_name(checkpoint["trainer_name"])
    net = trainer_class.build_network_architecture(pm, cm, num_input_channels, num_outputs,
                                                   enable_deep_supervision=False)
    net.load_state_dict(checkpoint["network_weights"])
    return net


def freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


RESULTS_PREFIX = "$nnUNet_results/"


def portable_path(path: str) -> str:
    """A path under nnUNet_results as ``$nnUNet_results/<relative path>`` (results folders moved to another machine
    still resolve), any other path absolute."""
    path, results = os.path.abspath(path), os.environ.get("nnUNet_results")
    if results and os.path.commonpath([path, os.path.abspath(results)]) == os.path.abspath(results):
        return RESULTS_PREFIX + os.path.relpath(path, results).replace(os.sep, "/")
    return path


def resolve_path(stored: str) -> str:
    """The file a `portable_path` names on this machine."""
    if stored.startswith(RESULTS_PREFIX):
        return join(os.environ.get("nnUNet_results", ""), *stored[len(RESULTS_PREFIX):].split("/"))
    return stored


def teacher_record(t: Teacher) -> dict:
    """What a trained stage records of a teacher it used (checked on --c and by report)."""
    return {"role": t.role, "dataset": t.dataset, "trainer": t.trainer, "fold": t.fold,
            "checkpoint": portable_path(t.checkpoint), "sha256": file_sha256(t.checkpoint)}


def recorded_teachers(checkpoint: dict, path: str) -> list[dict]:
    """The teacher records (`teacher_record`) of a checkpoint's kd_state (none without one); KDError naming path where
    they are not what the plugin's trainers write."""
    state = checkpoint.get("kd_state", {})
    records = state.get("teachers", []) if isinstance(state, dict) else None
    fields = ("role", "checkpoint", "sha256")
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in fields) for r in records):
        raise KDError(f"{path}: its kd_state has no valid teacher records (a list of {', '.join(fields)}): it was not "
                      f"written by nnunet_kd's trainers, or was edited. Move its fold folder aside and train that "
                      f"stage again.")
    return records


def changed_teachers(records) -> list[str]:
    """Teacher checkpoints that are gone or differ from the ones a stage was trained from."""
    problems = []
    for r in records:
        path = resolve_path(r["checkpoint"])
        if not os.path.isfile(path):
            problems.append(f"teacher checkpoint {path} ({r['role']}) no longer exists")
        elif file_sha256(path) != r["sha256"]:
            problems.append(f"teacher checkpoint {path} ({r['role']}) changed after this model was trained "
                            f"from it (sha256 {r['sha256'][:12]} then, {file_sha256(path)[:12]} now)")
    return problems


def read_model_folder(model_folder: str, folds, checkpoint: str, configuration: str | None = None,
                      task: str = tasks.DEFAULT_TASK):
    """plans, dataset.json, PlansManager, ConfigurationManager, input channel count and the fold checkpoints of a
    trained nnU-Net model folder of ``task`` (folds None: every fold_* with the checkpoint), with errors naming what
    is missing and, for a model of another task, the command that predicts it."""
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    plans, dataset_json = read_model_plans(model_folder)
    configuration = model_folder_configuration(model_folder, configuration)
    found = (plans.get(KD_BLOCK_KEY) or {}).get("task", tasks.DEFAULT_TASK)
    if found != task:
        trainer, plans_name = os.path.basename(os.path.normpath(model_folder)).split("__")[:2]
        how = tasks.get(found).predict_command.format(dataset=plans.get("dataset_name"), configuration=configuration,
                                                      plans=plans_name, trainer=trainer)
        raise KDError(f"{model_folder} is a {tasks.get(found).title} model, not a {tasks.get(task).title} one. "
                      f"Predict it with {how}.")
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    if folds is None:
        folds = sorted(d[len("fold_"):] for d in os.listdir(model_folder)
                       if d.startswith("fold_") and isfile(join(model_folder, d, checkpoint)))
        if not folds:
            raise KDError(f"{model_folder} has no fold_*/{checkpoint}: train a fold first, or choose another "
                          f"checkpoint with -chk.")
    paths = [join(model_folder, f"fold_{fold}", checkpoint) for fold in folds]
    for fold, path in zip(folds, paths):
        if not isfile(path):
            raise KDError(f"{path} does not exist; train fold {fold} first or choose other folds with -f.")
    return plans, dataset_json, pm, cm, determine_num_input_channels(pm, cm, dataset_json), paths


def model_folder_configuration(model_folder: str, configuration: str | None = None) -> str:
    """The configuration of an nnU-Net model folder TRAINER__PLANS__CONFIGURATION (or the given one)."""
    if configuration:
        return configuration
    parts = os.path.basename(os.path.normpath(model_folder)).split("__")
    if len(parts) != 3:
        raise KDError(f"{model_folder} is not named TRAINER__PLANS__CONFIGURATION like an nnU-Net model folder; "
                      f"give the configuration with -c.")
    return parts[2]
