import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from nnunet_kd.detection.inference import detect_image


class _Blobs(nn.Module):
    """A stand-in detector: one box per connected bright region of each image it is given."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, images):
        out = []
        for im in images:
            self.shapes.append(tuple(im.shape))
            regions, n = ndimage.label(im[0].numpy() > 0.5)
            boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(regions)]
            out.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                        "scores": torch.full((n,), 0.9), "labels": torch.ones(n, dtype=torch.int64)})
        return out


def _image(height, width, boxes):
    im = np.zeros((1, height, width), np.float32)
    for x0, y0, x1, y1 in boxes:
        im[0, y0:y1, x0:x1] = 1
    return torch.from_numpy(im)


def _boxes(det):
    return sorted(det["boxes"].round().int().tolist())


@pytest.mark.parametrize("n_models", [1, 2])
def test_tiles_of_a_larger_image_give_each_object_once_in_image_pixels(n_models):
    objects = [[40, 10, 50, 20], [85, 130, 96, 140], [20, 60, 60, 100]]  # across tile overlaps and at the far corner
    nets = [_Blobs() for _ in range(n_models)]
    det = detect_image(nets, _image(150, 100, objects), (64, 64))
    assert _boxes(det) == sorted(objects)
    assert all(shape == (1, 64, 64) for net in nets for shape in net.shapes)  # never rescaled
    assert len(nets[0].shapes) == 4 * 3  # nnU-Net's steps at half a patch: 4 rows x 3 columns of tiles


def test_an_object_wider_than_any_tile_is_kept_in_parts():
    det = detect_image([_Blobs()], _image(64, 100, [[10, 20, 80, 30]]), (64, 64))
    assert len(det["boxes"]) >= 1
    assert all(10 <= x0 < x1 <= 80 and y0 == 20 and y1 == 30 for x0, y0, x1, y1 in _boxes(det))


def test_an_image_smaller_than_the_patch_is_padded_and_boxes_stay_inside():
    net = _Blobs()
    det = detect_image([net], _image(40, 50, [[44, 30, 50, 40]]), (64, 64))
    assert net.shapes == [(1, 64, 64)] and _boxes(det) == [[44, 30, 50, 40]]
    assert det["scores"].tolist() == pytest.approx([0.9])
