"""`nnunet_kd plan`: one set of nnU-Net plans shared by the target and every source dataset.

Steps: check the inputs -> fingerprint every dataset (nnU-Net's extractor, plus a NaN/inf check) -> plan the target with
nnU-Net's planner (or copy an existing target plans file) -> apply the preset's architecture caps and write the KD block
-> transfer the plans to every source under the same name (as nnUNetv2_move_plans_between_datasets does) -> preprocess
what is missing -> verify that all datasets ended with identical network-relevant settings.

Files of the user are never edited: existing plans files are only read; a shared plans file that exists is compared
and reused, never overwritten.
"""
import contextlib
import copy
import hashlib
import io
import json
import multiprocessing
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, subdirs

import nnunetv2
from nnunetv2.configuration import default_num_processes
from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, preprocess_dataset
from nnunetv2.experiment_planning.verify_dataset_integrity import check_cases, verify_labels
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
from nnunetv2.utilities.json_export import recursive_fix_for_json_export
from nnunetv2.utilities.label_handling.label_handling import LabelManager
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from nnunet_kd.settings import KD_BLOCK_KEY, concrete_values, load_preset
from nnunet_kd.core import tasks
from nnunet_kd.core.datasets import dataset_id, dataset_name
from nnunet_kd.core.errors import KDError, listing
from nnunet_kd.core.model_plans import read_model_plans
from nnunet_kd.core.files import check_writable, exclusive, read_json_object, save_json_atomic
from nnunet_kd.planning.existing_teachers import check_against_plans, read_existing, source_slot, teacher_entry
from nnunet_kd.planning.raw_record import check_record, write_record
from nnunet_kd.planning.request import PlanRequest
from nnunet_kd.planning.unlabelled import find_cases, preprocess_unlabelled, unlabelled_folder
from nnunet_kd.planning.channels import channel_list, derived_dataset_json, register_derived, resolve_channel_order
from nnunet_kd.run.progress import cases_bar

SUPPORTED_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
# configuration entries that must agree between the datasets of one shared plans name
VERIFIED_KEYS = ("patch_size", "spacing", "normalization_schemes", "use_mask_for_norm", "batch_size")
VERIFIED_ARCH_KEYS = ("n_stages", "strides", "kernel_sizes", "features_per_stage", "conv_op")
IN_PROCESS_BYTES = 64 * 2**20  # the NaN/inf check reads smaller datasets in this process


def _require_env():
    for var in ("nnUNet_raw", "nnUNet_preprocessed"):
        if not os.environ.get(var):
            raise KDError(f"{var} is not set. Point nnUNet_raw, nnUNet_preprocessed and nnUNet_results at your nnU-Net "
                          f"folders (see nnU-Net's documentation/setting_up_paths.md).")


def shared_plans_name(**args) -> str:
    digest = hashlib.sha1(json.dumps(args, sort_keys=True).encode()).hexdigest()[:8]
    return f"nnUNetPlans_kd_{digest}"


