import numpy as np
import pytest
import torch
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from PIL import Image
from scipy import ndimage

from nnunet_kd.detection.boxes import boxes_from_instance_map, rasterise


def test_rasterise_then_recompute_is_exact_for_integer_boxes():
    boxes = [(0, 0, 5, 3), (7, 2, 12, 10), (2, 12, 4, 20), (10, 15, 16, 20)]  # the last two touch the border
    seg, hidden = rasterise(boxes, (20, 16))
    assert seg.dtype == np.uint8 and seg.shape == (20, 16) and hidden == []
    assert (seg[0:3, 0:5] == 1).all() and (seg[2:10, 7:12] == 2).all()  # x = columns, y = rows
    assert (seg > 0).sum() == sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes)
    recomputed, ids = boxes_from_instance_map(seg)
    assert recomputed.dtype == np.float32 and ids.tolist() == [1, 2, 3, 4]
    assert recomputed.tolist() == [list(b) for b in boxes]


def test_box_convention_matches_nnunet_reading_a_png(tmp_path):
    """A box drawn with COCO's x = column, y = row lands where NaturalImage2DIO puts those pixels."""
    seg, _ = rasterise([(3, 1, 7, 2)], (5, 9))  # COCO [x=3, y=1, w=4, h=1]
    Image.fromarray(seg).save(tmp_path / "case.png")
    read, _ = NaturalImage2DIO().read_seg(str(tmp_path / "case.png"))
    assert read.shape == (1, 1, 5, 9)
    assert boxes_from_instance_map(read[0, 0])[0].tolist() == [[3, 1, 7, 2]]
    assert read[0, 0, 1, 3:7].tolist() == [1] * 4 and read.sum() == 4


def test_smaller_boxes_are_painted_on_top():
    big, small = (0, 0, 10, 10), (2, 3, 5, 6)
    seg, hidden = rasterise([small, big], (12, 12))  # order of the list does not matter, area does
    assert hidden == [] and (seg[3:6, 2:5] == 1).all() and (seg == 1).sum() == 9 and (seg == 2).sum() == 91
    recomputed, ids = boxes_from_instance_map(seg)
    assert recomputed.tolist() == [list(small), list(big)]  # the big box still spans its pixels


def test_boxes_covered_entirely_by_smaller_ones_are_reported():
    boxes = [(0, 0, 4, 4), (0, 0, 4, 2), (0, 2, 4, 4), (6, 6, 8, 8), (6, 6, 8, 8)]
    seg, hidden = rasterise(boxes, (10, 10))
    assert hidden == [1, 4]  # under its two halves; the first of two equal boxes (later ones are painted on top)
    assert boxes_from_instance_map(seg)[1].tolist() == [2, 3, 5]


def test_fractional_and_thin_boxes_take_the_pixels_whose_centre_they_hold():
    seg, hidden = rasterise([(1.4, 0.6, 3.6, 2.5), (6.2, 1.0, 6.4, 3.0)], (4, 8))
    assert hidden == []
    assert boxes_from_instance_map(seg)[0].tolist() == [[1, 1, 4, 2], [6, 1, 7, 3]]  # centres x + 0.5, y + 0.5


def test_many_boxes_give_a_uint16_map():
    boxes = [(x, y, x + 1, y + 1) for y in range(20) for x in range(15)]
    seg, hidden = rasterise(boxes, (20, 15))
    assert seg.dtype == np.uint16 and hidden == [] and seg.max() == 300
    assert boxes_from_instance_map(seg)[0].tolist() == [list(b) for b in boxes]


def test_vanished_and_small_instances_are_dropped_and_padding_is_background():
    seg, _ = rasterise([(0, 0, 3, 3), (5, 5, 9, 9), (10, 0, 12, 1)], (12, 12))
    cut = seg.astype(np.int16)
    cut[:, :2] = -1  # nnU-Net's padding value before RemoveLabelTansform
    cut[:, 9:] = 0  # instance 3 is cropped away
    boxes, ids = boxes_from_instance_map(cut)
    assert ids.tolist() == [1, 2] and boxes.tolist() == [[2, 0, 3, 3], [5, 5, 9, 9]]
    boxes, ids = boxes_from_instance_map(cut, min_pixels=4)
    assert ids.tolist() == [2]
    empty_boxes, empty_ids = boxes_from_instance_map(np.zeros((4, 4), np.uint8))
    assert empty_boxes.shape == (0, 4) and empty_ids.shape == (0,)


