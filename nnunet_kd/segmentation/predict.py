"""Test-set prediction of a segmentation model: nnU-Net's own predictor, scored with nnU-Net's
compute_metrics_on_folder (the folder `report --test-dir LABEL=FOLDER` reads)."""
import contextlib
import io
import os
from collections.abc import Sequence

from batchgenerators.utilities.file_and_folder_operations import isfile, join

from nnunet_kd.core.errors import KDError


def predict_and_score(model_folder: str, folds: Sequence[str], device: str, images: str, labels: str, out_dir: str) -> str:
    """nnU-Net's own predictor (what nnUNetv2_predict runs, here in this process and without worker processes),
    scored with compute_metrics_on_folder."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
    predictor, dataset_json = _predictor(model_folder, folds, device)
    os.makedirs(out_dir, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # a line per case
        predictor.predict_from_files_sequential(images, out_dir)
    ending = dataset_json["file_ending"]
    predicted = sorted(f for f in os.listdir(out_dir) if f.endswith(ending))
    missing = [f for f in predicted if not isfile(join(labels, f))]
    if missing:
        raise KDError(f"--test-labels {labels} has no label file for {len(missing)} test images, e.g. {missing[:3]}. "
                      f"Give a folder of label files named like the images without the channel suffix.")
    reader = determine_reader_writer_from_dataset_json(dataset_json, join(labels, predicted[0]))
    names = [v for k, v in dataset_json["labels"].items() if k not in ("background", "ignore")]
    compute_metrics_on_folder(labels, out_dir, join(out_dir, "summary.json"), reader(), ending, names,
                              num_processes=2)
    return out_dir


def _predictor(model_folder: str, folds, device: str):
    """nnU-Net's predictor set up as its ``initialize_from_trained_model_folder`` does, from the checked plans and the
    checkpoints loaded safely (nnU-Net itself unpickles them with ``weights_only=False``), and the dataset.json."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunet_kd.core.checkpoints import load_checkpoint
    from nnunet_kd.core.teachers import network_from_checkpoint, read_model_folder
    _, dataset_json, pm, cm, in_channels, paths = read_model_folder(model_folder, folds, "checkpoint_final.pth")
    checkpoints = [load_checkpoint(p) for p in paths]
    network = network_from_checkpoint(checkpoints[0], pm, cm, in_channels,
                                      pm.get_label_manager(dataset_json).num_segmentation_heads)
    predictor = nnUNetPredictor(perform_everything_on_device=device == "cuda", device=torch.device(device),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(network, pm, cm, [c["network_weights"] for c in checkpoints], dataset_json,
                                    checkpoints[0]["trainer_name"], checkpoints[0].get("inference_allowed_mirroring_axes"))
    return predictor, dataset_json
