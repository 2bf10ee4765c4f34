"""The detection dataset format: the category names in dataset.json's `detection`, the boxes of every case in
boxes.json (training cases) or boxesTs.json (test cases) in the raw dataset folder, as `nnunet_kd convert-det`
writes them."""
import json
import os

from nnunet_kd.core.errors import KDError, listing

BOXES_JSON = "boxes.json"  # raw dataset folder: the boxes of every training case
TEST_BOXES_JSON = "boxesTs.json"  # raw dataset folder, beside imagesTs: the boxes of every test case
DETECTION_KEY = "detection"  # dataset.json: {"categories": [names, index = category index]}
CREATE_HINT = "Create the dataset with `nnunet_kd convert-det --coco JSON --images DIR -d ID -n NAME`."

MAX_COORDINATE = 2 ** 31  # larger numbers are no pixel position (and Python ints may exceed any float)


def is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < MAX_COORDINATE  # False for NaN, inf


def numbers(value, n: int) -> bool:
    """Whether value is a list of n finite numbers of pixel size."""
    return isinstance(value, list) and len(value) == n and all(is_number(v) for v in value)


def categories(dataset_json: dict) -> list[str]:
    """The dataset's category names, index = category index."""
    names = (dataset_json.get(DETECTION_KEY) or {}).get("categories")
    if not isinstance(names, list) or not names or len(set(names)) != len(names) \
            or not all(isinstance(n, str) and n.strip() for n in names):
        raise KDError(f"dataset.json of '{dataset_json.get('name', '?')}' has no '{DETECTION_KEY}' entry with a list "
                      f"of distinct category names, so it is not a detection dataset. {CREATE_HINT}")
    return names


def read_boxes(raw_folder: str, filename: str = BOXES_JSON) -> dict[str, list]:
    """Case id -> its boxes [{"instance": i, "category": name, "bbox": [x0, y0, x1, y1]}] from <raw_folder>/filename
    (boxes.json for the training cases, boxesTs.json for the test cases)."""
    path = os.path.join(raw_folder, filename)
    if not os.path.isfile(path):
        raise KDError(f"{raw_folder} has no {filename} with the boxes of each case. {CREATE_HINT}")
    try:
        with open(path, encoding="utf-8") as f:
            boxes = json.load(f)
    except ValueError as e:  # not JSON, not UTF-8, or an integer beyond Python's conversion limit
        raise KDError(f"{path} is not readable JSON ({e}). Recreate the dataset. {CREATE_HINT}") from None
    bad = [case for case, items in boxes.items() if not isinstance(items, list) or not all(
        isinstance(b, dict) and is_id(b.get("instance")) and isinstance(b.get("category"), str)
        and numbers(b.get("bbox"), 4) for b in items)] if isinstance(boxes, dict) else ["(not an object of cases)"]
    if bad:
        raise KDError(f"{path} must map each case to a list of {{'instance', 'category', 'bbox': [x0, y0, x1, y1]}}; "
                      f"these cases do not:\n{listing(bad)}\nFix the file or recreate the dataset. {CREATE_HINT}")
    return boxes
