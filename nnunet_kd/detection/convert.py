"""`nnunet_kd convert-det`: a COCO JSON file plus its image folder -> an nnU-Net raw 2D detection dataset.

Images become imagesTr PNG files (RGB split into the channels R, G, B, as `convert-cls` does). The boxes of each image
are rasterised into an instance map (`nnunet_kd.detection.boxes`: box convention and overlap rule), written as the
case's labelsTr PNG, so that nnU-Net carries them through preprocessing and augmentation like a segmentation; the
instance of an image's i-th annotation (in file order) is i. The original boxes, as (x0, y0, x1, y1) with their
category names, are in boxes.json in the dataset folder, the category names (ordered by COCO category id) in
dataset.json's `detection`. Everything is checked before anything is written, and the dataset appears only once
complete: it is written into a hidden folder beside it and renamed.
"""
import json
import os
import re
from dataclasses import dataclass, field

from batchgenerators.utilities.file_and_folder_operations import save_json
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
from PIL import Image

from nnunet_kd.data.raw_images import (NATURAL_ENDINGS, ImageFile, check_images, check_new_dataset, error_reason,
                                       natural_channels, raw_root_folder)
from nnunet_kd.detection.boxes import rasterise
from nnunet_kd.detection.labels import BOXES_JSON, DETECTION_KEY, is_id, numbers
from nnunet_kd.core.errors import KDError, listing
from nnunet_kd.core.files import staged_folder
from nnunet_kd.run.progress import cases_bar

MAX_INSTANCES = 255  # instance maps are uint8 PNG files
_COCO_KEYS = ("images", "annotations", "categories")


@dataclass
class _Entry:
    """One entry of the COCO `images` list whose file exists."""
    image_id: int
    coco: dict  # the entry itself
    file: ImageFile
    size: tuple[int, int] | None = None  # (H, W) of the file, once readable
    boxes: list = field(default_factory=list)  # (annotation id, (x0, y0, x1, y1), category index)

    def __str__(self) -> str:
        return f"image {self.image_id}, {self.coco['file_name']}"


def _section(title: str, items: list) -> list[str]:
    return [f"{title}:\n{listing(items)}"] if items else []


def _load(coco_json: str) -> dict:
    if not os.path.isfile(coco_json):
        raise KDError(f"COCO file {coco_json} does not exist. Pass the annotation JSON file (--coco).")
    try:
        with open(coco_json, encoding="utf-8") as f:
            coco = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:  # also integers of more than 4300 digits
        raise KDError(f"COCO file {coco_json} is not readable JSON ({e}); nothing was written. Fix the file.") from None
    if not isinstance(coco, dict):
        raise KDError(f"COCO file {coco_json} holds a {type(coco).__name__}, not an object with the lists "
                      f"{', '.join(_COCO_KEYS)}; nothing was written. Fix the file.")
    bad = [k for k in _COCO_KEYS if not isinstance(coco.get(k), list)]
    if bad:
        raise KDError(f"COCO file {coco_json} lacks the list(s) {', '.join(bad)} (a COCO object detection file has "
                      f"'images', 'annotations' and 'categories'); nothing was written. Fix the file.")
    return coco


def _categories(entries: list) -> tuple[list[str], dict[int, int], list[str]]:
    """Category names ordered by id, category id -> index into them, and the problems."""
    valid, malformed, duplicates = [], [], []
    for k, c in enumerate(entries):
        if not (isinstance(c, dict) and is_id(c.get("id")) and isinstance(c.get("name"), str) and c["name"].strip()):
            malformed.append(f"categories[{k}]: {c!r}")
        elif any(c["id"] == v["id"] or c["name"] == v["name"] for v in valid):
            duplicates.append(f"category {c['id']}: {c['name']!r}")
        else:
            valid.append(c)
    problems = _section("Categories without an integer 'id' and a non-empty 'name'", malformed)
    problems += _section("Categories with a duplicate id or name (keep one category per id and name)", duplicates)
    if not entries:
        problems.append("The 'categories' list is empty: add the categories the annotations refer to.")
    valid.sort(key=lambda c: c["id"])
    return [c["name"] for c in valid], {c["id"]: k for k, c in enumerate(valid)}, problems