def test_torch_maps_give_tensors():
    seg, _ = rasterise([(1, 2, 4, 6)], (8, 8))
    boxes, ids = boxes_from_instance_map(torch.from_numpy(seg.astype(np.int16)))
    assert isinstance(boxes, torch.Tensor) and boxes.dtype == torch.float32 and ids.dtype == torch.int64
    assert boxes.tolist() == [[1, 2, 4, 6]] and ids.tolist() == [1]
    with pytest.raises(ValueError, match="2D"):
        boxes_from_instance_map(torch.zeros(1, 8, 8))


def _bright_boxes(image: np.ndarray, min_pixels: int = 10) -> list:
    """Boxes of the bright regions of an image, found on the image alone."""
    lo, hi = np.percentile(image, (1, 99))
    regions, n = ndimage.label(ndimage.gaussian_filter(image, 1) > (lo + hi) / 2)
    sizes = np.bincount(regions.ravel(), minlength=n + 1)
    return [(c.start, r.start, c.stop, r.stop) for i, (r, c) in enumerate(ndimage.find_objects(regions), start=1)
            if sizes[i] >= min_pixels]


def _distance(box, others) -> float:
    """Largest edge offset from box to the nearest of others."""
    return min((np.abs(np.subtract(box, o)).max() for o in others), default=np.inf)


def test_boxes_follow_nnunet_training_augmentation():
    """Image and instance map go through nnU-Net's own training transforms (crop, rotation, scaling, mirroring,
    intensity changes); the boxes recomputed from the instance map match the bright boxes in the transformed image."""
    boxes = [(4, 6, 20, 16), (30, 8, 38, 30), (10, 30, 26, 50), (44, 40, 56, 52), (28, 50, 40, 58), (58, 1, 63, 5)]
    seg, _ = rasterise(boxes, (64, 64))
    image = (seg > 0).astype(np.float32)  # each box bright on a dark background
    transforms = nnUNetTrainer.get_training_transforms(
        patch_size=(48, 48), rotation_for_DA=(-np.pi, np.pi), deep_supervision_scales=None, mirror_axes=(0, 1),
        do_dummy_2d_data_aug=False, use_mask_for_norm=[False], foreground_labels=list(range(1, len(boxes) + 1)))
    sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes} | {(y1 - y0, x1 - x0) for x0, y0, x1, y1 in boxes}
    reshaped = 0
    for seed in range(30):
        torch.manual_seed(seed)
        np.random.seed(seed)
        out = transforms(image=torch.from_numpy(image[None].copy()),
                         segmentation=torch.from_numpy(seg[None].astype(np.int16)))
        transformed = out["image"][0].numpy()
        recomputed, ids = boxes_from_instance_map(out["segmentation"][0])
        assert transformed.shape == (48, 48) and 6 not in ids.tolist()  # the corner box is cropped away
        recomputed = recomputed.int().tolist()
        counts = np.bincount(out["segmentation"][0].numpy().clip(0).ravel(), minlength=len(boxes) + 1)
        bright = _bright_boxes(transformed)
        background = np.ones(transformed.shape, bool)
        for x0, y0, x1, y1 in recomputed:
            background[y0:y1, x0:x1] = False
        lo, hi = np.percentile(transformed, (1, 99))
        for (x0, y0, x1, y1), i in zip(recomputed, ids.tolist()):
            inside = transformed[y0:y1, x0:x1].mean()
            assert inside - transformed[background].mean() > 0.3 * (hi - lo), (seed, i)
            if counts[i] >= 10:  # slivers at the patch border may not show as a bright region
                assert _distance((x0, y0, x1, y1), bright) <= 2, (seed, i, (x0, y0, x1, y1), bright)
        for box in bright:
            assert _distance(box, recomputed) <= 2, (seed, box, recomputed)
        reshaped += any((x1 - x0, y1 - y0) not in sizes for x0, y0, x1, y1 in recomputed
                        if 0 < x0 and 0 < y0 and x1 < 48 and y1 < 48)
    assert reshaped  # some draws rotated or scaled the boxes
