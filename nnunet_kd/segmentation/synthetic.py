"""Small multi-domain segmentation datasets in nnU-Net raw format, for tests, the demo and the benchmarks.

Every dataset shows the same kind of anatomy (a textured organ with lesions inside); what differs between datasets is
the scanner (`nnunet_kd.data.synthetic`): intensity mapping, contrast, noise, bias field, resolution and the channel
names. Scenarios: the demo (`lesion_demo`: organ and small lesions labelled, the lesions faint in the target and clear
in the sources) and the segmentation benchmarks (`variety_benchmark`: round and elongated lesions, labelled target cases
with large ones only, held-out cases and sources with every size; `shift_benchmark`: lesions labelled, a low-contrast
noisy target; `small_lesion_benchmark`: the demo's kind with fewer labelled cases and smaller lesions).
"""
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

from nnunet_kd.core.errors import KDError
from nnunet_kd.data.synthetic import Scanner, render

DEMO_CHANNEL_MAP = {"3": {"T1": "mri"}}  # the demo's source B names its one channel "mri"


@dataclass
class DatasetSpec:
    dataset_id: int
    name: str
    channels: dict[str, Scanner]
    num_training: int
    num_test: int = 0
    shape: Sequence[int] = (64, 64)
    spacing: Sequence[float] = (1.0, 1.0, 1.0)  # 3D only
    lesion_label: str = "lesion"
    extra_labels: list[str] = field(default_factory=list)  # drawn as further lesion types
    # the extra lesion types elongated (3:1, any orientation) and as bright as the first: told apart by shape alone
    shape_coded: bool = False
    organ_label: bool = False  # label the organ too (1 = organ, lesions from 2)
    lesion_radius: Sequence[float] = (0.12, 0.25)  # relative to the image's half-size
    labelled_lesion_radius: Sequence[float] | None = None  # that of the labelled training cases (None: lesion_radius)
    num_unlabelled: int = 0  # images without labels in imagesUnlabelled (for plan --extra-target-images)


def _phantom(rng: np.random.RandomState, shape, n_labels: int, lesion_radius=(0.12, 0.25), shape_coded=False):
    """Organ mask and label map (0 background, 1..n_labels lesions inside the organ); shape_coded: lesions of label 1
    are circular, those of label 2 and above elongated."""
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    radii = rng.uniform(0.55, 0.8, len(shape))
    center = rng.uniform(-0.1, 0.1, len(shape))
    organ = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii)) < 1
    seg = np.zeros(shape, dtype=np.uint8)
    for _ in range(rng.randint(1, 4)):
        label = rng.randint(1, n_labels + 1)
        r = rng.uniform(*lesion_radius, len(shape))
        c = center + rng.uniform(-0.4, 0.4, len(shape)) * radii
        offsets = [g - ci for g, ci in zip(grid, c)]
        if shape_coded:  # round: circular; elongated: 3:1 with the same area, rotated in the last two axes
            r[:] = r[0]
        if shape_coded and label > 1:
            r[:], r[-1] = r[0] / np.sqrt(3), r[0] * np.sqrt(3)
            a = rng.uniform(0, np.pi)
            offsets[-2:] = (np.cos(a) * offsets[-2] - np.sin(a) * offsets[-1],
                            np.sin(a) * offsets[-2] + np.cos(a) * offsets[-1])
        blob = sum((o / ri) ** 2 for o, ri in zip(offsets, r)) < 1
        seg[blob & organ] = label
    return organ, seg


def _write(arr: np.ndarray, path: str, spacing, dtype):
    if arr.ndim == 2:  # nnU-Net reads 2D PNGs with its natural-image reader
        from skimage.io import imsave
        imsave(path, arr.astype(dtype), check_contrast=False)
    else:
        im = sitk.GetImageFromArray(arr.astype(np.float32 if dtype != np.uint8 else np.uint8))
        im.SetSpacing([float(s) for s in spacing[::-1]])
        sitk.WriteImage(im, path, useCompression=True)


