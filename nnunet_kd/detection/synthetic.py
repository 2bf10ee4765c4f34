"""A tiny generated 2D detection benchmark with a domain shift, for tests and the benchmark.

Every image shows a textured tissue ellipse holding one to four separate blobs, each a box of its category: "nodule"
(small and round) or "mass" (larger, elongated, random orientation). Datasets differ in the scanner (intensity
mapping, contrast, noise, blur: `nnunet_kd.data.synthetic.Scanner`; blobs brighter or darker than the tissue) and in
their category sets. Generation goes through `convert_det`: the images are first written in the usual layout (a
folder of PNG files plus a COCO JSON file).
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from nnunet_kd.data.synthetic import Scanner, render
from nnunet_kd.detection.boxes import boxes_from_instance_map
from nnunet_kd.detection.convert import convert_det
from nnunet_kd.detection.labels import BOXES_JSON, TEST_BOXES_JSON

_KINDS = ("nodule", "mass")  # render() draws category kind k with label k + 1: masses slightly less intense


@dataclass
class DetSpec:
    dataset_id: int
    name: str
    categories: list[str]  # in category-index order; each "nodule" or "mass"
    scanner: Scanner
    num_training: int
    num_test: int = 0
    size: int = 64  # images are size x size
    num_unlabelled: int = 0  # images without boxes in imagesUnlabelled (for plan --extra-target-images)


def _blob(rng: np.random.RandomState, grid, kind: str, center) -> np.ndarray:
    """Mask of one blob of the given kind (sizes in pixels, for 64 x 64 images and scaled with the size)."""
    scale = grid[0].shape[0] / 64
    if kind == "nodule":
        radii, angle = np.full(2, rng.uniform(2.5, 4.0)) * scale, 0.0
    elif kind == "mass":
        radii, angle = np.array([rng.uniform(3.5, 5.0), rng.uniform(7.0, 10.0)]) * scale, rng.uniform(0, np.pi)
    else:
        raise ValueError(f"unknown synthetic category {kind!r}")
    y, x = grid[0] - center[0], grid[1] - center[1]
    y, x = np.cos(angle) * y - np.sin(angle) * x, np.sin(angle) * y + np.cos(angle) * x
    return (y / radii[0]) ** 2 + (x / radii[1]) ** 2 < 1


def _phantom(rng: np.random.RandomState, size: int, categories: list[str]):
    """Tissue mask, label map for render() (kind index + 1), instance map and the category index of each instance."""
    grid = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    center = size / 2 + rng.uniform(-0.05, 0.05, 2) * size
    radii = rng.uniform(0.38, 0.45, 2) * size
    tissue = ((grid[0] - center[0]) / radii[0]) ** 2 + ((grid[1] - center[1]) / radii[1]) ** 2 < 1
    labels, instances, cats = np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8), []
    taken = np.zeros((size, size), bool)  # the boxes so far
    for _ in range(rng.randint(1, 5)):
        cat = rng.randint(len(categories))
        for _ in range(50):  # rejection sampling: boxes keep a pixel apart, so each instance fills its whole box
            angle, r = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1)) * 0.6
            blob = _blob(rng, grid, categories[cat], center + r * radii * np.array([np.sin(angle), np.cos(angle)]))
            blob &= tissue
            if blob.sum() < 4:
                continue
            rows, cols = ndimage.find_objects(blob.astype(np.uint8))[0]
            if not taken[max(rows.start - 1, 0):rows.stop + 1, max(cols.start - 1, 0):cols.stop + 1].any():
                cats.append(cat)
                instances[blob] = len(cats)
                labels[blob] = _KINDS.index(categories[cat]) + 1
                taken[rows, cols] = True
                break
    return tissue, labels, instances, cats


def _write_layout(rng, spec: DetSpec, folder: str, split: str, n: int) -> tuple[str, str]:
    """PNG images of n cases and a COCO JSON file of their boxes; returns both paths."""
    images = os.path.join(folder, split)
    os.makedirs(images)
    coco = {"images": [], "annotations": [],
            "categories": [{"id": k + 1, "name": name} for k, name in enumerate(spec.categories)]}
    for i in range(n):
        tissue, labels, instances, cats = _phantom(rng, spec.size, spec.categories)
        filename = f"{spec.name.lower()}_{split}_{i:03d}.png"
        Image.fromarray(np.round(render(rng, tissue, labels, spec.scanner)).astype(np.uint8)).save(
            os.path.join(images, filename))
        coco["images"].append({"id": i + 1, "file_name": filename, "width": spec.size, "height": spec.size})
        boxes, ids = boxes_from_instance_map(instances)
        for (x0, y0, x1, y1), instance in zip(boxes.astype(int).tolist(), ids.tolist()):
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": cats[instance - 1] + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    coco_path = os.path.join(folder, f"{split}.json")
    with open(coco_path, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return coco_path, images


def write_det_dataset(raw_root: str, spec: DetSpec, seed: int = 0) -> str:
    """Writes <raw_root>/DatasetXXX_NAME (imagesTr, labelsTr, boxes.json, imagesTs with boxesTs.json when
    spec.num_test, imagesUnlabelled when spec.num_unlabelled, drawn last) through `convert_det`; returns the dataset
    folder. Deterministic per seed."""
    rng = np.random.RandomState(seed * 1000 + spec.dataset_id)
    with tempfile.TemporaryDirectory() as tmp:
        layout = os.path.join(tmp, spec.name)
        folder = convert_det(*_write_layout(rng, spec, layout, "train", spec.num_training), spec.dataset_id,
                             spec.name, raw_root)
        if spec.num_test:
            # converted as a throwaway dataset, so that test images get exactly the training images' format
            test = _write_layout(rng, spec, layout, "test", spec.num_test)
            converted = convert_det(*test, spec.dataset_id, spec.name, os.path.join(tmp, "raw"))
            shutil.move(os.path.join(converted, "imagesTr"), os.path.join(folder, "imagesTs"))
            shutil.move(os.path.join(converted, BOXES_JSON), os.path.join(folder, TEST_BOXES_JSON))
        if spec.num_unlabelled:
            unlabelled = _write_layout(rng, spec, layout, "unlabelled", spec.num_unlabelled)
            converted = convert_det(*unlabelled, spec.dataset_id, spec.name, os.path.join(tmp, "unlabelled"))
            shutil.move(os.path.join(converted, "imagesTr"), os.path.join(folder, "imagesUnlabelled"))
    return folder


def det_benchmark(size: int = 64, n_target: int = 10, n_source: int = 16, n_test: int = 6,
                  ids=(41, 42, 43)) -> list[DetSpec]:
    """A target (nodules and masses, brighter than the tissue; with a test set) and two sources from other scanners:
    source A with the target's categories as dark blobs, source B noisier and blurred with nodules only."""
    categories = ["nodule", "mass"]
    target = DetSpec(ids[0], "DetTarget", categories, Scanner(background=0.1, organ=0.4, lesion=0.8, noise=0.05),
                     n_target, n_test, size)
    source_a = DetSpec(ids[1], "DetSourceA", categories,
                       Scanner(background=0.25, organ=0.6, lesion=0.2, gamma=1.4, noise=0.05, bias=0.3),
                       n_source, 0, size)
    source_b = DetSpec(ids[2], "DetSourceB", ["nodule"],
                       Scanner(background=0.3, organ=0.5, lesion=0.9, gamma=0.7, noise=0.08, blur=0.8, scale=180.0),
                       n_source, 0, size)
    return [target, source_a, source_b]


def det_variety_benchmark(n_held_out: int = 150) -> list[DetSpec]:
    """The detection benchmark: 10 labelled target images (nodules and masses) under a noisy, low-contrast, blurred
    scanner, 100 unlabelled target images and n_held_out held-out images; two sources of 100 images from other
    scanners of the same modality (noise like the target's), source B with nodules only."""
    target, source_a, source_b = det_benchmark(n_target=10, n_source=100, n_test=n_held_out)
    target.num_unlabelled = 100
    target.scanner = Scanner(background=0.1, organ=0.4, lesion=0.6, noise=0.1, blur=0.6)
    source_a.scanner = Scanner(background=0.25, organ=0.55, lesion=0.75, gamma=1.3, noise=0.09, bias=0.2)
    source_b.scanner = Scanner(background=0.3, organ=0.5, lesion=0.7, gamma=0.8, noise=0.1, blur=0.5, scale=180.0)
    return [target, source_a, source_b]
