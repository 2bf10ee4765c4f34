"""`nnunet_kd predict-det`: boxes of raw images from a detection model folder, as COCO result JSON."""
import json
import os
from collections.abc import Sequence

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import isdir
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.core.tasks import summary_path
from nnunet_kd.detection.labels import categories, read_boxes
from nnunet_kd.detection.inference import detect_image
from nnunet_kd.detection.network import build_det_network
from nnunet_kd.core.errors import KDError
from nnunet_kd.run.progress import cases_bar
from nnunet_kd.core.teachers import read_model_folder


def to_original_pixels(boxes: np.ndarray, properties: dict, preprocessed_shape, transpose_forward) -> np.ndarray:
    """Boxes (x0, y0, x1, y1) on the preprocessed image -> pixels of the original image: undo nnU-Net's resampling
    (scale by the shape ratio) and its crop to the nonzero region (add the crop's offset), and its axis transpose."""
    cropped = properties["shape_after_cropping_and_before_resampling"][-2:]
    sy, sx = cropped[0] / preprocessed_shape[0], cropped[1] / preprocessed_shape[1]
    (y0, _), (x0, _) = properties["bbox_used_for_cropping"][-2:]
    out = boxes * np.array([sx, sy, sx, sy]) + np.array([x0, y0, x0, y0])
    if list(transpose_forward)[-2:] == [2, 1]:  # the preprocessed rows were the original columns
        out = out[:, [1, 0, 3, 2]]
    return out


def predict_det(images: str, output_json: str, model_folder: str, folds: Sequence[str],
                checkpoint: str = "checkpoint_final.pth", configuration: str = None, device: str = "cpu",
                nms_iou: float = 0.5, tile_step_size: float = 0.5, truth: str = None) -> list:
    """Writes COCO result entries {image_id (case), category_id (category index + 1), category, bbox [x, y, w, h],
    score} for every image, detected by sliding windows of the patch size (`detect_image`); folds are ensembled by
    pooling their boxes (and those of overlapping tiles) with class-wise NMS at ``nms_iou``. With truth (the boxes of
    the images, as the dataset's boxesTs.json) also the detection summary with every image."""
    _, dataset_json, pm, cm, in_ch, paths = read_model_folder(model_folder, folds, checkpoint, configuration,
                                                               task="det")
    names = categories(dataset_json)
    dev = torch.device(device)
    networks = []
    for path in paths:
        net = build_det_network(cm.configuration["architecture"], in_ch, len(names), cm.patch_size)
        net.load_state_dict(load_checkpoint(path)["network_weights"])
        networks.append(net.to(dev).eval())
    ending = dataset_json["file_ending"]
    files = create_lists_from_splitted_dataset_folder(images, ending) if isdir(images) else []
    if not files:
        raise KDError(f"-i {images} holds no images named CASE_0000{ending}.")
    preprocessor = cm.preprocessor_class(verbose=False)
    results = []
    for case_files in cases_bar(files, "predict-det"):
        case = os.path.basename(case_files[0])[:-len(ending) - 5]
        data, _, properties = preprocessor.run_case(case_files, None, pm, cm, dataset_json)
        image = torch.from_numpy(np.asarray(data, dtype=np.float32)[:, 0]).to(dev)
        det = detect_image(networks, image, cm.patch_size, tile_step_size, nms_iou)
        boxes = to_original_pixels(det["boxes"].cpu().numpy(), properties, data.shape[-2:], pm.transpose_forward)
        for b, s, c in zip(boxes, det["scores"].cpu().tolist(), det["labels"].cpu().tolist()):
            results.append({"image_id": case, "category_id": int(c), "category": names[int(c) - 1],
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                            "score": float(s)})
    os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
    with open(output_json, "w") as f:
        json.dump(results, f, indent=1)
    if truth:
        from nnunet_kd.detection.metrics import detection_summary, write_summary
        cases = [os.path.basename(f[0])[:-len(ending) - 5] for f in files]
        boxes = read_boxes(os.path.dirname(os.path.abspath(truth)), os.path.basename(truth))
        unknown = sorted({b["category"] for case in cases for b in boxes.get(case, [])} - set(names))
        if unknown:
            raise KDError(f"--truth {truth} has categories {unknown} the model does not know ({names}).")
        gt = {case: [(b["bbox"], names.index(b["category"])) for b in boxes.get(case, [])] for case in cases}
        pred = {case: [] for case in cases}
        for r in results:
            x, y, w, h = r["bbox"]
            pred[r["image_id"]].append(([x, y, x + w, y + h], r["category_id"] - 1, r["score"]))
        write_summary(summary_path(output_json), detection_summary(gt, pred, names))
    return results


def predict_and_score(model_folder: str, folds: Sequence[str], device: str, images: str, labels: str, out: str) -> str:
    """Predicts images into out.json and scores them against labels; returns the summary file (`report --test-dir`)."""
    predict_det(images, out + ".json", model_folder, folds, device=device, truth=labels)
    return summary_path(out + ".json")
