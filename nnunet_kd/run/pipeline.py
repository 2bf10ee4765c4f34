"""`nnunet_kd run`: plan -> target teachers -> source teachers -> joint teachers -> students (-> multi-head).

The run is a list of stages, each one command line (``nnunet_kd plan`` or ``nnUNetv2_train``) with its environment and
the stages it depends on; ``--dry-run`` prints exactly these commands, ``run`` executes them. A training stage is
finished when its ``checkpoint_final.pth`` and ``validation/summary.json`` exist and the fingerprint it recorded (KD
block + checkpoints of the stages it depends on) still matches. Finished stages are skipped, interrupted ones resume
with ``--c``, a stage whose recorded fingerprint differs is refused unless ``--force``.
"""
import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json

from nnunet_kd import ext_trainer_value
from nnunet_kd.core.checkpoints import UnreadableCheckpoint, load_checkpoint
from nnunet_kd.settings import KD_BLOCK_KEY, setting_changes, variant_schedule
from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import check_writable, save_json_atomic
from nnunet_kd.planning.request import PlanRequest
from nnunet_kd.run.progress import run_stage
from nnunet_kd.core.teachers import changed_teachers, file_sha256, portable_path, recorded_teachers, resolve_path

STAGE_RECORD = "nnunet_kd_stage.json"
PASSED_ENV = ("nnUNet_def_n_proc", "nnUNet_n_proc_DA", "nnUNet_KD_SEED", "nnUNet_compile", "CUDA_VISIBLE_DEVICES")


@dataclass
class Stage:
    id: str
    title: str
    argv: list[str]
    depends: list[str] = field(default_factory=list)
    dataset: str | None = None
    trainer: str | None = None
    fold: str | None = None

    def fold_folder(self, results: str, plans: str, configuration: str) -> str | None:
        if self.trainer is None:
            return None
        return join(results, self.dataset, f"{self.trainer}__{plans}__{configuration}", f"fold_{self.fold}")


def set_aside(path: str) -> str:
    """Renames a corrupt file to a free ``<path>.unreadable[.N]`` name (never deleted); returns the new path."""
    target, n = path + ".unreadable", 0
    while os.path.exists(target):
        n += 1
        target = f"{path}.unreadable.{n}"
    os.replace(path, target)
    return target


def resume_point(folder: str, write: bool = True):
    """('resume' | 'restart' | 'new' | 'changed', reason) of an unfinished fold folder. nnU-Net's --c takes the final,
    else the latest, else the best checkpoint: corrupt ones are set aside until a readable one is found (write=False:
    only said); a checkpoint refused as unsafe stops the run (UnsafeCheckpoint); one trained from teachers that
    changed since is 'changed'."""
    broken = []
    for name in ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth"):
        path = join(folder, name)
        if isfile(path):
            try:
                checkpoint = load_checkpoint(path)
            except UnreadableCheckpoint:
                broken.append(set_aside(path) if write else path)
                continue
            aside = f" ({', '.join(broken)}: unreadable, {'moved' if write else 'to be moved'} aside)" if broken else ""
            changed = changed_teachers(recorded_teachers(checkpoint, path))
            if changed:
                return "changed", f"interrupted, but {changed[0]}{aside}"
            return "resume", f"interrupted; continuing from {name}{aside}"
    if broken:
        return "restart", f"no readable checkpoint; {', '.join(broken)} {'moved' if write else 'to be moved'} aside " \
                          f"(unreadable)"
    return "new", "not trained yet"


@dataclass
class RunSpec:
    request: PlanRequest  # what the plan stage plans (every configuration of the command line)
    configuration: str  # the configuration this pipeline trains
    folds: list[str]
    suffix: str = ""
    device: str = "cuda"
    num_gpus: int = 1
    with_baselines: bool = False
    npz: bool = False  # nnU-Net's --npz: the final validation also saves softmax (ensembling, find_best_configuration)


def run_argv(spec: RunSpec) -> list[str]:
    """The `nnunet_kd run` command line of spec."""
    argv = ["run" if a == "plan" else a for a in spec.request.argv()] + ["-f", *spec.folds, "--device", spec.device]
    argv += (["--suffix", spec.suffix] if spec.suffix else []) + (
        ["--num-gpus", str(spec.num_gpus)] if spec.num_gpus > 1 else []) + (
        ["--with-baselines"] if spec.with_baselines else []) + (["--npz"] if spec.npz else [])
    return argv