def _images(entries: list, images_dir: str) -> tuple[dict[int, _Entry], list[str]]:
    """Image id -> entry of each image with an existing file, and the problems."""
    images, seen, malformed, duplicates, outside, unsupported, missing = {}, {}, [], [], [], [], []
    root = os.path.realpath(images_dir)
    for k, e in enumerate(entries):
        if not (isinstance(e, dict) and is_id(e.get("id")) and isinstance(e.get("file_name"), str)
                and e["file_name"].strip()):
            malformed.append(f"images[{k}]: {e!r}")
            continue
        name, path = e["file_name"], os.path.realpath(os.path.join(images_dir, e["file_name"]))
        ending = next((x for x in NATURAL_ENDINGS if name.lower().endswith(x)), None)
        if e["id"] in seen:
            duplicates.append(f"image {e['id']}: {name} (also {seen[e['id']]})")
            continue
        seen[e["id"]] = name
        if os.path.commonpath([path, root]) != root:
            outside.append(f"image {e['id']}: {name}")
        elif ending is None:
            unsupported.append(f"image {e['id']}: {name}")
        elif not os.path.isfile(path):
            missing.append(f"image {e['id']}: {name}")
        else:
            stem = os.path.basename(name)[:-len(ending)]
            images[e["id"]] = _Entry(e["id"], e, ImageFile(path, stem, re.sub(r"[^A-Za-z0-9_-]", "_", stem), True))
    problems = _section("Image entries without an integer 'id' or a 'file_name'", malformed)
    problems += _section("Image entries with a duplicate id (keep one entry per id)", duplicates)
    problems += _section(f"Image entries whose file lies outside {images_dir} (absolute, '..' or a link out of it); "
                         f"give 'file_name' relative to the image folder, subfolders allowed", outside)
    problems += _section(f"Image entries that are not PNG or JPEG files ({', '.join(NATURAL_ENDINGS)}); convert "
                         f"them", unsupported)
    problems += _section(f"Image entries whose file is missing in {images_dir} (fix 'file_name', relative to the "
                         f"image folder, or add the file)", missing)
    by_case = {}
    for entry in images.values():
        by_case.setdefault(entry.file.case, []).append(str(entry))
    problems += _section("Image entries that give the same case id (the file name without folder and ending, "
                         "characters other than letters, digits, '_' and '-' replaced by '_'); rename or remove one "
                         "of each", [" and ".join(v) for v in by_case.values() if len(v) > 1])
    file_problems = check_images([e.file for e in images.values()]) if images else []
    if not file_problems:
        file_problems = _section("Image entries whose 'width' or 'height' differ from the file (fix or drop them)",
                                 _sizes(images))
    return images, problems + file_problems


def _sizes(images: dict[int, _Entry]) -> list[str]:
    """Reads each image's size from its file; returns the entries whose width or height differ."""
    wrong = []
    for entry in images.values():
        with Image.open(entry.file.path) as im:
            entry.size = im.size[::-1]
        given = entry.coco.get("height", entry.size[0]), entry.coco.get("width", entry.size[1])
        if not all(is_id(v) for v in given):
            wrong.append(f"{entry}: 'width' and 'height' must be integers, not {entry.coco.get('width')!r} x "
                         f"{entry.coco.get('height')!r}")
        elif given != entry.size:
            wrong.append(f"{entry}: the file is {entry.size[1]} x {entry.size[0]} (width x height), the entry says "
                         f"{entry.coco.get('width')} x {entry.coco.get('height')}")
    return wrong


def _annotations(entries: list, images: dict[int, _Entry], category_index: dict[int, int],
                 all_image_ids: set) -> list[str]:
    """Adds each valid annotation to its image's boxes; returns the problems."""
    found = {title: [] for title in (
        "Annotations without an integer 'id', 'image_id' and 'category_id' and a 'bbox'",
        "Annotations with a duplicate id (give each annotation its own id)",
        "Annotations whose image_id is not in 'images' (fix the id or add the image entry)",
        f"Annotations with a category_id not in 'categories' (known ids: {sorted(category_index)}); fix the id or "
        f"add the category",
        "Annotations whose bbox is not four numbers [x, y, width, height]",
        "Annotations with a zero or negative width or height (fix or remove them)",
        "Annotations with boxes outside the image (x, y >= 0, x + width <= image width, y + height <= image "
        "height; fix or remove them)")}
    malformed, duplicate, orphan, unknown, not_a_box, empty, outside = found.values()
    seen = set()
    for k, a in enumerate(entries):
        if not (isinstance(a, dict) and all(is_id(a.get(key)) for key in ("id", "image_id", "category_id"))
                and "bbox" in a):
            malformed.append(f"annotations[{k}]: {a!r}")
            continue
        entry = images.get(a["image_id"])
        where = f"annotation {a['id']} ({entry or 'image ' + str(a['image_id'])})"
        issues = [
            (duplicate, where, a["id"] in seen),
            (orphan, where, a["image_id"] not in all_image_ids),
            (unknown, f"{where}: category_id {a['category_id']}", a["category_id"] not in category_index),
            (not_a_box, f"{where}: bbox {a['bbox']!r}", not numbers(a["bbox"], 4)),
        ]
        seen.add(a["id"])
        if numbers(a["bbox"], 4):
            x, y, w, h = a["bbox"]
            issues.append((empty, f"{where}: bbox {a['bbox']}", w <= 0 or h <= 0))
            if entry and entry.size:
                issues.append((outside, f"{where}: bbox {a['bbox']} in a {entry.size[1]} x {entry.size[0]} image",
                               w > 0 and h > 0 and (x < 0 or y < 0 or x + w > entry.size[1] or y + h > entry.size[0])))
        for target, text, bad in issues:
            if bad:
                target.append(text)
        if entry and not any(bad for *_, bad in issues):
            x, y, w, h = a["bbox"]
            entry.boxes.append((a["id"], (x, y, x + w, y + h), category_index[a["category_id"]]))
    return [p for title, items in found.items() for p in _section(title, items)]


