import json
import math

import numpy as np
import pytest

from nnunet_kd.detection.metrics import (FROC_FPS_PER_IMAGE, coco_map, detection_summary, froc, froc_of_matches,
                                         image_matches, map50_of_matches, write_summary)

CATEGORIES = ["nodule", "mass"]
GT = {"a": [((0, 0, 10, 10), 0), ((20, 20, 30, 30), 1)], "b": [((5, 5, 15, 25), 1)], "c": []}


def test_perfect_predictions_score_one():
    predictions = {case: [(box, cat, 0.9) for box, cat in boxes] for case, boxes in GT.items()}
    assert coco_map(GT, predictions, CATEGORIES) == {"mAP": pytest.approx(1.0), "mAP_50": pytest.approx(1.0)}
    result = froc(GT, predictions)
    assert result["froc"] == 1.0 and result["sensitivity"] == {fp: 1.0 for fp in FROC_FPS_PER_IMAGE}


def test_a_false_positive_ranked_first_halves_the_ap():
    """One box, a false positive at score 0.9 and an exact hit at 0.8: precision 0 at recall 0, then 1/2 at recall 1.
    COCO interpolates precision as the best precision at any higher recall: 1/2 at every recall point and IoU
    threshold, so AP = 0.5."""
    gt = {"a": [((0, 0, 10, 10), 0)]}
    predictions = {"a": [((20, 20, 30, 30), 0, 0.9), ((0, 0, 10, 10), 0, 0.8)]}
    assert coco_map(gt, predictions, CATEGORIES) == {"mAP": pytest.approx(0.5), "mAP_50": pytest.approx(0.5)}
    predictions["a"][0] = ((20, 20, 30, 30), 0, 0.7)  # ranked below the hit: precision 1 up to recall 1
    assert coco_map(gt, predictions, CATEGORIES)["mAP"] == pytest.approx(1.0)


def test_a_loose_hit_counts_only_at_low_iou_thresholds():
    """IoU 72/100 = 0.72: a hit at the IoU thresholds 0.5, 0.55, 0.6, 0.65, 0.7 (AP 1), a miss at 0.75 ... 0.95 (AP 0):
    mAP = 5/10."""
    gt = {"a": [((0, 0, 10, 10), 0)]}
    result = coco_map(gt, {"a": [((0, 0, 10, 7.2), 0, 0.5)]}, CATEGORIES)
    assert result == {"mAP": pytest.approx(0.5), "mAP_50": pytest.approx(1.0)}


def test_map_averages_the_categories_with_boxes():
    """nodule: AP 1; mass: a false positive (c) ranked above the two hits, AP 2/3; the mean of both. A category
    without boxes (the third) does not count, even with predictions."""
    predictions = {"a": [((0, 0, 10, 10), 0, 0.9), ((20, 20, 30, 30), 1, 0.6), ((1, 1, 3, 3), 2, 0.9)],
                   "b": [((5, 5, 15, 25), 1, 0.5)], "c": [((0, 0, 5, 5), 1, 0.95)]}
    # mass: FP 0.95, TP 0.6, TP 0.5 -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> interpolated 2/3 everywhere
    result = coco_map(GT, predictions, CATEGORIES + ["cyst"])
    assert result["mAP"] == pytest.approx((1 + 2 / 3) / 2) and result["mAP_50"] == pytest.approx((1 + 2 / 3) / 2)


def test_no_predictions_score_zero_and_no_boxes_give_nan():
    assert coco_map(GT, {}, CATEGORIES) == {"mAP": 0.0, "mAP_50": 0.0}
    assert froc(GT, {"a": []}) == {"froc": 0.0, "sensitivity": {fp: 0.0 for fp in FROC_FPS_PER_IMAGE}}
    empty = {"a": [], "b": []}
    assert all(math.isnan(v) for v in coco_map(empty, {"a": [((0, 0, 1, 1), 0, 0.5)]}, CATEGORIES).values())
    result = froc(empty, {"a": [((0, 0, 1, 1), 0, 0.5)]})
    assert math.isnan(result["froc"]) and all(math.isnan(v) for v in result["sensitivity"].values())