def build_stages(spec: RunSpec, plans_name: str, target: str, sources: list[str],
                 existing: dict | None = None) -> list[Stage]:
    """The stages of spec; teachers that are existing models (``existing``: index in the KD block's teachers, 0 =
    target, 1 + i = source i) are not trained."""
    existing = existing or {}
    def train(dataset, trainer, fold):
        argv = ["nnUNetv2_train", dataset, spec.configuration, str(fold), "-p", plans_name, "-tr", trainer + spec.suffix,
                "-device", spec.device]
        return argv + (["-num_gpus", str(spec.num_gpus)] if spec.num_gpus > 1 else []) + (["--npz"] if spec.npz else [])

    role = tasks.get(spec.request.task).trainers
    stages = [Stage("plan", "shared plans", spec.request.argv())]
    source_ids = []
    for i, s in enumerate(sources):
        if 1 + i in existing:
            continue
        sid = f"source:{s}"
        stages.append(Stage(sid, f"source teacher {s}", train(s, role["source"], "all"), ["plan"], s,
                            role["source"] + spec.suffix, "all"))
        source_ids.append(sid)
    for f in spec.folds:
        if 0 not in existing:
            stages.append(Stage(f"target:{f}", f"target teacher fold {f}", train(target, role["target"], f), ["plan"],
                                target, role["target"] + spec.suffix, f))
    for f in spec.folds:
        stages.append(Stage(f"joint:{f}", f"joint teacher fold {f}", train(target, role["joint"], f),
                            ([] if 0 in existing else [f"target:{f}"]) + (source_ids or ["plan"]), target,
                            role["joint"] + spec.suffix, f))
        stages.append(Stage(f"student:{f}", f"student fold {f}", train(target, role["student"], f),
                            [f"joint:{f}"], target, role["student"] + spec.suffix, f))
        if spec.with_baselines and role.get("multihead"):
            stages.append(Stage(f"multihead:{f}", f"multi-head baseline fold {f}", train(target, role["multihead"], f),
                                ["plan"], target, role["multihead"] + spec.suffix, f))
    return stages


