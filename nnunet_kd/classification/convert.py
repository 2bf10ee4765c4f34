"""`nnunet_kd convert-cls`: a folder of images plus a CSV of class names -> an nnU-Net raw classification dataset.

nnU-Net needs a segmentation for every training case, so labelsTr holds an all-ones mask ("image") of each image's
shape; the class of each case is in labels.csv and the class names in dataset.json's `classes`. PNG and JPEG images
become PNG files (nnU-Net's 2D reader does not read JPEG), RGB split into the channels R, G, B; NIfTI and DICOM images
become .nii.gz with their geometry. All inputs are checked before anything is written, and the dataset appears only
once complete: it is written into a hidden folder beside it and renamed.
"""
import os

import numpy as np
import SimpleITK as sitk
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
from PIL import Image

from nnunet_kd.classification.labels import (CLASSES_KEY, LABELS_CSV, LabelRow, duplicate_rows, read_label_rows,
                                             write_label_rows)
from nnunet_kd.data.raw_images import (NATURAL_ENDINGS, SITK_ENDINGS, ImageFile, check_images, check_new_dataset,
                                       error_reason, natural_channels, raw_root_folder, scan_images)
from nnunet_kd.core.errors import KDError, listing
from nnunet_kd.core.files import staged_folder
from nnunet_kd.run.progress import cases_bar


def _match(rows: list[LabelRow], images: list[ImageFile]) -> tuple[dict[str, LabelRow], list[str]]:
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


def _write_case(image: ImageFile, images_tr: str, labels_tr: str) -> None:
    if image.natural:
        channels = natural_channels(image.path)
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
    raw_root = raw_root_folder(raw_root)
    check_new_dataset(raw_root, dataset_id, name)
    try:
        rows = read_label_rows(labels_csv, id_column, class_column)
    except KDError as e:
        raise KDError(f"{e} Convert-cls: nothing was written.") from None
    if not rows:
        raise KDError(f"Label table {labels_csv} has no rows. Add one row 'file name,class' per image.")
    images = scan_images(images_dir)
    case_rows, problems = _match(rows, images)
    classes, class_problems = _check_classes(rows, classes)
    problems += class_problems + check_images(images)
    if problems:
        raise KDError(f"Cannot convert {images_dir} with {labels_csv}; nothing was written. Fix these and rerun:\n"
                      + "\n".join(problems))

    folder = os.path.join(raw_root, f"Dataset{dataset_id:03d}_{name}")
    with staged_folder(folder) as tmp:
        images_tr, labels_tr = os.path.join(tmp, "imagesTr"), os.path.join(tmp, "labelsTr")
        os.makedirs(images_tr)
        os.makedirs(labels_tr)
        for image in cases_bar(sorted(images, key=lambda i: i.case), f"convert-cls: writing {name}"):
            try:
                _write_case(image, images_tr, labels_tr)
            except (OSError, RuntimeError, ValueError) as e:
                raise KDError(f"Cannot convert {image.path} ({error_reason(e)}); nothing was written. Replace or remove "
                              f"the image and its row, and rerun.") from None
        first = images[0]
        channel_names = ["R", "G", "B"] if first.rgb else ["image"]
        generate_dataset_json(tmp, dict(enumerate(channel_names)), {"background": 0, "image": 1}, len(images),
                              ".png" if first.natural else ".nii.gz", dataset_name=name,
                              converted_by="nnunet_kd convert-cls", license="see the source data",
                              description=f"Image classification: the class of each case is in {LABELS_CSV}, "
                                          f"labelsTr holds all-ones masks.", **{CLASSES_KEY: classes})
        write_label_rows(os.path.join(tmp, LABELS_CSV), [(c, case_rows[c].cls) for c in sorted(case_rows)])
    return folder
