"""The task registry: what the task-free code (planning, run, report, the trainer base) needs to know of a task. Each
task package fills in a `Task` in its own ``task.py`` and registers it (every package of nnunet_kd with a ``task.py``
is one, found on the first lookup); the task-free code looks tasks up by name (the KD block's ``task``, ``--task``)
and never imports a task package itself."""
import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from nnunet_kd.core.errors import KDError

DEFAULT_TASK = "seg"  # a KD block or command line without a task is a segmentation one
ROLES = ("target", "source", "joint", "student", "multihead")


@dataclass(frozen=True)
class Task:
    """A task's part of the protocol. Callables import their task's heavy modules when called, so that looking a task
    up stays cheap."""
    name: str  # the KD block's `task` and `--task`
    package: str  # its package (its trainer classes are in <package>.trainers)
    title: str  # in messages: "a segmentation model"
    description: str  # for --task's help
    # how a user predicts with a model of the task ({dataset}, {configuration}, {plans}, {trainer} filled in)
    predict_command: str
    trainers: Mapping[str, str | None]  # role (ROLES) -> trainer class name; None: the task has no such role
    epoch_metric: str  # what its trainers log per epoch where nnU-Net logs the pseudo Dice
    metric: str  # the headline measure of its reports
    # summary.json -> {"foreground": headline value, "per_class": {class: value}, "metric": metric}
    headline: Callable[[dict], dict]
    # summary.json -> {measure: (kind, {case: per-case result})}, {} without per-case results; kind "values" (mean),
    # "classes" ((true, predicted): balanced accuracy) or one of record_measures
    per_case: Callable[[dict], dict]
    # (report, {label: [summary, ...]}, {label: "test set" | "validation"}, out_dir) -> [(caption, file name)]
    figures: Callable[[dict, dict, dict, str], list]
    # (model_folder, folds, device, images, labels, out) -> what `report --test-dir LABEL=...` takes
    predict_and_score: Callable[..., str]
    test_labels: str  # what --test-labels must be
    test_labels_folder: bool  # a folder (else a file)
    # (raw folder, dataset.json) -> None, raises KDError: the task's labels checked before anything is planned
    check_raw: Callable[[str, dict], None] | None = None
    # keys only this task's summary.json has ((): nnU-Net's own summary, the task a summary without them belongs to)
    summary_keys: tuple[str, ...] = ()
    # per-case kind -> measure of a list of per-case records (kinds other than "values" and "classes")
    record_measures: Mapping[str, Callable[[list], float]] = field(default_factory=dict)
    # adds the task's own subcommands to `nnunet_kd` (argparse subparsers)
    add_commands: Callable[[object], None] | None = None
    existing_teachers: bool = False  # accepts trained nnU-Net models as teachers (--target-teacher/--source-teacher)
    npz: bool = False  # nnU-Net's --npz (its trainers' validation is nnU-Net's)
    # student.init_from_target_teacher "auto": its student starts from the target teacher's weights where it can
    student_warm_start: bool = False
    # the built-in demo (the default task's): () -> (its synthetic dataset specs, its --channel-map), and
    # (nnUNet_raw, specs, seed) -> None, which writes such datasets unless there
    demo: Callable[[], tuple] | None = None
    write_datasets: Callable[[str, list, int], None] | None = None

    def trainer(self, role: str) -> str | None:
        return self.trainers.get(role)

    def models(self) -> dict:
        """{report row label: trainer} of the task's models; the first is the baseline."""
        rows = {"dataset-specific (target teacher)": "target", "multi-head": "multihead", "joint teacher": "joint",
                "student": "student"}
        return {label: self.trainers[role] for label, role in rows.items() if self.trainers.get(role)}


_TASKS: dict[str, Task] = {}
_LOADED: list = []  # [True] once the task packages have registered


def register(task: Task) -> Task:
    if set(task.trainers) - set(ROLES):
        raise ValueError(f"Task {task.name}: unknown roles {sorted(set(task.trainers) - set(ROLES))}")
    _TASKS[task.name] = task
    return task


def _load() -> dict[str, Task]:
    """The registered tasks, the default first; on the first call every package of nnunet_kd with a ``task.py``
    registers its task."""
    if not _LOADED:
        import nnunet_kd
        for info in pkgutil.iter_modules(nnunet_kd.__path__):
            if info.ispkg and os.path.isfile(os.path.join(info.module_finder.path, info.name, "task.py")):
                importlib.import_module(f"nnunet_kd.{info.name}.task")
        _LOADED.append(True)
    return dict(sorted(_TASKS.items(), key=lambda item: item[0] != DEFAULT_TASK))


def names() -> list[str]:
    return list(_load())


def get(name: str) -> Task:
    tasks = _load()
    if name not in tasks:
        raise KDError(f"Unknown task {name!r}: choose one of {list(tasks)}.")
    return tasks[name]


def all_tasks() -> list[Task]:
    return list(_load().values())


def for_summary(summary: dict) -> Task:
    """The task of a summary.json: its "task" key, else the task whose summary keys it has, else the task of
    nnU-Net's own summary (summaries written before the key)."""
    if "task" in summary:
        return get(summary["task"])
    tasks = all_tasks()
    return next((t for t in tasks if any(k in summary for k in t.summary_keys)),
                next(t for t in tasks if not t.summary_keys))


def for_metric(metric: str | None) -> Task:
    """The task whose headline measure is metric (the default task for None or an unknown one)."""
    return next((t for t in all_tasks() if t.metric == metric), get(DEFAULT_TASK))


def record_measure(kind: str) -> Callable[[list], float]:
    for task in all_tasks():
        if kind in task.record_measures:
            return task.record_measures[kind]
    raise KeyError(kind)


def lazy(module: str, name: str) -> Callable:
    """A callable that imports ``module`` when called and calls its ``name``: task records stay cheap to import."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    call.__qualname__ = f"{module}.{name}"
    return call


def summary_path(output: str) -> str:
    """Where a task's prediction command writes the test-set summary of an output file: <output minus
    extension>_summary.json (the file `nnunet_kd report --test-dir LABEL=FILE` reads)."""
    return os.path.splitext(output)[0] + "_summary.json"
