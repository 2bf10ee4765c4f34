"""Boxes of 2D detection datasets and the instance maps that carry them through nnU-Net.

Box convention, used everywhere in `nnunet_kd.detection`: a box is (x0, y0, x1, y1) in pixel edges of the 2D image
array as nnU-Net reads it, x along the last array axis (columns) and y along the one before (rows), x1 and y1
exclusive: an integer box covers arr[..., y0:y1, x0:x1]. nnU-Net's NaturalImage2DIO reads an H x W PNG as an array of
shape (C, 1, H, W), and a 2D training patch is (C, H, W), so y indexes the rows (axis 1 of the patch) and x the
columns (axis 2). COCO's bbox [x, y, w, h] (x the left edge's column, y the top edge's row) is the box
(x, y, x + w, y + h); torchvision uses the same (x0, y0, x1, y1) order.

Rasterising: instance i + 1 is painted for box i over the pixels whose centre lies inside the box (for a box too thin
to hold a pixel centre, the one pixel row or column holding its centre). Overlapping boxes are painted in order of
decreasing area (ties: later boxes on top), so a smaller box overlapping a larger one stays whole on top of it. A box
entirely covered by smaller ones gets no pixels; `rasterise` reports it.
"""
import numpy as np
import torch
from scipy import ndimage


def _span(lo: float, hi: float, size: int) -> slice:
    """Pixels c along one axis whose centre c + 0.5 lies in [lo, hi), else the one holding the interval's centre;
    clipped to the image."""
    start, stop = int(np.ceil(lo - 0.5)), int(np.ceil(hi - 0.5))
    if stop <= start:
        start = int(np.floor((lo + hi) / 2))
        stop = start + 1
    return slice(min(max(start, 0), size), min(max(stop, 0), size))


def rasterise(boxes, shape: tuple[int, int]) -> tuple[np.ndarray, list[int]]:
    """Instance map of the given (H, W) shape (0 background, i + 1 for box i; uint8 up to 255 boxes, else uint16)
    and the instance ids that got no pixels (hidden under smaller boxes or outside the image)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) > np.iinfo(np.uint16).max:
        raise ValueError(f"{len(boxes)} boxes do not fit a uint16 instance map")
    seg = np.zeros(shape, dtype=np.uint8 if len(boxes) <= np.iinfo(np.uint8).max else np.uint16)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in sorted(range(len(boxes)), key=lambda i: (-areas[i], i)):
        x0, y0, x1, y1 = boxes[i]
        seg[_span(y0, y1, shape[0]), _span(x0, x1, shape[1])] = i + 1
    present = np.bincount(seg.ravel(), minlength=len(boxes) + 1)
    return seg, [i for i in range(1, len(boxes) + 1) if present[i] == 0]


def boxes_from_instance_map(seg, min_pixels: int = 1):
    """Tight boxes (N, 4) of the instances in a 2D instance map, and their ids (N,) in increasing order. Values <= 0
    are background (nnU-Net pads with -1 before removing it); instances with fewer than min_pixels pixels, such as
    those cut away by augmentation, are left out. Takes and returns numpy arrays or torch tensors (float32 boxes and
    int64 ids on the map's device)."""
    is_tensor = isinstance(seg, torch.Tensor)
    arr = seg.detach().cpu().numpy() if is_tensor else np.asarray(seg)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2D instance map, got shape {tuple(arr.shape)}")
    arr = np.where(arr > 0, arr, 0).astype(np.int64)
    counts = np.bincount(arr.ravel())
    ids, boxes = [], []
    for i, found in enumerate(ndimage.find_objects(arr), start=1):
        if found is not None and counts[i] >= min_pixels:
            rows, cols = found
            ids.append(i)
            boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    ids = np.asarray(ids, dtype=np.int64)
    if is_tensor:
        return torch.from_numpy(boxes).to(seg.device), torch.from_numpy(ids).to(seg.device)
    return boxes, ids
