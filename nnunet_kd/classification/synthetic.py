"""A tiny generated image-classification benchmark with a domain shift, for tests and the benchmark.

Every image shows a textured tissue ellipse; the class is the bright structure inside it: none, one round blob, one
elongated blob (random orientation) or two small round blobs ("double"). Datasets differ in the scanner (intensity
mapping, contrast, noise, blur: `nnunet_kd.data.synthetic.Scanner`) and in their class sets. Generation goes through
`convert_cls`: the images are first written in the usual layout (a folder of PNG or NIfTI files plus a CSV).
"""
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from PIL import Image

from nnunet_kd.classification.convert import convert_cls
from nnunet_kd.classification.labels import LABELS_CSV, TEST_LABELS_CSV
from nnunet_kd.data.synthetic import Scanner, render


@dataclass
class ClsSpec:
    dataset_id: int
    name: str
    classes: list[str]  # in class-index order; each one of "none", "round", "elongated", "double"
    scanner: Scanner
    num_training: int
    num_test: int = 0
    shape: Sequence[int] = (32, 32)
    spacing: Sequence[float] = (1.0, 1.0, 1.0)  # 3D only
    num_unlabelled: int = 0  # images without labels in imagesUnlabelled (for plan --extra-target-images)


def _ellipsoid(grid, center, radii, angle: float = 0.0) -> np.ndarray:
    """Mask of an ellipsoid, rotated by angle in the plane of the last two axes."""
    *rest, y, x = [g - c for g, c in zip(grid, center)]
    y, x = np.cos(angle) * y - np.sin(angle) * x, np.sin(angle) * y + np.cos(angle) * x
    return sum((d / r) ** 2 for d, r in zip([*rest, y, x], radii)) < 1


def _phantom(rng: np.random.RandomState, shape, cls: str):
    """Tissue mask and structure mask (0/1) of one image of class cls."""
    dim = len(shape)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    tissue = _ellipsoid(grid, rng.uniform(-0.05, 0.05, dim), rng.uniform(0.75, 0.9, dim))
    center, angle = rng.uniform(-0.15, 0.15, dim), rng.uniform(0, np.pi)
    if cls == "none":
        blobs = []
    elif cls == "round":
        blobs = [(center, np.full(dim, rng.uniform(0.25, 0.32)))]
    elif cls == "elongated":
        radii = np.full(dim, rng.uniform(0.12, 0.16))
        radii[-1] = rng.uniform(0.45, 0.55)
        blobs = [(center, radii)]
    elif cls == "double":
        offset = np.zeros(dim)
        offset[-2:] = 0.32 * np.sin(angle), 0.32 * np.cos(angle)
        blobs = [(center + s * offset, np.full(dim, rng.uniform(0.14, 0.18))) for s in (-1, 1)]
    else:
        raise ValueError(f"unknown synthetic class {cls!r}")
    seg = np.zeros(shape, dtype=np.uint8)
    for c, r in blobs:
        seg[_ellipsoid(grid, c, r, angle) & tissue] = 1
    return tissue, seg


def _write_layout(rng, spec: ClsSpec, folder: str, split: str, n: int) -> tuple[str, str]:
    """Images (PNG for 2D, NIfTI for 3D) of n cases and a CSV (image file name, diagnosis); returns both paths."""
    images = os.path.join(folder, split)
    os.makedirs(images)
    classes = [spec.classes[i % len(spec.classes)] for i in range(n)]  # every class present once n allows it
    rng.shuffle(classes)
    rows = []
    for i, cls in enumerate(classes):
        tissue, seg = _phantom(rng, tuple(spec.shape), cls)
        img = render(rng, tissue, seg, spec.scanner)
        filename = f"{spec.name.lower()}_{split}_{i:03d}" + (".png" if len(spec.shape) == 2 else ".nii.gz")
        if len(spec.shape) == 2:
            Image.fromarray(np.round(img).astype(np.uint8)).save(os.path.join(images, filename))
        else:
            im = sitk.GetImageFromArray(img.astype(np.float32))
            im.SetSpacing([float(s) for s in spec.spacing[::-1]])
            sitk.WriteImage(im, os.path.join(images, filename), useCompression=True)
        rows.append(f"{filename},{cls}\n")
    csv_path = os.path.join(folder, f"{split}.csv")
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write("image,diagnosis\n" + "".join(rows))
    return images, csv_path


