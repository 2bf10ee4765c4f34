import os

from batchgenerators.utilities.file_and_folder_operations import load_json

import numpy as np
import pytest
from scipy import ndimage
from skimage.io import imread

from nnunet_kd.data.synthetic import Scanner
from nnunet_kd.segmentation.synthetic import (lesion_demo, shift_benchmark, small_lesion_benchmark, tiny_benchmark,
                                              variety_benchmark, write_dataset)


@pytest.mark.parametrize("scenario", [lesion_demo, shift_benchmark, small_lesion_benchmark, variety_benchmark])
def test_scenario_layout(tmp_path, scenario):
    specs = scenario()
    target, *sources = specs
    assert target.num_test > 0 and all(s.num_training > target.num_training for s in sources)
    assert len({tuple(s.channels) for s in specs}) == 3  # the scanners name their channels differently
    folder = write_dataset(str(tmp_path), target)
    dj = load_json(os.path.join(folder, "dataset.json"))
    assert dj["numTraining"] == target.num_training and dj["file_ending"] == ".png"
    assert len(os.listdir(os.path.join(folder, "imagesTs"))) == len(os.listdir(os.path.join(folder, "labelsTs"))) \
        == target.num_test


def test_3d_datasets_are_nifti(tmp_path):
    spec = tiny_benchmark(dim=3, size=16, n_target=2, n_source=2, n_test=0)[1]
    folder = write_dataset(str(tmp_path), spec)
    files = sorted(os.listdir(os.path.join(folder, "imagesTr")))
    assert files[0].endswith("_0000.nii.gz") and files[1].endswith("_0001.nii.gz")  # two channels per case


def test_generation_is_seeded(tmp_path):
    spec = tiny_benchmark(n_target=2, n_source=2, n_test=0)[0]
    a = write_dataset(str(tmp_path / "a"), spec, seed=3)
    b = write_dataset(str(tmp_path / "b"), spec, seed=3)
    for f in os.listdir(os.path.join(a, "imagesTr")):
        assert open(os.path.join(a, "imagesTr", f), "rb").read() == open(os.path.join(b, "imagesTr", f), "rb").read()


def test_demo_labels_an_organ_and_small_faint_lesions(tmp_path):
    specs = lesion_demo()
    for spec in specs:
        spec.num_training, spec.num_test = 4, 0
    target = write_dataset(str(tmp_path), specs[0])
    assert load_json(os.path.join(target, "dataset.json"))["labels"] == {"background": 0, "organ": 1, "lesion": 2}
    seg = np.stack([imread(os.path.join(target, "labelsTr", f)) for f in sorted(os.listdir(
        os.path.join(target, "labelsTr")))])
    assert set(np.unique(seg)) == {0, 1, 2} and (seg == 2).sum() < 0.2 * (seg == 1).sum()  # lesions are small

    def contrast(folder, channel):  # lesion minus organ mean intensity, in units of the organ's std
        gaps = []
        for f in sorted(os.listdir(os.path.join(folder, "labelsTr"))):
            label = imread(os.path.join(folder, "labelsTr", f))
            image = imread(os.path.join(folder, "imagesTr", f[:-4] + f"_{channel:04d}.png")).astype(float)
            gaps.append(abs(image[label == 2].mean() - image[label == 1].mean()) / image[label == 1].std())
        return np.mean(gaps)

    source = write_dataset(str(tmp_path), specs[2])
    assert contrast(target, 0) < 1.2 < 2 < contrast(source, 0)


def _seg():
    target = shift_benchmark(n_test=3)[0]
    target.num_training = 4
    return target, write_dataset


def _cls():
    from nnunet_kd.classification.synthetic import cls_benchmark, write_cls_dataset
    return cls_benchmark(n_target=4, n_test=3)[0], write_cls_dataset


def _det():
    from nnunet_kd.detection.synthetic import det_benchmark, write_det_dataset
    return det_benchmark(n_target=4, n_test=3)[0], write_det_dataset


@pytest.mark.parametrize("scenario", [_seg, _cls, _det])
def test_unlabelled_images_leave_the_labelled_and_test_cases_unchanged(tmp_path, scenario):
    from helpers import tree_digest
    target, write = scenario()
    plain = write(str(tmp_path / "plain"), target)
    target.num_unlabelled = 5
    pooled = write(str(tmp_path / "pooled"), target)
    assert tree_digest(plain) == {k: v for k, v in tree_digest(pooled).items() if not k.startswith("imagesUnlabelled")}
    unlabelled = sorted(os.listdir(os.path.join(pooled, "imagesUnlabelled")))
    assert len(unlabelled) == 5 and all(f.endswith("_0000.png") for f in unlabelled)


def test_the_variety_benchmarks_labelled_cases_show_large_lesions_only_and_its_held_out_cases_every_size(tmp_path):
    target = variety_benchmark(n_held_out=30)[0]
    target.num_unlabelled = 0
    folder = write_dataset(str(tmp_path), target, seed=0)

    def areas(split):
        return [int((imread(os.path.join(folder, f"labels{split}", f)) > 0).sum())
                for f in sorted(os.listdir(os.path.join(folder, f"labels{split}")))]
    labelled, held_out = areas("Tr"), areas("Ts")
    assert len(labelled) == 5 and len(held_out) == 30
    assert min(held_out) < min(labelled) / 2  # radii from 0.08 against 0.17 of the half-size


def test_shape_coded_lesion_types_differ_in_shape_not_brightness(tmp_path):
    target = variety_benchmark(n_held_out=40)[0]
    target.num_unlabelled, target.channels = 0, {"T1": Scanner(noise=0.0)}
    folder = write_dataset(str(tmp_path), target, seed=0)
    brightness, elongation = {1: [], 2: []}, {1: [], 2: []}
    for f in sorted(os.listdir(os.path.join(folder, "labelsTs"))):
        label = imread(os.path.join(folder, "labelsTs", f))
        image = imread(os.path.join(folder, "imagesTs", f.replace(".png", "_0000.png"))).astype(float)
        for k in (1, 2):
            blobs, n = ndimage.label(label == k)
            for b in range(1, n + 1):
                ys, xs = np.nonzero(blobs == b)
                if len(ys) >= 20 and (label[ndimage.binary_dilation(blobs == b)] == 3 - k).sum() == 0:  # whole
                    brightness[k].append(image[blobs == b].mean())
                    ev = np.linalg.eigvalsh(np.cov(np.stack([ys, xs])))
                    elongation[k].append(ev[1] / ev[0])
    assert len(elongation[1]) >= 5 and len(elongation[2]) >= 5
    # 3:1 axes: variance ratio about 9; round ones circular (ratio 1, more only where two touch or the organ clips)
    assert np.median(elongation[2]) > 4 and np.percentile(elongation[1], 75) < 1.3
    assert abs(np.mean(brightness[1]) - np.mean(brightness[2])) < 10