def write_dataset(raw_root: str, spec: DatasetSpec, seed: int = 0) -> str:
    """Writes imagesTr/labelsTr (and imagesTs/labelsTs, imagesUnlabelled) plus dataset.json; returns the dataset
    folder. Unlabelled images are drawn last, so adding them leaves the labelled and test cases as they were."""
    folder = os.path.join(raw_root, f"Dataset{spec.dataset_id:03d}_{spec.name}")
    os.makedirs(folder, exist_ok=True)
    ending = ".png" if len(spec.shape) == 2 else ".nii.gz"
    rng = np.random.RandomState(seed * 1000 + spec.dataset_id)
    n_labels = 1 + len(spec.extra_labels)
    for split, n in (("Tr", spec.num_training), ("Ts", spec.num_test), ("Unlabelled", spec.num_unlabelled)):
        if n == 0:
            continue
        os.makedirs(os.path.join(folder, f"images{split}"), exist_ok=True)
        if split != "Unlabelled":
            os.makedirs(os.path.join(folder, f"labels{split}"), exist_ok=True)
        for i in range(n):
            case = f"{spec.name.lower()}_{split.lower()}_{i:03d}"
            radius = spec.labelled_lesion_radius if split == "Tr" and spec.labelled_lesion_radius else spec.lesion_radius
            organ, seg = _phantom(rng, tuple(spec.shape), n_labels, radius, spec.shape_coded)
            drawn = np.minimum(seg, 1) if spec.shape_coded else seg
            for c, sc in enumerate(spec.channels.values()):
                _write(render(rng, organ, drawn, sc), os.path.join(folder, f"images{split}", f"{case}_{c:04d}{ending}"),
                       spec.spacing, np.uint8 if ending == ".png" else np.float32)
            if split != "Unlabelled":
                label = np.where(seg > 0, seg + 1, organ).astype(np.uint8) if spec.organ_label else seg
                _write(label, os.path.join(folder, f"labels{split}", case + ending), spec.spacing, np.uint8)
    first = 2 if spec.organ_label else 1
    labels = {"background": 0, **({"organ": 1} if spec.organ_label else {}), spec.lesion_label: first}
    labels.update({name: i + first + 1 for i, name in enumerate(spec.extra_labels)})
    generate_dataset_json(folder, {i: name for i, name in enumerate(spec.channels)}, labels, spec.num_training, ending,
                          dataset_name=spec.name, description="synthetic nnunet-kd dataset",
                          license="synthetic data",
                          converted_by="nnunet_kd.data.synthetic")  # as earlier versions wrote: the same bytes
    return folder


def write_datasets(raw: str, specs, seed: int = 0) -> None:
    """Writes each dataset of specs unless there; one there with other labels (an older demo) is an error."""
    for spec in specs:
        folder = join(raw, f"Dataset{spec.dataset_id:03d}_{spec.name}")
        if not isfile(join(folder, "dataset.json")):
            write_dataset(raw, spec, seed=seed)
            continue
        labels = load_json(join(folder, "dataset.json"))["labels"]
        expected = ["background"] + (["organ"] if spec.organ_label else []) + [spec.lesion_label] + spec.extra_labels
        unlabelled = join(folder, "imagesUnlabelled")
        n_unlabelled = len(os.listdir(unlabelled)) // len(spec.channels) if os.path.isdir(unlabelled) else 0
        if list(labels) != expected or n_unlabelled != spec.num_unlabelled:
            raise KDError(f"{folder} holds the data of another scenario (labels {list(labels)}, {n_unlabelled} "
                          f"unlabelled images; this one has {expected}, {spec.num_unlabelled}), e.g. of an older demo. "
                          f"Use a new --out folder, or delete that one.")


def demo() -> tuple[list[DatasetSpec], dict]:
    """The built-in demo's datasets (`lesion_demo`) and its --channel-map."""
    return lesion_demo(), DEMO_CHANNEL_MAP


def lesion_demo() -> list[DatasetSpec]:
    """The built-in demo, the situation the method is for: a target with 8 labelled cases (30 test cases) whose scanner
    shows the organ well but small lesions only faintly, 24 unlabelled target images (a hospital's archive: the source
    teachers' target-domain images, `plan --extra-target-images`), and two sources of 40 cases from other scanners
    that show the lesions clearly. Labels: organ and lesion in all three."""
    specs = tiny_benchmark(n_target=8, n_source=40, n_test=30)
    specs[0].num_unlabelled = 24
    for spec in specs:
        spec.organ_label, spec.lesion_radius = True, (0.07, 0.14)
    # lesions 0.08 brighter than the organ, under noise of 0.07 and a bias field
    specs[0].channels = {"T1": Scanner(background=0.1, organ=0.45, lesion=0.53, noise=0.07, bias=0.2)}
    return specs