def _check_case(image_files: list[str], label_file: str, expected_labels: list, num_channels: int,
                reader_class) -> str | None:
    """What is wrong with one training case, or None: nnU-Net's own checks of verify_dataset_integrity (label values,
    image and label shape and spacing, channel count) and non-finite voxels."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            ok = verify_labels(label_file, reader_class, expected_labels)
            ok = check_cases(image_files, label_file, num_channels, reader_class) and ok
            images, _ = reader_class().read_images(image_files)
    except Exception as e:  # an empty, truncated or foreign file: the reader's own exception types vary
        return f"{image_files + [label_file]}: unreadable ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
    bad = int(np.sum(~np.isfinite(images)))
    if bad:
        return f"{image_files}: {bad} NaN/inf voxels"
    return None if ok else " ".join(printed.getvalue().split())[:600]


def _check_case_files(args) -> str | None:
    return _check_case(*args)


def _check_dataset(name: str, cases: dict, dataset_json: dict, num_processes: int) -> None:
    """Rejects cases nnU-Net's dataset integrity check rejects, and NaN/inf images, before its fingerprint extraction
    reads them (in worker processes where the images take IN_PROCESS_BYTES or more on disk, else in this process:
    starting workers takes seconds)."""
    labels = LabelManager(dataset_json["labels"], regions_class_order=dataset_json.get("regions_class_order"))
    expected = [int(v) for v in labels.all_labels + ([labels.ignore_label] if labels.has_ignore_label else [])]
    if not all(np.ediff1d(expected) == 1):
        raise KDError(f"{name}: the labels of its dataset.json must be consecutive integers 0, 1, 2, ... (got "
                      f"{expected}). Renumber them in dataset.json and the label files.")
    example = next(iter(cases.values()))["images"][0]
    reader = determine_reader_writer_from_dataset_json(dataset_json, example, allow_nonmatching_filename=True,
                                                       verbose=False)
    jobs = [(c["images"], c["label"], expected, len(dataset_json["channel_names"]), reader) for c in cases.values()]
    size = sum(os.path.getsize(f) for c in cases.values() for f in c["images"])
    with contextlib.ExitStack() as stack:
        imap = map
        if num_processes > 1 and size >= IN_PROCESS_BYTES:
            imap = stack.enter_context(multiprocessing.get_context("spawn").Pool(num_processes)).imap
        problems = [p for p in cases_bar(imap(_check_case_files, jobs), f"{name}: integrity check", len(cases)) if p]
    if problems:
        raise KDError(f"{name} has training cases nnU-Net cannot use (its verify_dataset_integrity checks, and NaN/inf "
                      f"voxels); fix or remove these cases and rerun:\n" + listing(problems))


class RawDataset:
    """What `plan` needs to know of one raw dataset."""

    def __init__(self, name: str):
        self.name = str(name)  # nnU-Net returns numpy strings
        self.id = dataset_id(name)
        self.raw_folder = join(nnUNet_raw.get(), name)
        json_file = join(self.raw_folder, "dataset.json")
        if not os.path.isdir(self.raw_folder):
            there = sorted(d for d in os.listdir(nnUNet_raw.get()) if d.startswith("Dataset"))
            raise KDError(f"Dataset {name} does not exist: no folder {self.raw_folder}. Datasets in nnUNet_raw: "
                          f"{there or 'none'}.")
        if not isfile(json_file):
            raise KDError(f"{json_file} is missing: {name} is not an nnU-Net raw dataset.")
        self.json = read_json_object(json_file)
        try:
            self.cases = get_filenames_of_train_images_and_targets(self.raw_folder, copy.deepcopy(self.json))
        except FileNotFoundError:
            self.cases = {}
        if not self.cases:
            raise KDError(f"{name} has no training cases (looked in {join(self.raw_folder, 'imagesTr')}). "
                          f"A dataset used by nnunet_kd needs labelled training cases.")
        missing = [c["label"] for c in self.cases.values() if not isfile(c["label"])]
        if missing:
            raise KDError(f"{name} lacks label files for {len(missing)} of {len(self.cases)} training cases, e.g. "
                          f"{missing[:3]}. Target and source datasets need a label file per case in labelsTr.")
        missing = [f for c in self.cases.values() for f in c["images"] if not isfile(f)]
        if missing:
            raise KDError(f"{name}: image files listed for its training cases are missing, e.g. {missing[:3]}.")

    def is_2d(self) -> bool:
        example = next(iter(self.cases.values()))["images"][0]
        reader = determine_reader_writer_from_dataset_json(self.json, example, allow_nonmatching_filename=True,
                                                           verbose=False)
        images, _ = reader().read_images([example])
        return images.shape[1] == 1

    @property
    def preprocessed_folder(self) -> str:
        return join(nnUNet_preprocessed.get(), self.name)


def _cap_architecture(configuration: dict, max_stages: int | None, max_features: int | None) -> None:
    arch = configuration["architecture"]["arch_kwargs"]
    n = arch["n_stages"] if max_stages is None else min(arch["n_stages"], max_stages)
    for key in ("features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage"):
        if key in arch:
            arch[key] = arch[key][:n]
    arch["n_conv_per_stage_decoder"] = arch["n_conv_per_stage_decoder"][:n - 1]
    arch["n_stages"] = n
    if max_features is not None:
        arch["features_per_stage"] = [min(f, max_features) for f in arch["features_per_stage"]]


def _check_from_plans(target: RawDataset, plans: str) -> None:
    if plans.startswith("nnUNetPlans_kd_"):
        raise KDError(f"--from-plans {plans} names the shared plans of an nnunet_kd experiment, not a plans file of "
                      f"{target.name} to copy. To continue that experiment, rerun `nnunet_kd run` with the arguments "
                      f"that made it (`nnunet_kd run ... --dry-run` lists the target's experiments and their "
                      f"arguments); to train one of its stages by hand, use nnUNetv2_train ... -p {plans}.")
    path = join(target.preprocessed_folder, plans + ".json")
    if not isfile(path):
        raise KDError(f"--from-plans {plans}: {path} does not exist. Give the identifier of an existing plans file "
                      f"of {target.name} (e.g. nnUNetPlans, made by nnUNetv2_plan_and_preprocess), or leave it out to "
                      f"plan anew with -pl.")


def _plan_target(target: RawDataset, name: str, planner: str | None, existing_plans: str | None) -> dict:
    if existing_plans is not None:
        plans = load_json(join(target.preprocessed_folder, existing_plans + ".json"))  # read only; the copy keeps its data_identifier so nothing is preprocessed again
        plans["plans_name"] = name
        return plans
    planner_class = recursive_find_python_class(join(nnunetv2.__path__[0], "experiment_planning"), planner,
                                                current_module="nnunetv2.experiment_planning")
    if planner_class is None:
        raise KDError(f"-pl {planner}: no such nnU-Net experiment planner. Examples: ExperimentPlanner, "
                      f"nnUNetPlannerResEncM, nnUNetPlannerResEncL.")
    instance = planner_class(target.id, preprocessor_name="DefaultPreprocessor", plans_name=name,
                             overwrite_target_spacing=None, suppress_transpose=False)
    instance.save_plans = lambda plans: None  # we compare before writing
    saved = os.environ.get("nnUNet_n_proc_DA")
    if saved == "0":  # nnU-Net's VRAM estimate calls torch.set_num_threads(n_proc_DA), which rejects 0
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        plans = instance.plan_experiment()
    finally:
        if saved == "0":
            os.environ["nnUNet_n_proc_DA"] = saved
    recursive_fix_for_json_export(plans)
    return plans


def _select_configurations(plans: dict, configurations: Sequence[str], where: str) -> None:
    available = list(plans["configurations"])
    missing = [c for c in configurations if c not in available]
    if missing:
        raise KDError(f"{where} has no configuration {', '.join(missing)}; it has {', '.join(available)}. nnU-Net "
                      f"plans 3d configurations only for 3D images and 3d_lowres only for large ones.")
    resolved = PlansManager(copy.deepcopy(plans))  # resolves inherits_from, so dropping a parent breaks nothing
    plans["configurations"] = {c: copy.deepcopy(resolved.get_configuration(c).configuration) for c in configurations}
    for conf in plans["configurations"].values():
        for key in ("inherits_from", "next_stage", "previous_stage"):
            conf.pop(key, None)


def _write_or_verify(path: str, plans: dict, concrete=lambda block: block) -> bool:
    """Writes plans to path; an existing file must be identical (its KD block's "auto" settings, written by earlier
    versions, as ``concrete`` resolves them). Returns True when written."""
    plans = json.loads(json.dumps(plans))
    if isfile(path):
        existing = load_json(path)
        if KD_BLOCK_KEY in existing:
            existing[KD_BLOCK_KEY] = concrete(existing[KD_BLOCK_KEY])
        if KD_BLOCK_KEY in existing and "arguments" not in existing[KD_BLOCK_KEY]:  # planned before they were kept
            plans = copy.deepcopy(plans)
            plans.get(KD_BLOCK_KEY, {}).pop("arguments", None)
        if existing != plans:
            raise KDError(f"{path} exists and differs from what `nnunet_kd plan` computes for these arguments now "
                          f"(the datasets, the preset or the file changed). It is never overwritten: delete it, "
                          f"together with the trained models that used it, to plan anew (or, where you named the "
                          f"plans with --plans-name, choose another name).")
        return False
    save_json_atomic(plans, path)
    return True


def _same_architecture(existing_target: dict | None, plans: dict, configurations: Sequence[str]) -> bool:
    """Whether an existing target teacher (a KD block teacher entry; None: one trained under these plans) has the
    network of the plans in every configuration (a student can then start from its weights)."""
    if existing_target is None:
        return True
    from nnunet_kd.core.teachers import resolve_path, same_network
    teacher_plans = read_model_plans(resolve_path(existing_target["model_folder"]))[0]
    return all(same_network(teacher_plans["configurations"][existing_target["configuration"] or c]["architecture"],
                            plans["configurations"][c]["architecture"]) for c in configurations)


def is_preprocessed(ds: RawDataset, data_identifier: str) -> bool:
    """Whether every raw case, and no other, is preprocessed whole: nnU-Net writes a case's properties (.pkl) after
    its arrays, so a case cut short by a kill has none."""
    folder = join(ds.preprocessed_folder, data_identifier)
    if not isdir(folder) or not os.listdir(folder):
        return False
    try:
        ids = infer_dataset_class(folder).get_identifiers(folder)
    except AssertionError:
        return False
    gt = join(ds.preprocessed_folder, "gt_segmentations")
    return set(ids) == set(ds.cases) and all(isfile(join(folder, i + ".pkl")) for i in ids) and isdir(gt) and \
        len(os.listdir(gt)) >= len(ds.cases)


def verify_shared_plans(plans_by_dataset: dict[str, dict], configurations: Sequence[str]) -> None:
    """All datasets of one shared plans name must agree on what the networks see."""
    (ref_name, ref), *others = plans_by_dataset.items()
    n_channels = {n: len(p.get("foreground_intensity_properties_per_channel", {})) for n, p in plans_by_dataset.items()}
    for c in configurations:
        for name, plans in others:
            if c not in plans["configurations"]:
                raise KDError(f"Shared plans of {name} lack configuration {c} that {ref_name} has. Rerun `nnunet_kd plan`.")
            a, b = ref["configurations"][c], plans["configurations"][c]
            diffs = [k for k in VERIFIED_KEYS if a.get(k) != b.get(k)]
            diffs += [f"architecture.{k}" for k in VERIFIED_ARCH_KEYS
                      if a["architecture"]["arch_kwargs"].get(k) != b["architecture"]["arch_kwargs"].get(k)]
            if n_channels[ref_name] != n_channels[name]:
                diffs.append("number of channels")
            if diffs:
                raise KDError(f"The shared plans '{ref['plans_name']}' of {name} and {ref_name} differ in {diffs} "
                              f"for configuration {c}. All datasets of a KD experiment must share patch size, spacing, "
                              f"stages, strides, normalization and channels; was a plans file edited by hand? "
                              f"Rerun `nnunet_kd plan` with a fresh plans name.")


@dataclass
class SharedPlansSpec:
    """What `plan` will produce, known before anything is written."""
    name: str
    target: RawDataset
    sources: list[RawDataset]  # as given on the command line
    derived: list[tuple]  # (index in sources, derived dataset name, its dataset.json)
    configurations: list[str]
    settings: dict
    unlabelled: dict | None = None  # case -> files of the opt-in unlabelled target images
    arguments: dict = None  # what the shared plans name is a hash of (kept in the KD block as "arguments")
    existing: dict = None  # teachers that are existing models: index in the KD block's teachers -> entry

    @property
    def source_names(self) -> list[str]:
        """The datasets the source teachers train on (derived names where channels were mapped)."""
        names = [s.name for s in self.sources]
        for i, dname, _ in self.derived:
            names[i] = dname
        return names


def prepare(request: PlanRequest) -> SharedPlansSpec:
    """Checks the request's inputs and works out names and channel mappings; reads, never writes."""
    _require_env()
    r = request
    plans_name, configurations, task, preset = r.plans_name, list(r.configurations), r.task, r.preset
    if plans_name is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", plans_name):
        raise KDError(f"--plans-name {plans_name!r}: use letters, digits, '_', '.' and '-', starting with a letter "
                      f"(it becomes file and folder names, as nnU-Net's -overwrite_plans_name does).")
    if plans_name is not None and ("__" in plans_name or plans_name == "nnUNetPlans"):
        raise KDError(f"--plans-name {plans_name}: nnU-Net's model folders are TRAINER__PLANS__CONFIGURATION, so a "
                      f"name may hold no '__', and nnUNetPlans is nnU-Net's own plans. Choose another name.")
    for c in configurations:
        if c == "3d_cascade_fullres":
            raise KDError("3d_cascade_fullres is not supported by nnunet_kd: the cascade's second stage needs the "
                          "first stage's predictions for every dataset. Use 3d_fullres or 3d_lowres.")
        if c not in SUPPORTED_CONFIGURATIONS:
            raise KDError(f"Unknown configuration '{c}'. Choose from {list(SUPPORTED_CONFIGURATIONS)}.")
    if not r.sources:
        raise KDError("Give at least one source dataset (-s).")
    if task not in tasks.names():
        raise KDError(f"--task must be one of {tasks.names()}, got {task!r}.")
    task_spec = tasks.get(task)
    settings = load_preset(preset, task)
    settings["task"] = task
    channel_map = {str(k): v for k, v in (r.channel_map or {}).items()}
    bad = {k: v for k, v in channel_map.items()
           if not (isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items()))}
    if bad:
        raise KDError(f"--channel-map {json.dumps(bad)}: give each source a map from target channel names to its own "
                      f"channel names, e.g. {{\"3\": {{\"T1\": \"mri\"}}}}.")

    # 1. inputs, before anything is written
    tgt = RawDataset(dataset_name(r.target))
    srcs = [RawDataset(dataset_name(s)) for s in r.sources]
    names = [tgt.name] + [s.name for s in srcs]
    if len(set(names)) != len(names):
        raise KDError(f"Target {r.target} and sources {list(r.sources)} must be distinct datasets (they are {names}).")
    if r.from_plans is not None:
        _check_from_plans(tgt, r.from_plans)
    for d in [tgt] + srcs if task_spec.check_raw else ():  # the task's labels, before anything is written
        task_spec.check_raw(d.raw_folder, d.json)
    ids = {s.name: str(s.id) for s in srcs}  # keys by id, as given by id or name (the plans name hashes the ids)
    channel_map = {ids.get(k, k): v for k, v in channel_map.items()}
    unknown = set(channel_map) - set(ids.values())
    if unknown:
        raise KDError(f"--channel-map names datasets {sorted(unknown)}, which are not among the sources "
                      f"{list(r.sources)}.")
    dims = {d.name: d.is_2d() for d in [tgt] + srcs}
    if len(set(dims.values())) > 1:
        raise KDError("Target and sources must all be 2D or all 3D: " +
                      ", ".join(f"{n} is {'2D' if v else '3D'}" for n, v in dims.items()) + ".")
    if all(dims.values()) and any(c.startswith("3d") for c in configurations):
        raise KDError(f"The datasets are 2D, so nnU-Net plans only the '2d' configuration; got -c "
                      f"{' '.join(configurations)}. Pass -c 2d.")
    derived = []  # (index in sources, name, dataset.json)
    for i, s in enumerate(srcs):
        explicit = channel_map.get(str(s.id))
        order = resolve_channel_order(tgt.json, s.json, s.name, tgt.name, explicit)
        if explicit is None and order == list(range(len(channel_list(s.json)))):
            continue
        derived.append((i, order))
    derived_ids = r.derived_ids
    bad = [i for i in derived_ids if not 1 <= i <= 999]
    if bad:
        raise KDError(f"--derived-id {bad[0]} is outside 1-999, the range of nnU-Net's DatasetXXX names.")
    if derived_ids and len(derived_ids) != len(derived):
        raise KDError(f"--derived-id got {len(derived_ids)} ids but {len(derived)} sources need a derived dataset "
                      f"({[srcs[i].name for i, _ in derived]}).")
    unlabelled, extra_target_images = None, r.extra_target_images
    if extra_target_images is not None:
        unlabelled = find_cases(extra_target_images, tgt.json)
        settings["dann"]["extra_target_images"] = extra_target_images
    existing = {}  # index in the teachers list (0: target, 1 + i: source i) -> KD block entry of an existing model
    if r.target_teacher:
        spec = read_existing(r.target_teacher, "--target-teacher")
        if spec["dataset"] != tgt.name:
            raise KDError(f"--target-teacher {spec['model_folder']} was trained on {spec['dataset']}, not on the "
                          f"target {tgt.name}.")
        existing[0] = teacher_entry("target", spec)
    for path in r.source_teachers:
        spec = read_existing(path, "--source-teacher")
        slot = 1 + source_slot(spec, srcs)
        if slot in existing:
            raise KDError(f"Two --source-teacher models for {srcs[slot - 1].name}: give one per source.")
        existing[slot] = teacher_entry("source", spec)
    if existing and not task_spec.existing_teachers:
        raise KDError(f"--target-teacher/--source-teacher take trained nnU-Net models of the tasks "
                      f"{[t.name for t in tasks.all_tasks() if t.existing_teachers]}, not {task} (--task).")
    arguments = dict(target=tgt.name, sources=[s.name for s in srcs], configurations=configurations,
                     planner=None if r.from_plans else r.planner, plans=r.from_plans, preset=preset,
                     channel_map=channel_map, derived_ids=list(derived_ids),
                     **({"extra_target_images": extra_target_images} if extra_target_images else {}),
                     **({"task": task} if task != tasks.DEFAULT_TASK else {}),
                     **({"existing_teachers": {str(k): e["model_folder"] + f"/fold_{e['fold']}" * bool(e["fold"])
                                               for k, e in sorted(existing.items())}} if existing else {}))
    # the experiment is what the preset says, not where it lies: p.json, ./p.json and an edited p.json
    name = plans_name or shared_plans_name(**{k: v for k, v in arguments.items() if k != "preset"}, settings=settings)
    derived_specs, chosen = [], set()
    for k, (i, order) in enumerate(derived):
        suffix = f"_{srcs[i].name[11:]}For{tgt.name[11:]}"
        if derived_ids:
            did = derived_ids[k]
            others = sorted(set(_datasets_with_id(did)) - {f"Dataset{did:03d}{suffix}"})
            if others:
                raise KDError(f"Dataset id {did} for the channel-mapped copy of {srcs[i].name} is taken by {others}. "
                              f"Choose free ids with --derived-id.")
        else:
            did = _default_derived_id(suffix, chosen)
        chosen.add(did)
        dname = f"Dataset{did:03d}{suffix}"
        derived_specs.append((i, dname, derived_dataset_json(nnUNet_raw.get(), srcs[i].raw_folder, dname,
                                                             srcs[i].json, tgt.json, order)))
    return SharedPlansSpec(name, tgt, srcs, derived_specs, configurations, settings, unlabelled, arguments, existing)


