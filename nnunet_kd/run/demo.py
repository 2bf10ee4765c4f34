"""`nnunet_kd demo`: a small multi-domain scenario, the whole pipeline on CPU, test-set evaluation, paired results table
and verdict. `run_scenario` also serves the segmentation benchmark."""
import os
import shlex

from batchgenerators.utilities.file_and_folder_operations import join

from nnunet_kd.core import tasks
from nnunet_kd.planning.request import PlanRequest
from nnunet_kd.run.pipeline import Pipeline, RunSpec, run_argv
from nnunet_kd.report.tables import report


def set_nnunet_folders(out_dir: str) -> dict[str, str]:
    folders = {k: join(out_dir, k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for k, v in folders.items():
        os.makedirs(v, exist_ok=True)
        os.environ[k] = v
    os.environ.setdefault("nnUNet_def_n_proc", "2")
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    return folders


def demo(out_dir: str, seed: int = 0, suffix: str = "_demo", device: str = "cpu", verbose: bool = False) -> dict:
    """The built-in demo, that of the default task (segmentation: an organ and faint small lesions in the target, clear
    in the sources)."""
    specs, channel_map = tasks.get(tasks.DEFAULT_TASK).demo()
    return run_scenario(out_dir, specs, seed, suffix, device, verbose=verbose, channel_map=channel_map)


def run_scenario(out_dir: str, specs, seed: int = 0, suffix: str = "_demo", device: str = "cpu",
                 preset: str = "tiny", verbose: bool = False, with_baselines: bool = True,
                 channel_map: dict | None = None) -> dict:
    """Writes the default task's synthetic datasets of specs (target 1, sources 2 and 3) into out_dir, runs the
    pipeline on them (the target's unlabelled images, if it has any, as --extra-target-images; the multi-head baseline
    too unless with_baselines is false), predicts the target's test set with every model and reports
    (out_dir/report); returns the report."""
    out_dir = os.path.abspath(out_dir)
    folders = set_nnunet_folders(out_dir)
    os.environ.setdefault("nnUNet_KD_SEED", str(seed))  # training seeded too: a rerun gives the same models
    tasks.get(tasks.DEFAULT_TASK).write_datasets(folders["nnUNet_raw"], specs, seed)
    extra = join(folders["nnUNet_raw"], f"Dataset{specs[0].dataset_id:03d}_{specs[0].name}", "imagesUnlabelled") \
        if specs[0].num_unlabelled else None
    request = PlanRequest(1, (2, 3), ("2d",), preset=preset, channel_map=channel_map, extra_target_images=extra)
    spec = RunSpec(request, "2d", folds=["0"], suffix=suffix, device=device, with_baselines=with_baselines)
    pipeline = Pipeline(spec, verbose=verbose)
    print("The same as: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in folders.items()) + " " +
          shlex.join(run_argv(spec)), flush=True)
    pipeline.run()
    raw = join(folders["nnUNet_raw"], pipeline.target)
    test_folders = pipeline.test_set(join(raw, "imagesTs"), join(raw, "labelsTs"), join(out_dir, "test_predictions"))
    return report(folders["nnUNet_results"], pipeline.target, pipeline.plans_name, spec.configuration,
                  pipeline.models(), test_folders, join(out_dir, "report"))
