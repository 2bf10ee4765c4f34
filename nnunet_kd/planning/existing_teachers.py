"""Already trained nnU-Net models as teachers (`--target-teacher`, `--source-teacher`): the KD block's teacher entry
with a ``model_folder``, checked when planning so that an incompatible model fails before any training."""
import os

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.model_plans import read_model_plans

# what the teacher's encoder must have seen like the student's input: same spacing and intensity normalisation
SAME_INPUT = ("spacing", "normalization_schemes", "use_mask_for_norm")


def read_existing(path: str, flag: str) -> dict:
    """The teacher entry of an nnU-Net model folder TRAINER__PLANS__CONFIGURATION, or one of its fold_X folders
    (that fold; else the target teacher uses the student's fold, a source teacher fold_all)."""
    path = os.path.abspath(path)
    fold = None
    if os.path.basename(path).startswith("fold_"):
        path, fold = os.path.dirname(path), os.path.basename(path)[len("fold_"):]
    parts = os.path.basename(path).split("__")
    if not isdir(path):
        raise KDError(f"{flag} {path} does not exist. Give the teacher's model folder, e.g. "
                      f"$nnUNet_results/Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres.")
    if len(parts) != 3 or not all(isfile(join(path, f)) for f in ("plans.json", "dataset.json")):
        raise KDError(f"{flag} {path}: not a trained nnU-Net model folder (TRAINER__PLANS__CONFIGURATION with "
                      f"plans.json, dataset.json and fold_X/checkpoint_final.pth), e.g. "
                      f"$nnUNet_results/Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres.")
    folds = sorted(d[len("fold_"):] for d in os.listdir(path)
                   if d.startswith("fold_") and isfile(join(path, d, "checkpoint_final.pth")))
    if fold is not None and fold not in folds:
        raise KDError(f"{flag} {path}/fold_{fold} has no checkpoint_final.pth (finished folds: {folds or 'none'}).")
    if not folds:
        raise KDError(f"{flag} {path} has no finished fold (fold_X/checkpoint_final.pth).")
    plans = read_model_plans(path)[0]
    return {"model_folder": path, "dataset": plans["dataset_name"], "trainer": parts[0], "plans": parts[1],
            "configuration": parts[2], "fold": fold, "folds": folds}


def source_slot(spec: dict, sources) -> int:
    """The index of the source (a RawDataset) the teacher was trained on, or on a channel-mapped copy of."""
    raw_json = join(os.environ.get("nnUNet_raw", ""), spec["dataset"], "dataset.json")
    original = (load_json(raw_json) if isfile(raw_json) else {}).get("nnunet_kd_derived_from", {}).get("dataset")
    for i, s in enumerate(sources):
        if s.name in (spec["dataset"], original):
            return i
    raise KDError(f"--source-teacher {spec['model_folder']} was trained on {spec['dataset']}, which is not among the "
                  f"sources {[s.name for s in sources]}. Give its dataset with -s.")


def teacher_entry(role: str, spec: dict) -> dict:
    """The KD block's teacher entry of an existing model."""
    fold = spec["fold"]
    if fold is None and role == "source":
        fold = "all" if "all" in spec["folds"] else None
    if fold is None and role == "source":
        raise KDError(f"--source-teacher {spec['model_folder']} has no fold_all; give the fold to use: "
                      f"--source-teacher {spec['model_folder']}/fold_{spec['folds'][0]} (it has {spec['folds']}).")
    from nnunet_kd.core.teachers import portable_path
    return {"role": role, "dataset": spec["dataset"], "trainer": spec["trainer"], "plans": spec["plans"],
            "configuration": spec["configuration"], "fold": fold, "model_folder": portable_path(spec["model_folder"])}


def check_against_plans(entries: list[dict], plans: dict, configurations, target_json: dict) -> None:
    """Existing teachers must see the input the shared plans make (spacing, normalisation) and fit the network
    (`check_compatible`: channels, conv dimension, stages, strides, the target teacher's labels)."""
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnunet_kd.core.teachers import Teacher, check_compatible, resolve_path
    pm = PlansManager(plans)
    for c in configurations:
        cm = pm.get_configuration(c)
        for e in entries:
            folder = resolve_path(e["model_folder"])
            teacher_plans = read_model_plans(folder)[0]
            mine = teacher_plans["configurations"].get(e["configuration"] or c)
            if mine is None:
                raise KDError(f"Teacher {folder} has no configuration {e['configuration'] or c}.")
            diffs = [f"{k} {mine.get(k)} vs {cm.configuration.get(k)}" for k in SAME_INPUT
                     if not _same(mine.get(k), cm.configuration.get(k))]
            if diffs:
                raise KDError(f"Teacher {folder} was trained on other input than the shared plans make "
                              f"({'; '.join(diffs)}). Plan with --from-plans {e['plans']} (the target's plans it was "
                              f"trained with) so that both match, or train the teacher under the shared plans.")
            fold = e["fold"] or sorted(d[5:] for d in os.listdir(folder) if d.startswith("fold_"))[0]
            teacher = Teacher(e["role"], e["dataset"], e["trainer"], e["plans"], e["configuration"] or c, fold, folder)
            check_compatible([teacher], cm.configuration["architecture"],
                             determine_num_input_channels(pm, cm, target_json),
                             pm.get_label_manager(target_json).num_segmentation_heads)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return a == b
