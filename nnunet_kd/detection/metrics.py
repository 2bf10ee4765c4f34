"""Detection metrics of a set of 2D images: COCO mAP (pycocotools) and the FROC score (LUNA16 / nnDetection).

`gt` maps every evaluated case to its boxes [(box, category index)], an empty list for images without boxes;
`predictions` maps cases to [(box, category index, score)]. Boxes are (x0, y0, x1, y1) as in
`nnunet_kd.detection.boxes`. The evaluated images are the cases of both.
"""
import contextlib
import io

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import save_json
from torchvision.ops import box_iou

FROC_FPS_PER_IMAGE = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # those of COCOeval's mAP@[.5:.95]


def _coco_box(box) -> list[float]:
    x0, y0, x1, y1 = map(float, box)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_map(gt: dict, predictions: dict, categories: list[str]) -> dict[str, float]:
    """{"mAP": COCO mAP@[.5:.95], "mAP_50": mAP@0.5} from pycocotools' COCOeval (bbox, all areas, up to 100
    detections per image and category, averaged over the categories that have boxes). 0.0 without predictions; NaN
    without any ground-truth box, where precision is undefined."""
    cases = sorted(set(gt) | set(predictions))
    image_ids = {case: k for k, case in enumerate(cases)}
    boxes = [(case, box, cat) for case in gt for box, cat in gt[case]]
    # ids from 1: COCOeval takes a match with annotation id 0 for no match
    annotations = [{"id": k, "image_id": image_ids[case], "category_id": cat, "bbox": _coco_box(box),
                    "area": float((box[2] - box[0]) * (box[3] - box[1])), "iscrowd": 0}
                   for k, (case, box, cat) in enumerate(boxes, start=1)]
    if not annotations:
        return {"mAP": float("nan"), "mAP_50": float("nan")}
    detections = [{"image_id": image_ids[case], "category_id": cat, "bbox": _coco_box(box), "score": float(score)}
                  for case in predictions for box, cat, score in predictions[case]]
    if not detections:  # pycocotools cannot load an empty result list
        return {"mAP": 0.0, "mAP_50": 0.0}
    from pycocotools.coco import COCO  # here, not at import: every nnUNetv2_train imports the detection trainers
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and its table
        truth = COCO()
        truth.dataset = {"images": [{"id": i} for i in image_ids.values()], "annotations": annotations,
                         "categories": [{"id": k, "name": n} for k, n in enumerate(categories)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"mAP": float(evaluation.stats[0]), "mAP_50": float(evaluation.stats[1])}


def _match(gt_boxes: np.ndarray, boxes: np.ndarray, iou_threshold: float, iou: np.ndarray | None = None) -> np.ndarray:
    """Whether each prediction (sorted by decreasing score) is a true positive: greedily, its unmatched ground-truth
    box of highest IoU, if that IoU reaches the threshold (iou: their IoU matrix, if computed already)."""
    hits = np.zeros(len(boxes), dtype=bool)
    if not len(gt_boxes) or not len(boxes):
        return hits
    if iou is None:
        iou = box_iou(torch.as_tensor(boxes, dtype=torch.float64),
                      torch.as_tensor(gt_boxes, dtype=torch.float64)).numpy()
    free = np.ones(len(gt_boxes), dtype=bool)
    for k in range(len(boxes)):
        candidates = np.where(free, iou[k], -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            hits[k], free[best] = True, False
    return hits


def image_matches(gt_boxes: list, predictions: list, num_categories: int) -> dict:
    """The matches of one image that FROC and COCO mAP are computed from: class-agnostic at IoU 0.1 ("froc":
    ground-truth count, scores, hits) and per category at each IoU threshold of COCO_IOU_THRESHOLDS ("ap": per
    category index, one such triple per threshold), predictions in order of decreasing score, at most 100 per category
    (COCO's maxDets)."""
    preds = sorted(predictions, key=lambda p: -p[2])

    def triples(gts, ps, thresholds):
        boxes = np.asarray([p[0] for p in ps], dtype=np.float64).reshape(-1, 4)
        truth = np.asarray([b for b, _ in gts], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray([p[2] for p in ps], dtype=np.float64)
        iou = box_iou(torch.as_tensor(boxes), torch.as_tensor(truth)).numpy() if len(boxes) and len(truth) else None
        return [(len(gts), scores, _match(truth, boxes, t, iou)) for t in thresholds]

    return {"froc": triples(gt_boxes, preds, [0.1])[0],
            "ap": [triples([g for g in gt_boxes if g[1] == c], [p for p in preds if p[1] == c][:100],
                           COCO_IOU_THRESHOLDS) for c in range(num_categories)]}


def _pool(triples) -> tuple:
    """Ground-truth count, and scores and hits sorted by decreasing score, of several images' triples."""
    num_gt = sum(t[0] for t in triples)
    scores = np.concatenate([t[1] for t in triples]) if triples else np.zeros(0)
    hits = np.concatenate([t[2] for t in triples]) if triples else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    return num_gt, scores[order], hits[order]


def froc_of_matches(matches: list, fps_per_image=FROC_FPS_PER_IMAGE) -> dict:
    """FROC (see `froc`) of the images whose `image_matches` are given; an image listed twice counts twice."""
    num_gt, scores, hits = _pool([m["froc"] for m in matches])
    if not num_gt:
        return {"froc": float("nan"), "sensitivity": {fp: float("nan") for fp in fps_per_image}}
    last_of_score = np.diff(scores, append=-np.inf) != 0  # operating points a score threshold can reach
    sensitivity = np.concatenate([[0.0], (np.cumsum(hits) / num_gt)[last_of_score]])
    fps = np.concatenate([[0.0], (np.cumsum(~hits) / len(matches))[last_of_score]])
    at = {fp: float(sensitivity[fps <= fp].max()) for fp in fps_per_image}
    return {"froc": float(np.mean(list(at.values()))), "sensitivity": at}


def _average_precision(num_gt: int, hits: np.ndarray) -> float:
    """101-point interpolated precision of hits sorted by decreasing score, as pycocotools computes it."""
    if not len(hits):
        return 0.0
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    recall = tp / num_gt
    precision = np.maximum.accumulate((tp / (tp + fp + np.spacing(1)))[::-1])[::-1]
    at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0).mean())


def map_of_matches(matches: list, thresholds: slice = slice(None)) -> float:
    """COCO mAP of the images whose `image_matches` are given, as pycocotools computes it: the average precision
    averaged over the IoU thresholds (all of COCO_IOU_THRESHOLDS: mAP@[.5:.95]; slice(0, 1): mAP@0.5) and the
    categories with boxes; NaN without any ground-truth box."""
    aps = []
    for c in range(len(matches[0]["ap"]) if matches else 0):
        for per_threshold in list(zip(*[m["ap"][c] for m in matches]))[thresholds]:
            num_gt, _, hits = _pool(list(per_threshold))
            if num_gt:
                aps.append(_average_precision(num_gt, hits))
    return float(np.mean(aps)) if aps else float("nan")


def map50_of_matches(matches: list) -> float:
    """COCO mAP@0.5 (`map_of_matches` at IoU 0.5)."""
    return map_of_matches(matches, slice(0, 1))


def froc(gt: dict, predictions: dict, iou_threshold: float = 0.1,
         fps_per_image=FROC_FPS_PER_IMAGE) -> dict:
    """{"froc": mean sensitivity over fps_per_image, "sensitivity": {fp rate: sensitivity}}, class-agnostic. A
    prediction is a true positive when it matches a ground-truth box of its image (greedy, in order of decreasing
    score, each box matched once, IoU >= iou_threshold), else a false positive. Lowering the score threshold traces
    sensitivity (true positives / ground-truth boxes) against false positives per image; the sensitivity at a rate is
    the highest reached with at most that many false positives per image (predictions of equal score count
    together). NaN without any ground-truth box."""
    matches = []
    for case in sorted(set(gt) | set(predictions)):
        preds = sorted(predictions.get(case, []), key=lambda p: -p[2])
        boxes = np.asarray([p[0] for p in preds], dtype=np.float64).reshape(-1, 4)
        gt_boxes = np.asarray([b for b, _ in gt.get(case, [])], dtype=np.float64).reshape(-1, 4)
        matches.append({"froc": (len(gt_boxes), np.asarray([p[2] for p in preds], dtype=np.float64),
                                 _match(gt_boxes, boxes, iou_threshold))})
    return froc_of_matches(matches, fps_per_image)


def detection_summary(gt: dict, predictions: dict, categories: list[str]) -> dict:
    """COCO mAP, mAP@0.5 and the FROC score at IoU 0.1 with its sensitivities, the counts of images, boxes and
    predictions, and every image's boxes [x0, y0, x1, y1, category] and predictions [..., score] (for paired
    statistics)."""
    cases = sorted(set(gt) | set(predictions))
    result = froc(gt, predictions)
    return {"task": "det", **coco_map(gt, predictions, categories), "froc": result["froc"], "sensitivity": result["sensitivity"],
            "num_images": len(cases), "num_boxes": sum(len(v) for v in gt.values()),
            "num_predictions": sum(len(v) for v in predictions.values()), "categories": list(categories),
            "per_case": {case: {"boxes": [[*map(float, b), int(c)] for b, c in gt.get(case, [])],
                                "predictions": [[*map(float, b), int(c), float(s)]
                                                for b, c, s in predictions.get(case, [])]} for case in cases}}


def write_summary(path: str, summary: dict) -> None:
    """Writes summary.json; undefined metrics are written as NaN, as nnU-Net's summary.json does."""
    save_json(summary, path, sort_keys=False)
