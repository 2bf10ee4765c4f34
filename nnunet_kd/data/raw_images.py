"""Raw image files of the converters (`convert-cls`, `convert-det`): finding, probing and reading them, and the checks
of the dataset a converter is about to write."""
import os
import re
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from PIL import Image

from nnunet_kd.core.errors import KDError, listing

NATURAL_ENDINGS = (".png", ".jpg", ".jpeg")  # 2D, written as .png
SITK_ENDINGS = (".nii.gz", ".nii", ".dcm")  # read with SimpleITK, written as .nii.gz
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")  # PIL modes kept as one channel (alpha dropped)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass
class ImageFile:
    path: str
    stem: str  # file name without its ending
    case: str  # the stem, sanitised
    natural: bool  # PNG/JPEG rather than NIfTI/DICOM
    ndim: int = 0
    rgb: bool = False
    error: str = ""  # why the header could not be read


def image_ending(filename: str) -> str | None:
    lower = filename.lower()
    return next((e for e in NATURAL_ENDINGS + SITK_ENDINGS if lower.endswith(e)), None)


def error_reason(e: Exception) -> str:
    """The last line of an exception's message (SimpleITK puts the C++ location first)."""
    lines = str(e).strip().splitlines()
    return lines[-1] if lines else type(e).__name__


def raw_root_folder(raw_root: str | None) -> str:
    raw_root = raw_root or os.environ.get("nnUNet_raw")
    if not raw_root:
        raise KDError("nnUNet_raw is not set: export it to the folder of nnU-Net's raw datasets (or pass raw_root).")
    return raw_root


def check_new_dataset(raw_root: str, dataset_id: int, name: str) -> None:
    """Refuses an invalid or already used dataset id or name; an existing dataset is never overwritten."""
    if not 1 <= dataset_id <= 999:
        raise KDError(f"Dataset id {dataset_id} is outside 1-999, the range of nnU-Net's DatasetXXX names. "
                      f"Pick another id (-d).")
    if not _NAME.fullmatch(name):
        raise KDError(f"Dataset name {name!r} may only hold letters, digits, '_' and '-' (nnU-Net folder names). "
                      f"Pick another name (-n).")
    # an id left in preprocessed or results (a deleted raw dataset) would make nnU-Net reuse its stale data
    roots = [raw_root] + [os.environ[k] for k in ("nnUNet_preprocessed", "nnUNet_results") if os.environ.get(k)]
    used = [os.path.join(root, d) for root in roots if os.path.isdir(root)
            for d in sorted(os.listdir(root)) if d.startswith(f"Dataset{dataset_id:03d}_")]
    if used:
        raise KDError(f"Dataset id {dataset_id} is already used by {used[0]}; nothing was written. Pick a free id "
                      f"(-d), or remove that dataset (raw, preprocessed and results) yourself if it is obsolete.")


def scan_images(images_dir: str) -> list[ImageFile]:
    if not os.path.isdir(images_dir):
        raise KDError(f"Image folder {images_dir} does not exist. Pass the folder holding the images (--images).")
    images = []
    for f in sorted(os.listdir(images_dir)):
        ending = image_ending(f)
        if ending and not f.startswith(".") and os.path.isfile(os.path.join(images_dir, f)):
            stem = f[:-len(ending)]
            images.append(ImageFile(os.path.join(images_dir, f), stem, re.sub(r"[^A-Za-z0-9_-]", "_", stem),
                                 ending in NATURAL_ENDINGS))
    if not images:
        raise KDError(f"Image folder {images_dir} holds no images with a supported ending "
                      f"({', '.join(NATURAL_ENDINGS + SITK_ENDINGS)}). Pass the folder holding the images (--images).")
    return images


def probe_image(image: ImageFile) -> None:
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
    except (OSError, RuntimeError, ValueError, Image.DecompressionBombError) as e:
        image.error = error_reason(e)


def check_images(images: list[ImageFile]) -> list[str]:
    """All images readable and of one kind: PNG/JPEG (2D) or NIfTI/DICOM of one dimension, RGB or grayscale."""
    for image in images:
        probe_image(image)
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


def natural_channels(path: str) -> list[np.ndarray]:
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
