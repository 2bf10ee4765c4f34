"""`nnunet_kd convert-cls`: a folder of images plus a CSV of class names -> an nnU-Net raw classification dataset.

nnU-Net needs a segmentation for every training case, so labelsTr holds an all-ones mask ("image") of each image's
shape; the class of each case is in labels.csv and the class names in dataset.json's `classes`. PNG and JPEG images
become PNG files (nnU-Net's 2D reader does not read JPEG), RGB split into the channels R, G, B; NIfTI and DICOM images
become .nii.gz with their geometry. All inputs are checked before anything is written, and the dataset appears only
once complete: it is written into a hidden folder beside it and renamed.
"""
import os
import re
import shutil
import uuid
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import save_json
from PIL import Image

from nnunet_kd.classification.labels import (CLASSES_KEY, LABELS_CSV, LabelRow, duplicate_rows, listing,
                                             read_label_rows, write_label_rows)
from nnunet_kd.errors import KDError

NATURAL_ENDINGS = (".png", ".jpg", ".jpeg")  # 2D, written as .png
SITK_ENDINGS = (".nii.gz", ".nii", ".dcm")  # read with SimpleITK, written as .nii.gz
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")  # PIL modes kept as one channel (alpha dropped)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass
class _Image:
    path: str
    stem: str  # file name without its ending
    case: str  # the stem, sanitised
    natural: bool  # PNG/JPEG rather than NIfTI/DICOM
    ndim: int = 0
    rgb: bool = False
    error: str = ""  # why the header could not be read


def _ending(filename: str) -> str | None:
    lower = filename.lower()
    return next((e for e in NATURAL_ENDINGS + SITK_ENDINGS if lower.endswith(e)), None)


def _reason(e: Exception) -> str:
    """The last line of an exception's message (SimpleITK puts the C++ location first)."""
    lines = str(e).strip().splitlines()
    return lines[-1] if lines else type(e).__name__


def _raw_root(raw_root: str | None) -> str:
    raw_root = raw_root or os.environ.get("nnUNet_raw")
    if not raw_root:
        raise KDError("nnUNet_raw is not set: export it to the folder of nnU-Net's raw datasets (or pass raw_root).")
    return raw_root


def _check_target(raw_root: str, dataset_id: int, name: str) -> None:
    """Refuses an invalid or already used dataset id or name; an existing dataset is never overwritten."""
    if not 1 <= dataset_id <= 999:
        raise KDError(f"Dataset id {dataset_id} is outside 1-999, the range of nnU-Net's DatasetXXX names. "
                      f"Pick another id (-d).")
    if not _NAME.fullmatch(name):
        raise KDError(f"Dataset name {name!r} may only hold letters, digits, '_' and '-' (nnU-Net folder names). "
                      f"Pick another name (-n).")
    used = sorted(d for d in os.listdir(raw_root) if d.startswith(f"Dataset{dataset_id:03d}_")) \
        if os.path.isdir(raw_root) else []
    if used:
        raise KDError(f"Dataset id {dataset_id} is already used by {os.path.join(raw_root, used[0])}; nothing was "
                      f"written. Pick a free id (-d), or remove that dataset yourself if it is obsolete.")


def _scan(images_dir: str) -> list[_Image]:
    if not os.path.isdir(images_dir):
        raise KDError(f"Image folder {images_dir} does not exist. Pass the folder holding the images (--images).")
    images = []
    for f in sorted(os.listdir(images_dir)):
        ending = _ending(f)
        if ending and not f.startswith(".") and os.path.isfile(os.path.join(images_dir, f)):
            stem = f[:-len(ending)]
            images.append(_Image(os.path.join(images_dir, f), stem, re.sub(r"[^A-Za-z0-9_-]", "_", stem),
                                 ending in NATURAL_ENDINGS))
    if not images:
        raise KDError(f"Image folder {images_dir} holds no images with a supported ending "
                      f"({', '.join(NATURAL_ENDINGS + SITK_ENDINGS)}). Pass the folder holding the images (--images).")
    return images