def interpreter_path() -> str:
    """PATH with this interpreter's scripts first: the nnU-Net and nnunet_kd commands of its environment, also when it
    is not activated."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def command_env() -> dict[str, str]:
    """The environment every stage needs (printed by --dry-run)."""
    env = {k: os.environ[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results") if k in os.environ}
    missing = [k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results") if k not in env]
    if missing:
        names = " and ".join(", ".join(missing).rsplit(", ", 1))
        raise KDError(f"{names} {'is' if len(missing) == 1 else 'are'} not set: export "
                      + " ".join(f"{k}=/path/to/{k}" for k in missing) + ", as for nnU-Net itself.")
    env["nnUNet_extTrainer"] = ext_trainer_value(os.environ.get("nnUNet_extTrainer", ""))
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


def _check_folds(spec: RunSpec, preprocessed: str) -> None:
    from nnunet_kd.core.datasets import dataset_name
    from nnunet_kd.planning.shared import RawDataset
    bad = [f for f in spec.folds if f != "all" and not f.isdigit()]
    if bad:
        raise KDError(f"-f {' '.join(spec.folds)}: folds are 0-4 or all, separated by spaces (e.g. -f 0 1 2 3 4); "
                      f"{bad} is not a fold.")
    if len(set(spec.folds)) != len(spec.folds):
        raise KDError(f"-f {' '.join(spec.folds)} names a fold twice.")
    folds = [f for f in spec.folds if f != "all"]
    if not folds:
        return
    target = RawDataset(dataset_name(spec.request.target))
    splits = join(preprocessed, target.name, "splits_final.json")
    n_splits = len(load_json(splits)) if isfile(splits) else 5
    beyond = [f for f in folds if int(f) >= n_splits]
    if beyond:
        raise KDError(f"-f {' '.join(spec.folds)}: {target.name} has {n_splits} folds (0-{n_splits - 1}"
                      f"{', from ' + splits if isfile(splits) else ', nnU-Net 5-fold cross-validation'}); fold "
                      f"{beyond[0]} would make nnU-Net train on a random 80:20 split. Use 0-{n_splits - 1} or all.")
    if len(target.cases) < 5 and not isfile(splits):
        raise KDError(f"{target.name} has {len(target.cases)} labelled cases, too few for nnU-Net's 5-fold "
                      f"cross-validation (-f {' '.join(folds)}). Use -f all, or write your own split to {splits}.")


class Pipeline:
    def __init__(self, spec: RunSpec, force: bool = False, log=lambda *a: print(*a, flush=True),
                 verbose: bool = False, shared=None):
        """shared: what ``prepare(spec.request)`` returned, where it has run already (another configuration's
        pipeline of the same request)."""
        from nnunet_kd.planning.shared import prepare
        self.spec, self.force, self.log, self.verbose = spec, force, log, verbose
        if spec.npz and not tasks.get(spec.request.task).npz:
            raise KDError(f"--npz saves nnU-Net's segmentation softmax; the {spec.request.task} trainers write their "
                          f"own validation files. Leave out --npz.")
        self.env = command_env()
        _check_folds(spec, self.env["nnUNet_preprocessed"])  # before the (slower) planning checks
        self.shared = shared = shared or prepare(spec.request)
        self.plans_name, self.target, self.source_names = shared.name, shared.target.name, shared.source_names
        self.arguments, self.settings = shared.arguments, shared.settings
        self.existing = shared.existing or {}
        target_teacher = self.existing.get(0)
        if target_teacher and target_teacher["fold"] is None:
            folder = resolve_path(target_teacher["model_folder"])
            missing = [f for f in spec.folds if not isfile(join(folder, f"fold_{f}", "checkpoint_final.pth"))]
            if missing:
                raise KDError(f"--target-teacher {folder} has no finished fold {missing[0]} for -f "
                              f"{' '.join(spec.folds)}: train it, run only its folds, or name one fold folder "
                              f"(--target-teacher {folder}/fold_0) to use for every fold.")
        self.stages = build_stages(spec, self.plans_name, self.target, self.source_names, self.existing)
        self.by_id = {s.id: s for s in self.stages}

    # ---- what is done ------------------------------------------------------------------------------------------
    def folder(self, stage: Stage) -> str | None:
        return stage.fold_folder(self.env["nnUNet_results"], self.plans_name, self.spec.configuration)

    def plans_exist(self) -> bool:
        """Whether every dataset has the shared plans and all its cases preprocessed whole (an interrupted `plan`
        leaves a subset, which nnU-Net's splits would then freeze); KDError when its raw files changed since."""
        from nnunet_kd.planning.raw_record import check_record
        from nnunet_kd.planning.shared import RawDataset, is_preprocessed
        for ds in [self.target] + self.source_names:
            path = join(self.env["nnUNet_preprocessed"], ds, self.plans_name + ".json")
            raw = RawDataset(ds)
            check_record(raw)
            if not isfile(path) or not is_preprocessed(
                    raw, load_json(path)["configurations"][self.spec.configuration]["data_identifier"]):
                return False
        return True

    def fingerprint(self, stage: Stage) -> str:
        """KD block + sha256 of the checkpoints of the stages this one trains from."""
        plans = load_json(join(self.env["nnUNet_preprocessed"], stage.dataset, self.plans_name + ".json"))
        parts = [json.dumps(plans.get(KD_BLOCK_KEY), sort_keys=True)]
        for dep in stage.depends:
            folder = self.folder(self.by_id[dep])
            if folder is not None:
                parts.append(file_sha256(join(folder, "checkpoint_final.pth")))
        if stage.id.startswith("joint:"):  # existing models among its teachers
            parts += [file_sha256(join(f, "checkpoint_final.pth")) for f in self.existing_fold_folders(stage.fold)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def status(self, stage: Stage, write: bool = True):
        """('done' | 'resume' | 'restart' | 'new' | 'changed', reason); write=False changes no file (--dry-run)."""
        folder = self.folder(stage)
        final, summary = join(folder, "checkpoint_final.pth"), join(folder, "validation", "summary.json")
        if isfile(final) and isfile(summary):
            record = join(folder, STAGE_RECORD)
            recorded = load_json(record)["fingerprint"] if isfile(record) else None
            current = self.fingerprint(stage)
            if recorded is None:  # trained by hand or by a --slurm job: adopt it as it is
                if write:
                    save_json_atomic({"fingerprint": current, "command": shlex.join(stage.argv), "adopted": True},
                                     record)
                    if stage.id.startswith("student:"):
                        self.record_teachers(stage)
                return "done", "finished (trained outside `nnunet_kd run`; its KD block and teachers recorded now)"
            if recorded == current:
                return "done", "finished, same KD block and teachers"
            return "changed", "finished, but its KD block or teachers changed since"
        return resume_point(folder, write)

    def other_experiments(self) -> list[str]:
        """Lines on the target's other shared plans (other nnunet_kd experiments) and how their arguments differ."""
        folder = join(self.env["nnUNet_preprocessed"], self.target)
        lines = []
        for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:  # a target never planned has none
            if not (f.startswith("nnUNetPlans_kd_") and f.endswith(".json")) or f == self.plans_name + ".json":
                continue
            block = load_json(join(folder, f)).get(KD_BLOCK_KEY) or {}
            recorded = block.get("arguments")
            if recorded is None:
                lines.append(f"{f[:-5]} (its arguments were not recorded)")
                continue
            diff = [f"{k}: {recorded.get(k)!r} there, {self.arguments.get(k)!r} here"
                    for k in sorted(set(recorded) | set(self.arguments)) if recorded.get(k) != self.arguments.get(k)]
            if not diff:  # the same arguments: a preset file edited since
                diff += setting_changes(block, self.settings)
            lines.append(f"{f[:-5]} ({'; '.join(diff) or 'same arguments'})")
        return lines

    # ---- running -----------------------------------------------------------------------------------------------
    def test_set(self, images: str, labels: str, out: str) -> dict:
        """Predicts images with every trained model of the experiment (its folds ensembled) into out/<trainer> and
        scores them against labels; {report label: what `report --test-dir` takes}."""
        from nnunet_kd.run.test_set import predict_and_score
        found = {}
        for label, model in self.models().items():
            name = os.path.basename(model)  # the trainer, or the existing target teacher's model folder
            if not os.path.isabs(model):
                stages = [s for s in self.stages if s.trainer == model]
                if not stages:
                    continue
                model, folds = os.path.dirname(self.folder(stages[0])), [s.fold for s in stages]
            else:
                folds = [self.existing[0]["fold"]] if self.existing[0]["fold"] else self.spec.folds
            self.log(f"test set: predicting with {label} ({name})")
            found[label] = predict_and_score(self.spec.request.task, model, folds, self.spec.device, images, labels,
                                             join(out, name))
        return found

    def existing_fold_folders(self, fold: str) -> list[str]:
        """The fold folders of the existing models that teach the student's fold ``fold``."""
        return [join(resolve_path(e["model_folder"]), f"fold_{e['fold'] or fold}") for e in self.existing.values()]

    def models(self) -> dict:
        """{report label: trainer of this experiment, or the folder of the existing target teacher}."""
        models = {label: trainer + self.spec.suffix for label, trainer in tasks.get(self.spec.request.task).models().items()}
        if 0 in self.existing:
            models[next(iter(models))] = resolve_path(self.existing[0]["model_folder"])
        return models

    def has_npz(self, stage: Stage) -> bool:
        validation = join(self.folder(stage), "validation")
        return os.path.isdir(validation) and any(f.endswith(".npz") for f in os.listdir(validation))

    def stage_state(self, stage: Stage) -> str:
        """done | resume | train | changed (needs --force), without changing any file."""
        if stage.id == "plan":
            return "done" if self.plans_exist() else "train"
        state, _ = self.status(stage, write=False)
        return {"new": "train", "restart": "train"}.get(state, state)

    def dry_run_lines(self) -> list[str]:
        """Notes first, as # lines, the last one the environment every command needs (``# environment: export
        K=V ...``); then one line per stage: id, after=dependencies, state and command, tab-separated."""
        states = [self.stage_state(s) for s in self.stages]
        notes = [f"# shared plans {self.plans_name}: " + ", ".join(
            f"{states.count(k)} {k}" for k in ("done", "resume", "train", "changed") if states.count(k))]
        others = self.other_experiments()
        if others and "done" not in states[1:]:
            notes.append(f"# {self.target} has other nnunet_kd experiments; these arguments make a new one, so every "
                         f"stage trains anew. Did you mean one of them?")
        notes += [f"#   {line}" for line in others]
        notes.append("# environment: export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items()))
        return notes + [f"{s.id}\tafter={','.join(s.depends) or '-'}\t{state}\t{shlex.join(s.argv)}"
                        for s, state in zip(self.stages, states)]

    def log_path(self, stage: Stage) -> str:
        """The stage's log: beside its fold folder in the model folder; planning's in the target's preprocessed
        folder."""
        if stage.trainer is None:
            return join(self.env["nnUNet_preprocessed"], self.target, f"{self.plans_name}.log")
        return join(os.path.dirname(self.folder(stage)), f"nnunet_kd_fold_{stage.fold}.log")

    def _execute(self, stage: Stage, argv: list[str], head: str, training: bool = True) -> None:
        role = stage.id.split(":")[0]
        epochs = variant_schedule(self.spec.suffix, role).get("num_epochs", 1000) if stage.trainer and training \
            else None
        run_stage(argv, {**os.environ, **self.env, "PATH": interpreter_path()}, self.log_path(stage), head, epochs,
                  tasks.get(self.spec.request.task).epoch_metric, self.verbose)

    def check_device(self) -> None:
        """Before the first stage: the device and GPUs asked for exist here (--dry-run does not check: its commands
        may run on other machines)."""
        import torch
        spec = self.spec
        if spec.device == "cuda" and not torch.cuda.is_available():
            raise KDError(f"--device cuda, but torch {torch.__version__} sees no CUDA GPU here (a CPU build of torch, "
                          f"or no GPU visible: check nvidia-smi and CUDA_VISIBLE_DEVICES). Install a CUDA build of "
                          f"torch, or pass --device cpu to train on the CPU (slow: for tests and the demo).")
        if spec.num_gpus > 1 and (spec.device != "cuda" or torch.cuda.device_count() < spec.num_gpus):
            raise KDError(f"--num-gpus {spec.num_gpus} needs --device cuda and {spec.num_gpus} visible GPUs "
                          f"(nnU-Net's multi-GPU launcher: CUDA and NCCL); {torch.cuda.device_count()} are visible.")

    def run(self) -> None:
        self.check_device()
        for variable in ("nnUNet_preprocessed", "nnUNet_results"):
            check_writable(self.env[variable], variable)
        start = time.time()
        n = len(self.stages)
        for i, stage in enumerate(self.stages, 1):
            head = f"[{i}/{n}] {stage.title}"
            argv = list(stage.argv)
            if stage.id == "plan" and self.plans_exist():
                self.log(f"{head}: skipped (shared plans {self.plans_name} and preprocessed data exist)")
                continue
            if stage.trainer is not None:
                state, reason = self.status(stage)
                if state == "done" and self.spec.npz and not self.has_npz(stage):
                    self.log(f"{head}: finished; its validation again, with --npz")
                    self._execute(stage, argv + ["--val"], head, training=False)
                    continue
                if state == "done":
                    self.log(f"{head}: skipped ({reason})")
                    continue
                if state == "changed":
                    if not self.force:
                        raise KDError(f"{head}: {reason}. Its model folder {self.folder(stage)} would no longer match "
                                      f"what it was trained from. Rerun with --force to retrain it (the old fold folder "
                                      f"is kept beside it as replaced-<time>-fold_X), or restore the previous teachers / KD block.")
                    old = self.folder(stage)  # kept under a name no fold lookup takes (nnU-Net's: fold_*)
                    kept = join(os.path.dirname(old), f"replaced-{time.strftime('%Y%m%d-%H%M%S')}-{os.path.basename(old)}")
                    os.replace(old, kept)
                    reason = f"retraining (--force; the old fold folder is now {kept})"
                elif state == "resume":
                    argv.append("--c")
                self.log(f"{head}: {reason}")
            t0 = time.time()
            self.log(f"{head}: start  {shlex.join(argv)}  (log: {self.log_path(stage)})")
            self._execute(stage, argv, head)
            if stage.trainer is not None:
                save_json_atomic({"fingerprint": self.fingerprint(stage), "command": shlex.join(stage.argv)},
                          join(self.folder(stage), STAGE_RECORD))
            if stage.id.startswith("student:"):
                self.record_teachers(stage)
            self.log(f"{head}: done in {time.time() - t0:.0f} s (total {time.time() - start:.0f} s)")

    def record_teachers(self, student: Stage) -> None:
        """Writes the teachers the student was distilled from into the KD block of its model folder's plans.json."""
        model_folder = os.path.dirname(self.folder(student))
        plans_file = join(model_folder, "plans.json")
        plans = load_json(plans_file)
        joint = self.by_id[student.depends[0]]
        joint_plans = load_json(join(os.path.dirname(self.folder(joint)), "plans.json"))
        teachers = [f for f in (self.folder(self.by_id[d]) for d in joint.depends) if f is not None] + \
            self.existing_fold_folders(joint.fold)
        plans[KD_BLOCK_KEY]["run"] = {
            "joint_teacher": portable_path(self.folder(joint)),
            "teachers": [{"fold_folder": portable_path(f), "sha256": file_sha256(join(f, "checkpoint_final.pth"))}
                         for f in teachers],
            "fusion_levels": joint_plans["configurations"][self.spec.configuration]["architecture"]["arch_kwargs"][
                "fusion_levels"],
        }
        save_json_atomic(plans, plans_file)