def test_froc_by_hand():
    """4 images, 4 boxes; class-agnostic (categories of predictions are ignored). In score order:
    0.9 hit (a), 0.8 miss (a, far away), 0.7 hit (b), 0.6 miss (b: the same box again, already taken),
    0.5 miss (c, no boxes), 0.4 miss (d, IoU 0.05 < 0.1), 0.3 hit (a, IoU 20/100 = 0.2).
    (false positives per image, sensitivity) after each: (0, 1/4), (1/4, 1/4), (1/4, 1/2), (1/2, 1/2), (3/4, 1/2),
    (1, 1/2), (1, 3/4). Best sensitivity with at most 1/8, 1/4, 1/2, 1, 2, 4, 8 false positives per image:
    1/4, 1/2, 1/2, 3/4, 3/4, 3/4, 3/4."""
    gt = {"a": [((0, 0, 10, 10), 0), ((20, 20, 30, 30), 0)], "b": [((40, 40, 50, 50), 1)], "c": [],
          "d": [((0, 0, 10, 10), 1)]}
    predictions = {"a": [((0, 0, 10, 10), 1, 0.9), ((60, 60, 70, 70), 0, 0.8), ((20, 20, 30, 22), 0, 0.3)],
                   "b": [((40, 40, 50, 50), 0, 0.7), ((40, 40, 50, 50), 0, 0.6)],
                   "c": [((0, 0, 10, 10), 0, 0.5)], "d": [((0, 0, 10, 0.5), 1, 0.4)]}
    result = froc(gt, predictions)
    assert result["sensitivity"] == {1 / 8: 0.25, 1 / 4: 0.5, 1 / 2: 0.5, 1: 0.75, 2: 0.75, 4: 0.75, 8: 0.75}
    assert result["froc"] == pytest.approx((0.25 + 0.5 + 0.5 + 4 * 0.75) / 7)
    assert froc(gt, predictions, iou_threshold=0.5)["sensitivity"][8] == 0.5  # the IoU-0.2 hit is now a miss


def test_froc_counts_predictions_of_equal_score_together():
    """A hit and a miss at the same score: no threshold keeps the hit without the miss."""
    gt = {"a": [((0, 0, 10, 10), 0)], "b": [((0, 0, 10, 10), 0)]}
    predictions = {"a": [((0, 0, 10, 10), 0, 0.5)], "b": [((50, 50, 60, 60), 0, 0.5)]}
    sensitivity = froc(gt, predictions)["sensitivity"]
    assert sensitivity[1 / 8] == sensitivity[1 / 4] == 0.0 and sensitivity[1 / 2] == 0.5


def test_the_greedy_match_gives_a_box_to_the_higher_score():
    """Both predictions overlap the first box best (IoU 0.82 and 0.67); the higher-scored one takes it, the other
    takes the second box (IoU 0.43)."""
    gt = {"a": [((0, 0, 10, 10), 0), ((6, 0, 16, 10), 0)]}
    predictions = {"a": [((1, 0, 11, 10), 0, 0.9), ((2, 0, 12, 10), 0, 0.8)]}
    assert froc(gt, predictions, iou_threshold=0.4)["froc"] == 1.0


def test_summary_is_written_with_nan(tmp_path):
    summary = detection_summary({"a": [((0, 0, 10, 10), 0)], "b": []}, {"b": [((0, 0, 4, 4), 0, 0.3)]}, CATEGORIES)
    assert summary["mAP"] == 0.0 and summary["froc"] == 0.0
    assert (summary["num_images"], summary["num_boxes"], summary["num_predictions"]) == (2, 1, 1)
    empty = detection_summary({"a": []}, {}, CATEGORIES)
    write_summary(str(tmp_path / "summary.json"), empty)
    with open(tmp_path / "summary.json") as f:
        written = json.load(f)
    assert math.isnan(written["mAP"]) and math.isnan(written["mAP_50"]) and math.isnan(written["froc"])
    assert list(written["sensitivity"]) == ["0.125", "0.25", "0.5", "1", "2", "4", "8"]


