"""`nnunet_kd predict-cls`: class probabilities of raw images, averaged over the folds of a classification model; the
resizing and batched softmax that the trainers' validation shares."""
import csv
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from batchgenerators.utilities.file_and_folder_operations import isdir
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder
from torch import autocast, nn

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.classification.labels import class_names, read_label_rows
from nnunet_kd.classification.metrics import classification_summary, write_summary
from nnunet_kd.classification.network import build_cls_network
from nnunet_kd.settings import KD_BLOCK_KEY, ClassificationSettings
from nnunet_kd.core.tasks import summary_path
from nnunet_kd.core.errors import KDError, listing
from nnunet_kd.run.progress import cases_bar
from nnunet_kd.core.teachers import read_model_folder


def resize_to_patch(data, patch_size) -> np.ndarray:
    """A preprocessed case (c, [1,] *spatial) resized to (c, [1,] *patch_size): bilinear with antialiasing in 2D,
    trilinear in 3D."""
    x = torch.from_numpy(np.asarray(data[:], dtype=np.float32))
    flat = x.shape[1:] != tuple(patch_size) and len(patch_size) == 2
    if flat:
        x = x[:, 0]
    mode = "bilinear" if len(patch_size) == 2 else "trilinear"
    x = F.interpolate(x[None], size=tuple(patch_size), mode=mode, align_corners=False,
                      antialias=mode == "bilinear")[0]
    return (x[:, None] if flat else x).numpy()


@torch.no_grad()
def predict_probabilities(network: nn.Module, cases, is_2d: bool, device, batch_size: int = 8) -> np.ndarray:
    """Softmax probabilities (fp32) of resized cases (c, [1,] *patch) in eval mode."""
    network.eval()
    out, batch = [], []

    def flush():
        x = torch.from_numpy(np.stack(batch)).to(device)
        with autocast(device.type, enabled=True) if device.type == "cuda" else dummy_context():
            logits = network(x)
        out.append(torch.softmax(logits.float(), 1).cpu().numpy())
        batch.clear()

    for data in cases:
        batch.append(data[:, 0] if is_2d and data.ndim == 4 else data)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def write_predictions_csv(path: str, cases, probs: np.ndarray, classes: list[str], labels=None) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", *[f"p_{c}" for c in classes], "predicted"] + (["true"] if labels is not None else []))
        for i, case in enumerate(cases):
            row = [case, *[f"{p:.6f}" for p in probs[i]], classes[int(probs[i].argmax())]]
            w.writerow(row + ([classes[labels[i]]] if labels is not None else []))


def predict_cls(images: str, output_csv: str, model_folder: str, folds: Sequence[str],
                checkpoint: str = "checkpoint_final.pth", configuration: str = None, device: str = "cpu",
                truth: str = None) -> np.ndarray:
    """Writes case, p_<class>..., predicted to output_csv; returns the probabilities (cases x classes). With truth (a
    CSV of case,class such as the dataset's labelsTs.csv) also the classification summary with every case."""
    plans, dataset_json, pm, cm, in_ch, paths = read_model_folder(model_folder, folds, checkpoint, configuration,
                                                              task="cls")
    classes = class_names(dataset_json)
    settings = ClassificationSettings(**plans.get(KD_BLOCK_KEY, {}).get("classification", {}))
    dev = torch.device(device)
    networks = []
    for path in paths:
        net = build_cls_network(cm.configuration["architecture"], in_ch, len(classes),
                                {"name": settings.backbone, "weights": settings.backbone_weights})
        net.load_state_dict(load_checkpoint(path)["network_weights"])
        networks.append(net.to(dev))
    if not isdir(images):
        raise KDError(f"-i {images} is not a folder of images named CASE_0000{dataset_json['file_ending']}.")
    files = create_lists_from_splitted_dataset_folder(images, dataset_json["file_ending"])
    if not files:
        raise KDError(f"-i {images} holds no images named CASE_0000{dataset_json['file_ending']}.")
    cases = [os.path.basename(f[0])[:-len(dataset_json["file_ending"]) - 5] for f in files]
    wrong = [c for c, f in zip(cases, files) if len(f) != in_ch]
    if wrong:
        raise KDError(f"-i {images}: cases {wrong[:5]} do not have one file per channel of "
                      f"{list(dataset_json['channel_names'].values())} (CASE_0000, CASE_0001, ...).")
    preprocessor = cm.preprocessor_class(verbose=False)
    data = [resize_to_patch(preprocessor.run_case(f, None, pm, cm, dataset_json)[0], cm.patch_size)
            for f in cases_bar(files, "predict-cls: preprocessing")]
    is_2d = len(cm.patch_size) == 2
    probs = np.mean([predict_probabilities(net, data, is_2d, dev) for net in networks], 0)
    os.makedirs(os.path.dirname(os.path.abspath(output_csv)), exist_ok=True)
    write_predictions_csv(output_csv, cases, probs, classes)
    if truth:
        true = {r.case: r.cls for r in read_label_rows(truth)}
        missing = [c for c in cases if c not in true]
        unknown = sorted({true[c] for c in cases if c in true} - set(classes))
        if missing or unknown:
            raise KDError(f"--truth {truth}: " + (f"no class for the cases\n{listing(missing)}\n" if missing else "")
                          + (f"classes {unknown} the model does not know ({classes})" if unknown else "")
                          + ". Give one row case,class per image of -i.")
        write_summary(summary_path(output_csv), classification_summary(
            [classes.index(true[c]) for c in cases], probs, classes, cases))
    return probs


def predict_and_score(model_folder: str, folds: Sequence[str], device: str, images: str, labels: str, out: str) -> str:
    """Predicts images into out.csv and scores them against labels; returns the summary file (`report --test-dir`)."""
    predict_cls(images, out + ".csv", model_folder, folds, device=device, truth=labels)
    return summary_path(out + ".csv")