def shift_benchmark(n_test: int = 40) -> list[DatasetSpec]:
    """The segmentation domain-shift benchmark: 8 labelled target cases (n_test test cases) under a low-contrast, noisy
    scanner with a bias field, two sources of 40 cases from other scanners; lesions labelled."""
    target, source_a, source_b = tiny_benchmark(n_target=8, n_source=40, n_test=n_test)
    target.channels = {"T1": Scanner(background=0.1, organ=0.45, lesion=0.6, noise=0.12, bias=0.3)}
    return [target, source_a, source_b]


def small_lesion_benchmark(n_test: int = 40) -> list[DatasetSpec]:
    """Can distillation lose a small class? 5 labelled target cases whose scanner shows the organ well and smaller
    lesions than the demo's only faintly (n_test test cases), two sources of 40 cases that show them clearly; organ and
    lesion labelled."""
    specs = tiny_benchmark(n_target=5, n_source=40, n_test=n_test)
    for spec in specs:
        spec.organ_label, spec.lesion_radius = True, (0.06, 0.12)
    specs[0].channels = {"T1": Scanner(background=0.1, organ=0.45, lesion=0.52, noise=0.07, bias=0.25)}
    return specs


def variety_benchmark(n_held_out: int = 160) -> list[DatasetSpec]:
    """The situation the method is for: 5 labelled target cases of limited variety (large lesions only) under a
    scanner with a bias field, 50 unlabelled target images and n_held_out held-out cases showing lesions of every
    size; two sources of 100 cases of every size from other scanners of the same modality (other intensity mappings,
    gamma, bias, blur and channels). Two lesion types, round and elongated, equally bright, are labelled."""
    target, source_a, source_b = tiny_benchmark(n_target=5, n_source=100, n_test=n_held_out)
    for spec in (target, source_a, source_b):
        spec.lesion_radius, spec.extra_labels, spec.shape_coded = (0.08, 0.25), ["elongated"], True
    target.labelled_lesion_radius = (0.17, 0.25)
    target.num_unlabelled = 50
    target.channels = {"T1": Scanner(background=0.1, organ=0.45, lesion=0.6, noise=0.06, bias=0.3)}
    source_a.channels = {"FLAIR": Scanner(background=0.05, organ=0.3, lesion=0.5, noise=0.06),
                         "t1": Scanner(background=0.2, organ=0.55, lesion=0.72, gamma=1.3, noise=0.06, bias=0.2)}
    source_b.channels = {"mri": Scanner(background=0.3, organ=0.55, lesion=0.75, gamma=0.8, noise=0.06, blur=0.5,
                                        scale=180.0)}
    return [target, source_a, source_b]


def tiny_benchmark(dim: int = 2, size: int = 64, n_target: int = 10, n_source: int = 12, n_test: int = 4,
                   ids=(1, 2, 3)) -> list[DatasetSpec]:
    """A target (channel 'T1') and two sources from other scanners: one with channels 'FLAIR' and 't1' (mapped by
    name), one with a single channel 'mri' (needs an explicit channel map)."""
    shape = (size,) * dim if dim == 2 else (max(16, size // 2), size, size)
    target = DatasetSpec(ids[0], "KDTarget", {"T1": Scanner()}, n_target, n_test, shape, (1.0, 1.0, 1.0))
    source_a = DatasetSpec(ids[1], "KDSourceA", {
        "FLAIR": Scanner(background=0.05, organ=0.3, lesion=0.95, noise=0.06),
        "t1": Scanner(background=0.2, organ=0.6, lesion=0.35, gamma=1.4, noise=0.06, bias=0.3),
    }, n_source, 0, shape, (1.5, 1.0, 1.0))
    source_b = DatasetSpec(ids[2], "KDSourceB", {
        "mri": Scanner(background=0.3, organ=0.55, lesion=0.9, gamma=0.7, noise=0.08, blur=1.0, scale=180.0),
    }, n_source, 0, shape, (1.0, 1.0, 1.0))
    return [target, source_a, source_b]