def _datasets_with_id(did: int) -> list[str]:
    roots = (nnUNet_raw.get(), nnUNet_preprocessed.get(), os.environ.get("nnUNet_results"))
    return [c for root in roots if root and isdir(root) for c in subdirs(root, prefix=f"Dataset{did:03d}_", join=False)]


def _default_derived_id(suffix: str, chosen: set) -> int:
    """The id of an earlier derived copy with this name, else the lowest id from 901 that no dataset uses."""
    existing = [dataset_id(c) for c in subdirs(nnUNet_raw.get(), prefix="Dataset9", join=False) if c.endswith(suffix)]
    if existing:
        return min(existing)
    for did in range(901, 1000):
        if did not in chosen and not _datasets_with_id(did):
            return did
    raise KDError("Dataset ids 901-999 are all taken; choose free ids for the channel-mapped sources with --derived-id.")


def plan(request: PlanRequest, num_processes: int = default_num_processes, verbose: bool = True) -> SharedPlansSpec:
    """Runs the shared-plans step of the request; returns what it planned (its name: ``.name``)."""
    log = print if verbose else (lambda *a, **k: None)
    spec = prepare(request)
    new = [dname for _, dname, _ in spec.derived if not isfile(join(nnUNet_raw.get(), dname, "dataset.json"))]
    if new:
        log(f"Registering {', '.join(new)} in nnUNet_raw: a dataset.json each, pointing at the source's own files "
            f"with its channels in the target's order (nnU-Net plans and preprocesses from nnUNet_raw).")
        try:
            check_writable(nnUNet_raw.get(), "nnUNet_raw")
        except KDError as e:
            raise KDError(f"The sources' channels differ from the target's, so `plan` registers the derived datasets "
                          f"{', '.join(new)} in nnUNet_raw (a dataset.json each; the images stay where they are). {e}"
                          ) from None
    check_writable(nnUNet_preprocessed.get(), "nnUNet_preprocessed")
    lock = join(nnUNet_preprocessed.get(), f".nnunet_kd_{spec.target.name}_{spec.name}.lock")
    with exclusive(lock, f"Experiment {spec.name} of {spec.target.name} (another `nnunet_kd plan`)"):
        _plan(spec, request.planner, request.from_plans, request.task, num_processes, log)
    return spec