def _random_images(rng, n):
    gt, pred = {}, {}
    for i in range(n):
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 50, 2)
            w, h = rng.uniform(4, 14, 2)
            boxes.append(([x, y, x + w, y + h], int(rng.integers(0, 2))))
        found = [(list(np.array(b) + rng.normal(0, 1, 4)), c if rng.random() < 0.9 else 1 - c, float(rng.random()))
                 for b, c in boxes if rng.random() < 0.7]
        found += [([x, y, x + 8, y + 8], int(rng.integers(0, 2)), float(np.round(rng.random(), 1)))
                  for x, y in rng.uniform(0, 50, (rng.integers(0, 3), 2))]
        gt[f"i{i}"], pred[f"i{i}"] = boxes, found
    return gt, pred


def test_map50_and_froc_of_matches_equal_the_whole_set_metrics():
    rng = np.random.default_rng(0)
    for _ in range(30):
        gt, pred = _random_images(rng, int(rng.integers(3, 12)))
        matches = [image_matches(gt[c], pred[c], len(CATEGORIES)) for c in sorted(gt)]
        expected = coco_map(gt, pred, CATEGORIES)["mAP_50"]
        assert map50_of_matches(matches) == pytest.approx(expected, nan_ok=True)  # pycocotools' figure
        assert froc_of_matches(matches)["froc"] == pytest.approx(froc(gt, pred)["froc"], nan_ok=True)


def test_an_image_listed_twice_counts_twice():
    """A bootstrap resample may draw an image twice: its boxes and false positives count twice."""
    gt = {"a": [((0, 0, 10, 10), 0)], "b": []}
    pred = {"a": [((0, 0, 10, 10), 0, 0.5)], "b": [((0, 0, 5, 5), 0, 0.9)]}
    a, b = (image_matches(gt[c], pred[c], 2) for c in "ab")
    # [b, b, a]: the hit comes after 2 false positives on 3 images (2/3 per image): found from 1 fp per image on
    assert froc_of_matches([b, b, a])["sensitivity"][0.5] == 0.0
    assert froc_of_matches([b, b, a])["sensitivity"][1] == 1.0
    assert froc_of_matches([b, a])["sensitivity"][0.25] == 0.0  # 1/2 false positive per image
    assert froc_of_matches([b, a, a, a])["sensitivity"][0.25] == 1.0  # 1/4


def test_summary_keeps_every_image_for_paired_statistics():
    summary = detection_summary({"a": [((0, 0, 10, 10), 1)], "b": []}, {"b": [((0, 0, 4, 4), 0, 0.3)]}, CATEGORIES)
    assert summary["categories"] == CATEGORIES
    assert summary["per_case"] == {"a": {"boxes": [[0.0, 0.0, 10.0, 10.0, 1]], "predictions": []},
                                   "b": {"boxes": [], "predictions": [[0.0, 0.0, 4.0, 4.0, 0, 0.3]]}}


def test_map_of_per_image_matches_is_pycocotools_map():
    from nnunet_kd.detection.metrics import coco_map, image_matches, map50_of_matches, map_of_matches
    rng = np.random.RandomState(0)
    gt, predictions = {}, {}
    for case in range(12):
        boxes = [(list(xy) + list(xy + rng.uniform(4, 20, 2)), int(rng.randint(2))) for xy in rng.uniform(0, 60, (3, 2))]
        gt[f"c{case}"] = boxes[:rng.randint(0, 4)]
        predictions[f"c{case}"] = [(list(np.asarray(b) + rng.normal(0, 2, 4)), c if rng.rand() < 0.8 else 1 - c,
                                    float(rng.rand())) for b, c in boxes] + [([5, 5, 15, 15], 0, 0.05)]
    matches = [image_matches(gt[c], predictions[c], 2) for c in sorted(gt)]
    expected = coco_map(gt, predictions, ["a", "b"])
    assert 0.05 < expected["mAP"] < expected["mAP_50"] < 0.95
    assert map_of_matches(matches) == pytest.approx(expected["mAP"], abs=1e-6)
    assert map50_of_matches(matches) == pytest.approx(expected["mAP_50"], abs=1e-6)