def _probe(image: _Image) -> None:
    """Dimension and colour from the file header; sets image.error if the file cannot be read."""
    try:
        if image.natural:
            with Image.open(image.path) as im:
                image.ndim, image.rgb = 2, im.mode not in _GRAY_MODES
        else:
            reader = sitk.ImageFileReader()
            reader.SetFileName(image.path)
            reader.ReadImageInformation()
            if reader.GetNumberOfComponents() not in (1, 3):
                raise ValueError(f"{reader.GetNumberOfComponents()} components per pixel, not 1 (grayscale) or 3 (RGB)")
            if reader.GetDimension() not in (2, 3):
                raise ValueError(f"{reader.GetDimension()}D image, not 2D or 3D")
            image.ndim, image.rgb = reader.GetDimension(), reader.GetNumberOfComponents() == 3
    except (OSError, RuntimeError, ValueError) as e:
        image.error = _reason(e)


def _match(rows: list[LabelRow], images: list[_Image]) -> tuple[dict[str, LabelRow], list[str]]:
    """Case id -> its CSV row (the id column holds the file name with or without ending), and the problems."""
    by_name = {os.path.basename(i.path): i for i in images}
    by_stem = {i.stem: i for i in images}
    resolved = {r: by_name.get(r.case) or by_stem.get(r.case) for r in rows}
    problems = []
    orphans = [f"line {r.line}: {r.case}" for r, i in resolved.items() if i is None]
    if orphans:
        problems.append(f"Rows without an image (the id column must hold the image's file name, with or without "
                        f"ending; supported endings {', '.join(NATURAL_ENDINGS + SITK_ENDINGS)}):\n{listing(orphans)}")
    matched = [r for r in rows if resolved[r] is not None]
    duplicates = duplicate_rows(matched, key=lambda r: resolved[r].path)
    if duplicates:
        problems.append(f"Images with more than one row (keep one row per image):\n{listing(duplicates)}")
    by_case = {}
    for i in images:
        by_case.setdefault(i.case, []).append(os.path.basename(i.path))
    clashes = [" and ".join(files) for files in by_case.values() if len(files) > 1]
    if clashes:
        problems.append(f"Images that give the same case id (the file name without ending, characters other than "
                        f"letters, digits, '_' and '-' replaced by '_'); rename or remove one of each:\n"
                        f"{listing(clashes)}")
    labelled = {resolved[r].path for r in matched}
    unlabelled = [os.path.basename(i.path) for i in images if i.path not in labelled]
    if unlabelled:
        problems.append(f"Images without a row (add a row 'file name,class' for each, or move the image out of the "
                        f"folder):\n{listing(unlabelled)}")
    return {resolved[r].case: r for r in matched}, problems


def _check_classes(rows: list[LabelRow], classes: list[str] | None) -> tuple[list[str], list[str]]:
    """The class list (given, else the sorted names in the CSV) and the problems."""
    if classes is None:
        return sorted({r.cls for r in rows}), []
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, str) and c.strip() for c in classes):
        return classes, [f"The class list {classes!r} must hold distinct, non-empty names (--classes)."]
    unknown = [f"line {r.line}: {r.case} has class {r.cls!r}" for r in rows if r.cls not in classes]
    if unknown:
        return classes, [f"Class names not in the class list {classes} (fix the name or add it to --classes):\n"
                         f"{listing(unknown)}"]
    return classes, []


def _check_images(images: list[_Image]) -> list[str]:
    """All images readable and of one kind: PNG/JPEG (2D) or NIfTI/DICOM of one dimension, RGB or grayscale."""
    for image in images:
        _probe(image)
    unreadable = [f"{os.path.basename(i.path)}: {i.error}" for i in images if i.error]
    if unreadable:
        return [f"Images that cannot be read (replace or remove them):\n{listing(unreadable)}"]
    kinds = [lambda i: "PNG/JPEG" if i.natural else "NIfTI/DICOM", lambda i: "RGB" if i.rgb else "grayscale"]
    if all(not i.natural for i in images):
        kinds.append(lambda i: f"{i.ndim}D NIfTI/DICOM")
    problems = []
    for kind in kinds:
        groups = {}
        for image in images:
            groups.setdefault(kind(image), []).append(os.path.basename(image.path))
        if len(groups) > 1:
            counts = " and ".join(f"{len(files)} {k}" for k, files in groups.items())
            problems.append(f"Mixed images: {counts}; a dataset needs one kind, so convert these (or the others):\n"
                            f"{listing(min(groups.values(), key=len))}")
    return problems