def _plan(spec: "SharedPlansSpec", planner: str, plans: str | None, task: str, num_processes: int, log) -> str:
    name, tgt, srcs, configurations, settings = spec.name, spec.target, list(spec.sources), spec.configurations, \
        spec.settings
    task_spec = tasks.get(task)

    # 2. derived datasets and fingerprints (nnU-Net's extractor; existing fingerprints are reused)
    for i, dname, djson in spec.derived:
        register_derived(nnUNet_raw.get(), dname, djson)
        log(f"{srcs[i].name} -> {dname} (channels {djson['nnunet_kd_derived_from']['source_channels']} as "
            f"{channel_list(tgt.json)})")
        srcs[i] = RawDataset(dname)
    for d in [tgt] + srcs:
        check_record(d)
    for d in [tgt] + srcs:
        if not isfile(join(d.preprocessed_folder, "dataset_fingerprint.json")):
            _check_dataset(d.name, d.cases, d.json, num_processes)
        extract_fingerprint_dataset(d.id, num_processes=num_processes, clean=False, verbose=False,
                                    show_progress_bar=True)
        write_record(d)

    # 3. target plans + preset + KD block
    target_plans = _plan_target(tgt, name, planner, plans)
    _select_configurations(target_plans, configurations, f"The plans of {tgt.name}")
    for c in configurations:
        _cap_architecture(target_plans["configurations"][c], settings["architecture"]["max_stages"],
                          settings["architecture"]["max_features"])
    block = copy.deepcopy(settings)
    block.update({
        "version": 1,
        "preset": spec.arguments["preset"],
        "arguments": spec.arguments,
        "target": tgt.name,
        "sources": [{"dataset": s.name, "derived_from": s.json.get("nnunet_kd_derived_from", {}).get("dataset")}
                    for s in srcs],
        "configurations": configurations,
        "teachers": [spec.existing.get(i, t) for i, t in enumerate(
            [{"role": "target", "dataset": tgt.name, "trainer": task_spec.trainer("target"), "plans": name,
              "configuration": None, "fold": None}] +
            [{"role": "source", "dataset": s.name, "trainer": task_spec.trainer("source"), "plans": name,
              "configuration": None, "fold": "all"} for s in srcs])],
    })
    if spec.existing:
        check_against_plans(list(spec.existing.values()), target_plans, configurations, tgt.json)
    warm_start = task_spec.student_warm_start and settings["student"]["width"] == 1 and \
        _same_architecture(spec.existing.get(0), target_plans, configurations)

    def concrete(kd_block: dict) -> dict:
        return concrete_values(kd_block, has_unlabelled=bool(spec.unlabelled), warm_start=warm_start)
    target_plans[KD_BLOCK_KEY] = concrete(block)

    # 4. write (or verify) every dataset's copy, then preprocess what is missing
    plans_by_dataset = {}
    for d in [tgt] + srcs:
        p = copy.deepcopy(target_plans)
        if d is not tgt:
            p["dataset_name"] = d.name
            for c in configurations:  # sources get data of their own, whatever identifier the target's data has
                p["configurations"][c]["data_identifier"] = f"{name}_{c}"
            example = next(iter(d.cases.values()))["images"][0]
            p["image_reader_writer"] = determine_reader_writer_from_dataset_json(
                d.json, example, allow_nonmatching_filename=True, verbose=False).__name__
            if not isfile(join(d.preprocessed_folder, "dataset.json")):
                save_json_atomic(d.json, join(d.preprocessed_folder, "dataset.json"))
        path = join(d.preprocessed_folder, name + ".json")
        log(("wrote " if _write_or_verify(path, p, concrete) else "reusing identical ") + path)
        plans_by_dataset[d.name] = p
    verify_shared_plans(plans_by_dataset, configurations)
    for d in [tgt] + srcs:
        todo = [c for c in configurations
                if not is_preprocessed(d, plans_by_dataset[d.name]["configurations"][c]["data_identifier"])]
        if todo and d is tgt and plans is not None:
            raise KDError(f"{tgt.name} has plans {plans} but its preprocessed data for {todo} is missing or incomplete. "
                          f"Run nnUNetv2_preprocess -d {tgt.id} -plans_name {plans} -c {' '.join(todo)} first.")
        if todo:
            log(f"preprocessing {d.name} {todo}")
            preprocess_dataset(d.id, name, todo, [num_processes] * len(todo), verbose=False, show_progress_bar=True)
    if spec.unlabelled:
        for c in configurations:
            folder = unlabelled_folder(tgt.preprocessed_folder, target_plans["configurations"][c]["data_identifier"])
            log(f"preprocessing {len(spec.unlabelled)} unlabelled target images into {folder}")
            preprocess_unlabelled(spec.unlabelled, target_plans, c, tgt.json, folder)
    return name
