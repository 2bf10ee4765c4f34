"""Detection on whole images of any size: nnU-Net's sliding-window tiling at the patch size (so the detector's
transform never rescales), boxes shifted to image coordinates and pooled over tiles and models.

Pooling: a box that touches a tile's inner edge (one that is not the image's border) may be a cut-off part of an
object that a neighbouring tile holds whole; with nnU-Net's default step of half a patch, every object up to half a
patch wide lies whole in some tile. So whole boxes are pooled first (class-wise NMS); a cut box is dropped when at
least half of it lies inside a kept box of its class, and the remaining cut boxes (objects larger than the overlap)
are pooled among themselves.
"""
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window
from torch import nn
from torchvision.ops import batched_nms, box_area

_EDGE = 1.0  # pixels: a box this close to a tile's inner edge counts as cut there


def _cut(boxes: torch.Tensor, x: int, y: int, pw: int, ph: int, width: int, height: int) -> torch.Tensor:
    """Which boxes (image coordinates) of the tile at (x, y) touch one of its inner edges."""
    cut = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    if x > 0:
        cut |= boxes[:, 0] <= x + _EDGE
    if y > 0:
        cut |= boxes[:, 1] <= y + _EDGE
    if x + pw < width:
        cut |= boxes[:, 2] >= x + pw - _EDGE
    if y + ph < height:
        cut |= boxes[:, 3] >= y + ph - _EDGE
    return cut


def _inside_fraction(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """(N, M) fraction of each box's area that lies inside each of the others."""
    lt = torch.max(boxes[:, None, :2], others[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], others[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    return inter / box_area(boxes).clamp(min=1e-6)[:, None]


def detect_image(networks: Sequence[nn.Module], image: torch.Tensor, patch_size: Sequence[int],
                 tile_step_size: float = 0.5, nms_iou: float = 0.5, tiles_per_batch: int = 4) -> dict:
    """{"boxes" (x0, y0, x1, y1 in pixels of image), "scores", "labels"} of one (C, H, W) image from detectors in eval
    mode, sorted by decreasing score. An image smaller than the patch is padded at its far sides with zeros (the
    normalised mean); tiles overlap by 1 - tile_step_size, as in nnU-Net's sliding-window prediction."""
    _, height, width = image.shape
    ph, pw = patch_size
    padded = F.pad(image, (0, max(pw - width, 0), 0, max(ph - height, 0)))
    ys, xs = compute_steps_for_sliding_window(tuple(padded.shape[1:]), (ph, pw), tile_step_size)
    offsets = [(x, y) for y in ys for x in xs]
    boxes, scores, labels, cut = [], [], [], []
    with torch.no_grad():
        for net in networks:
            for i in range(0, len(offsets), tiles_per_batch):
                batch = offsets[i:i + tiles_per_batch]
                for d, (x, y) in zip(net([padded[:, y:y + ph, x:x + pw] for x, y in batch]), batch):
                    b = d["boxes"] + d["boxes"].new_tensor([x, y, x, y])
                    boxes.append(b)
                    scores.append(d["scores"])
                    labels.append(d["labels"])
                    cut.append(_cut(b, x, y, pw, ph, padded.shape[2], padded.shape[1]))
    boxes, scores, labels, cut = torch.cat(boxes), torch.cat(scores), torch.cat(labels), torch.cat(cut)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # not on the padding only
    whole, parts = (keep & ~cut).nonzero()[:, 0], (keep & cut).nonzero()[:, 0]
    whole = whole[batched_nms(boxes[whole], scores[whole], labels[whole], nms_iou)]
    if len(parts) and len(whole):
        covered = (_inside_fraction(boxes[parts], boxes[whole]) >= 0.5) & (labels[parts][:, None] == labels[whole])
        parts = parts[~covered.any(1)]
    parts = parts[batched_nms(boxes[parts], scores[parts], labels[parts], nms_iou)]
    order = torch.cat((whole, parts))
    order = order[scores[order].argsort(descending=True)]
    return {"boxes": boxes[order], "scores": scores[order], "labels": labels[order]}