def write_cls_dataset(raw_root: str, spec: ClsSpec, seed: int = 0, usual_layout_dir: str | None = None) -> str:
    """Writes <raw_root>/DatasetXXX_NAME (imagesTr, labelsTr, labels.csv, imagesTs with labelsTs.csv when
    spec.num_test, imagesUnlabelled when spec.num_unlabelled, drawn last) through `convert_cls`; returns the dataset
    folder. The usual layout (<NAME>/train, train.csv, <NAME>/test, test.csv) is kept under usual_layout_dir if given.
    Deterministic per seed."""
    rng = np.random.RandomState(seed * 1000 + spec.dataset_id)
    with tempfile.TemporaryDirectory() as tmp:
        layout = os.path.join(usual_layout_dir or tmp, spec.name)
        train = _write_layout(rng, spec, layout, "train", spec.num_training)
        folder = convert_cls(*train, spec.dataset_id, spec.name, raw_root, classes=spec.classes)
        if spec.num_test:
            # converted as a throwaway dataset, so that test images get exactly the training images' format
            test = _write_layout(rng, spec, layout, "test", spec.num_test)
            converted = convert_cls(*test, spec.dataset_id, spec.name, os.path.join(tmp, "raw"), classes=spec.classes)
            shutil.move(os.path.join(converted, "imagesTr"), os.path.join(folder, "imagesTs"))
            shutil.move(os.path.join(converted, LABELS_CSV), os.path.join(folder, TEST_LABELS_CSV))
        if spec.num_unlabelled:
            unlabelled = _write_layout(rng, spec, layout, "unlabelled", spec.num_unlabelled)
            converted = convert_cls(*unlabelled, spec.dataset_id, spec.name, os.path.join(tmp, "unlabelled"),
                                    classes=spec.classes)
            shutil.move(os.path.join(converted, "imagesTr"), os.path.join(folder, "imagesUnlabelled"))
    return folder


def cls_benchmark(dim: int = 2, size: int = 32, n_target: int = 10, n_source: int = 16, n_test: int = 6,
                  ids=(21, 22, 23)) -> list[ClsSpec]:
    """A target (classes none, round, elongated; with a test set) and two sources from other scanners: source A with
    the target's classes under inverted contrast, source B noisier and blurred with another class set (none, round,
    double: no elongated, an extra double)."""
    shape = (size, size) if dim == 2 else (max(8, size // 2), size * 3 // 4, size * 3 // 4)
    classes = ["none", "round", "elongated"]
    target = ClsSpec(ids[0], "ClsTarget", classes, Scanner(background=0.1, organ=0.4, lesion=0.75, noise=0.06),
                     n_target, n_test, shape)
    source_a = ClsSpec(ids[1], "ClsSourceA", classes,
                       Scanner(background=0.25, organ=0.6, lesion=0.3, gamma=1.4, noise=0.05, bias=0.3),
                       n_source, 0, shape, (1.5, 1.0, 1.0))
    source_b = ClsSpec(ids[2], "ClsSourceB", ["none", "round", "double"],
                       Scanner(background=0.3, organ=0.5, lesion=0.9, gamma=0.7, noise=0.08, blur=0.8, scale=180.0),
                       n_source, 0, shape)
    return [target, source_a, source_b]


def cls_variety_benchmark(n_held_out: int = 240) -> list[ClsSpec]:
    """The classification benchmark: 24 labelled target cases under a noisy, low-contrast scanner with a bias field,
    240 unlabelled target images and n_held_out held-out cases; two sources of 150 cases from other scanners of the
    same modality (noise like the target's), source B with another class set."""
    target, source_a, source_b = cls_benchmark(n_target=24, n_source=150, n_test=n_held_out)
    target.num_unlabelled = 240
    target.scanner = Scanner(background=0.1, organ=0.4, lesion=0.55, noise=0.12, bias=0.2)
    source_a.scanner = Scanner(background=0.25, organ=0.6, lesion=0.78, gamma=1.3, noise=0.11, bias=0.3)
    source_b.scanner = Scanner(background=0.3, organ=0.5, lesion=0.7, gamma=0.8, noise=0.12, blur=0.5, scale=180.0)
    return [target, source_a, source_b]
