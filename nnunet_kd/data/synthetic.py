"""The imaging model shared by the synthetic datasets of every task (tests, the demo, the benchmarks): a scanner maps
tissue (background, a textured organ, structures inside it) to intensities, with contrast, gamma, noise, a bias field
and blur. Each task draws its own anatomy and labels (`<task>/synthetic.py`)."""
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Scanner:
    """How one channel of one scanner maps tissue to intensities."""
    background: float = 0.1
    organ: float = 0.45
    lesion: float = 0.85
    gamma: float = 1.0
    noise: float = 0.04
    bias: float = 0.0  # amplitude of a smooth multiplicative bias field
    blur: float = 0.0  # Gaussian sigma in voxels: lower effective resolution
    scale: float = 255.0  # intensity of 1.0 in the written image


def render(rng, organ, seg, sc: Scanner):
    img = np.full(organ.shape, sc.background, dtype=np.float64)
    texture = ndimage.gaussian_filter(rng.randn(*organ.shape), 2) * 0.05
    img[organ] = sc.organ + texture[organ]
    for label in np.unique(seg[seg > 0]):
        img[seg == label] = sc.lesion * (1 - 0.15 * (label - 1)) + texture[seg == label]
    img = np.clip(img, 0, 1) ** sc.gamma
    if sc.bias:
        field_ = ndimage.gaussian_filter(rng.randn(*organ.shape), max(organ.shape) / 4)
        field_ /= np.abs(field_).max() + 1e-8
        img *= 1 + sc.bias * field_
    if sc.blur:
        img = ndimage.gaussian_filter(img, sc.blur)
    img += rng.randn(*organ.shape) * sc.noise
    return np.clip(img, 0, 1) * sc.scale