def _instance_problems(images: dict[int, _Entry]) -> list[str]:
    """Images with more boxes than a uint8 instance map holds, and boxes hidden under smaller ones."""
    crowded, hidden = [], []
    for entry in images.values():
        if len(entry.boxes) > MAX_INSTANCES:
            crowded.append(f"{entry}: {len(entry.boxes)} boxes")
        elif entry.size:
            _, ids = rasterise([b for _, b, _ in entry.boxes], entry.size)
            hidden += [f"annotation {entry.boxes[i - 1][0]} ({entry}): box {list(entry.boxes[i - 1][1])}" for i in ids]
    problems = _section(f"Images with more than {MAX_INSTANCES} boxes (the instance map is a uint8 PNG); split or "
                        f"thin out their annotations", crowded)
    problems += _section("Boxes entirely covered by smaller boxes of the same image (smaller boxes are painted on "
                         "top, so these would vanish); remove the duplicates or the covering boxes", hidden)
    if not problems and not any(e.boxes for e in images.values()):
        problems.append("There are no annotations: a detection dataset needs boxes.")
    return problems


def convert_det(coco_json: str, images_dir: str, dataset_id: int, name: str, raw_root: str | None = None) -> str:
    """Writes <raw_root or $nnUNet_raw>/DatasetXXX_NAME from a COCO object detection file and the folder its
    'file_name's are relative to; returns the dataset folder. Refuses, writing nothing, on any problem with the inputs
    or when the dataset id is taken. Images without annotations are kept, with no boxes."""
    raw_root = raw_root_folder(raw_root)
    check_new_dataset(raw_root, dataset_id, name)
    coco = _load(coco_json)
    if not os.path.isdir(images_dir):
        raise KDError(f"Image folder {images_dir} does not exist. Pass the folder holding the images (--images).")
    names, category_index, problems = _categories(coco["categories"])
    images, image_problems = _images(coco["images"], images_dir)
    all_image_ids = {e.get("id") for e in coco["images"] if isinstance(e, dict)}
    problems += image_problems + _annotations(coco["annotations"], images, category_index, all_image_ids)
    if not problems:
        problems = _instance_problems(images)
    if problems:
        raise KDError(f"Cannot convert {coco_json} with the images in {images_dir}; nothing was written. Fix these "
                      f"and rerun:\n" + "\n".join(problems))

    folder = os.path.join(raw_root, f"Dataset{dataset_id:03d}_{name}")
    boxes = {}
    with staged_folder(folder) as tmp:
        images_tr, labels_tr = os.path.join(tmp, "imagesTr"), os.path.join(tmp, "labelsTr")
        os.makedirs(images_tr)
        os.makedirs(labels_tr)
        for entry in cases_bar(sorted(images.values(), key=lambda e: e.file.case), f"convert-det: writing {name}"):
            case = entry.file.case
            try:
                for c, arr in enumerate(natural_channels(entry.file.path)):
                    Image.fromarray(arr).save(os.path.join(images_tr, f"{case}_{c:04d}.png"))
            except (OSError, ValueError) as e:
                raise KDError(f"Cannot convert {entry.file.path} ({error_reason(e)}); nothing was written. Replace the "
                              f"image or remove its entry and annotations, and rerun.") from None
            seg, _ = rasterise([b for _, b, _ in entry.boxes], entry.size)
            Image.fromarray(seg).save(os.path.join(labels_tr, f"{case}.png"))
            boxes[case] = [{"instance": i, "category": names[cat], "bbox": list(box)}
                           for i, (_, box, cat) in enumerate(entry.boxes, start=1)]
        most = max(len(b) for b in boxes.values())
        # nnU-Net needs consecutive labels, the same for every case: as many instances as the fullest image has
        generate_dataset_json(
            tmp, dict(enumerate(["R", "G", "B"] if next(iter(images.values())).file.rgb else ["image"])),
            {"background": 0, **{f"instance_{i}": i for i in range(1, most + 1)}}, len(images), ".png",
            dataset_name=name, converted_by="nnunet_kd convert-det", license="see the source data",
            description=f"2D object detection: labelsTr holds instance maps of the boxes in {BOXES_JSON}.",
            **{DETECTION_KEY: {"categories": names}})
        save_json(boxes, os.path.join(tmp, BOXES_JSON), sort_keys=False)
    return folder
