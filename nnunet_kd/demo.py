"""`nnunet_kd demo`: a small multi-domain scenario, the whole pipeline on CPU, test-set evaluation, paired results table
and verdict. `run_scenario` also serves the segmentation benchmark."""
import contextlib
import io
import os
import shlex
from typing import Dict

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

from nnunet_kd.data.synthetic import lesion_demo, write_dataset
from nnunet_kd.errors import KDError
from nnunet_kd.pipeline import Pipeline, RunSpec, command_env, run_argv
from nnunet_kd.report import DEFAULT_MODELS as MODELS, report

DEMO_CHANNEL_MAP = {"3": {"T1": "mri"}}


def set_nnunet_folders(out_dir: str) -> Dict[str, str]:
    folders = {k: join(out_dir, k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for k, v in folders.items():
        os.makedirs(v, exist_ok=True)
        os.environ[k] = v
    os.environ.setdefault("nnUNet_def_n_proc", "2")
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    return folders


def write_demo_data(raw: str, specs, seed: int = 0) -> None:
    """Writes each dataset of specs unless there; one there with other labels (an older demo) is an error."""
    for spec in specs:
        folder = join(raw, f"Dataset{spec.dataset_id:03d}_{spec.name}")
        if not isfile(join(folder, "dataset.json")):
            write_dataset(raw, spec, seed=seed)
            continue
        labels = load_json(join(folder, "dataset.json"))["labels"]
        expected = ["background"] + (["organ"] if spec.organ_label else []) + [spec.lesion_label] + spec.extra_labels
        unlabelled = join(folder, "imagesUnlabelled")
        n_unlabelled = len(os.listdir(unlabelled)) // len(spec.channels) if os.path.isdir(unlabelled) else 0
        if list(labels) != expected or n_unlabelled != spec.num_unlabelled:
            raise KDError(f"{folder} holds the data of another scenario (labels {list(labels)}, {n_unlabelled} "
                          f"unlabelled images; this one has {expected}, {spec.num_unlabelled}), e.g. of an older demo. "
                          f"Use a new --out folder, or delete that one.")


def evaluate_test_set(target: str, configuration: str, folds, plans: str, trainer: str, device: str,
                      out_dir: str) -> str:
    """Predicts the target's imagesTs with nnU-Net's own predictor (what nnUNetv2_predict runs, here in this process
    and without worker processes) and scores it with compute_metrics_on_folder."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    env = command_env()
    raw = join(env["nnUNet_raw"], target)
    dataset_json = load_json(join(raw, "dataset.json"))
    predictor = nnUNetPredictor(perform_everything_on_device=device == "cuda", device=torch.device(device),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(
        join(env["nnUNet_results"], target, f"{trainer}__{plans}__{configuration}"),
        [f if f == "all" else int(f) for f in folds])
    os.makedirs(out_dir, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # a line per case
        predictor.predict_from_files_sequential(join(raw, "imagesTs"), out_dir)
    example = next(f for f in os.listdir(join(raw, "labelsTs")) if f.endswith(dataset_json["file_ending"]))
    reader = determine_reader_writer_from_dataset_json(dataset_json, join(raw, "labelsTs", example))
    labels = [v for k, v in dataset_json["labels"].items() if k != "background" and k != "ignore"]
    compute_metrics_on_folder(join(raw, "labelsTs"), out_dir, join(out_dir, "summary.json"), reader(),
                              dataset_json["file_ending"], labels, num_processes=2)
    return out_dir


def demo(out_dir: str, seed: int = 0, suffix: str = "_demo", device: str = "cpu") -> dict:
    """The built-in demo (`lesion_demo`): an organ and faint small lesions in the target, clear in the sources."""
    return run_scenario(out_dir, lesion_demo(), seed, suffix, device)


def run_scenario(out_dir: str, specs, seed: int = 0, suffix: str = "_demo", device: str = "cpu",
                 preset: str = "tiny") -> dict:
    """Writes the datasets of specs (target 1, sources 2 and 3) into out_dir, runs the pipeline on them (the target's
    unlabelled images, if it has any, as --extra-target-images), predicts the target's test set with every model and
    reports (out_dir/report); returns the report."""
    out_dir = os.path.abspath(out_dir)
    folders = set_nnunet_folders(out_dir)
    os.environ.setdefault("nnUNet_KD_SEED", str(seed))  # training seeded too: a rerun gives the same models
    write_demo_data(folders["nnUNet_raw"], specs, seed)
    extra = join(folders["nnUNet_raw"], f"Dataset{specs[0].dataset_id:03d}_{specs[0].name}", "imagesUnlabelled") \
        if specs[0].num_unlabelled else None
    spec = RunSpec(target=1, sources=[2, 3], configuration="2d", folds=["0"], preset=preset,
                   channel_map=DEMO_CHANNEL_MAP, extra_target_images=extra, suffix=suffix, device=device,
                   with_baselines=True)
    pipeline = Pipeline(spec)
    print("The same as: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in folders.items()) + " " +
          shlex.join(run_argv(spec)), flush=True)
    pipeline.run()
    test_folders = {}
    for label, trainer in MODELS.items():
        pred = join(out_dir, "test_predictions", trainer + suffix)
        print(f"test set: predicting with {label} ({trainer + suffix})", flush=True)
        test_folders[label] = evaluate_test_set(pipeline.target, spec.configuration, spec.folds, pipeline.plans_name,
                                                trainer + suffix, device, pred)
    return report(folders["nnUNet_results"], pipeline.target, pipeline.plans_name, spec.configuration,
                  {label: trainer + suffix for label, trainer in MODELS.items()}, test_folders,
                  join(out_dir, "report"))