def _natural_channels(path: str) -> list[np.ndarray]:
    """One 2D array per channel, as uint8 or uint16 for PNG."""
    with Image.open(path) as im:
        if im.mode not in _GRAY_MODES:
            arr = np.asarray(im.convert("RGB"))
            return [np.ascontiguousarray(arr[..., c]) for c in range(3)]
        arr = np.asarray(im.convert("L") if im.mode in ("1", "LA") else im)
    if arr.dtype != np.uint8:
        if arr.min() < 0 or arr.max() > 65535:
            raise ValueError(f"intensities {arr.min()}..{arr.max()} do not fit a 16-bit PNG")
        arr = arr.astype(np.uint16)
    return [arr]


def _write_case(image: _Image, images_tr: str, labels_tr: str) -> None:
    if image.natural:
        channels = _natural_channels(image.path)
        for c, arr in enumerate(channels):
            Image.fromarray(arr).save(os.path.join(images_tr, f"{image.case}_{c:04d}.png"))
        Image.fromarray(np.ones(channels[0].shape, np.uint8)).save(os.path.join(labels_tr, f"{image.case}.png"))
        return
    img = sitk.ReadImage(image.path)
    channels = [sitk.VectorIndexSelectionCast(img, c) for c in range(3)] if image.rgb else [img]
    for c, ch in enumerate(channels):
        sitk.WriteImage(ch, os.path.join(images_tr, f"{image.case}_{c:04d}.nii.gz"), useCompression=True)
    mask = sitk.GetImageFromArray(np.ones(sitk.GetArrayViewFromImage(channels[0]).shape, np.uint8))
    mask.CopyInformation(channels[0])
    sitk.WriteImage(mask, os.path.join(labels_tr, f"{image.case}.nii.gz"), useCompression=True)


def convert_cls(images_dir: str, labels_csv: str, dataset_id: int, name: str, raw_root: str | None = None,
                classes: list[str] | None = None, id_column: str | None = None,
                class_column: str | None = None) -> str:
    """Writes <raw_root or $nnUNet_raw>/DatasetXXX_NAME from a folder of images and a CSV of (file name, class name)
    rows (columns by name, default the first two); returns the dataset folder. Refuses, writing nothing, on any
    problem with the inputs or when the dataset id is taken."""
    raw_root = _raw_root(raw_root)
    _check_target(raw_root, dataset_id, name)
    rows = read_label_rows(labels_csv, id_column, class_column)
    if not rows:
        raise KDError(f"Label table {labels_csv} has no rows. Add one row 'file name,class' per image.")
    images = _scan(images_dir)
    case_rows, problems = _match(rows, images)
    classes, class_problems = _check_classes(rows, classes)
    problems += class_problems + _check_images(images)
    if problems:
        raise KDError(f"Cannot convert {images_dir} with {labels_csv}; nothing was written. Fix these and rerun:\n"
                      + "\n".join(problems))

    folder = os.path.join(raw_root, f"Dataset{dataset_id:03d}_{name}")
    os.makedirs(raw_root, exist_ok=True)
    tmp = os.path.join(raw_root, f".{os.path.basename(folder)}.{uuid.uuid4().hex[:8]}.tmp")  # hidden from nnU-Net
    images_tr, labels_tr = os.path.join(tmp, "imagesTr"), os.path.join(tmp, "labelsTr")
    try:
        os.makedirs(images_tr)
        os.makedirs(labels_tr)
        for image in sorted(images, key=lambda i: i.case):
            try:
                _write_case(image, images_tr, labels_tr)
            except (OSError, RuntimeError, ValueError) as e:
                raise KDError(f"Cannot convert {image.path} ({_reason(e)}); nothing was written. Replace or remove "
                              f"the image and its row, and rerun.") from None
        first = images[0]
        channel_names = ["R", "G", "B"] if first.rgb else ["image"]
        save_json({
            "channel_names": {str(c): n for c, n in enumerate(channel_names)},
            "labels": {"background": 0, "image": 1},
            "numTraining": len(images),
            "file_ending": ".png" if first.natural else ".nii.gz",
            CLASSES_KEY: classes,
            "name": name,
            "description": f"Image classification: the class of each case is in {LABELS_CSV}, labelsTr holds "
                           f"all-ones masks.",
        }, os.path.join(tmp, "dataset.json"), sort_keys=False)
        write_label_rows(os.path.join(tmp, LABELS_CSV), [(c, case_rows[c].cls) for c in sorted(case_rows)])
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
