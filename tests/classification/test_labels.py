import copy
import os

import pytest
from batchgenerators.utilities.file_and_folder_operations import save_json

from nnunet_kd.classification.labels import class_names, read_case_classes
from nnunet_kd.core.errors import KDError

DATASET_JSON = {"channel_names": {"0": "image"}, "labels": {"background": 0, "image": 1}, "numTraining": 3,
                "file_ending": ".png", "classes": ["cat", "dog"], "name": "Pets"}


def _dataset(folder, labels_csv: str | None = "case,class\na,cat\nb,dog\nc,cat\n", cases=("a", "b", "c"),
             dataset_json=None) -> str:
    """A raw dataset folder; only file names matter for the labels, so the images are empty files."""
    os.makedirs(os.path.join(folder, "imagesTr"))
    for case in cases:
        open(os.path.join(folder, "imagesTr", f"{case}_0000.png"), "wb").close()
    save_json(dataset_json or DATASET_JSON, os.path.join(folder, "dataset.json"))
    if labels_csv is not None:
        with open(os.path.join(folder, "labels.csv"), "w") as f:
            f.write(labels_csv)
    return str(folder)


def test_reads_class_indices(tmp_path):
    folder = _dataset(tmp_path, "case,class\na,cat\n\nb, dog \nc,cat\n")  # blank line and spaces are fine
    assert read_case_classes(folder) == {"a": 0, "b": 1, "c": 0}
    assert read_case_classes(folder, DATASET_JSON) == {"a": 0, "b": 1, "c": 0}


def test_numeric_case_ids_stay_strings(tmp_path):
    folder = _dataset(tmp_path, "case,class\n001,dog\n", cases=("001",))
    assert read_case_classes(folder) == {"001": 1}


def test_dataset_key_is_used_and_not_modified(tmp_path):
    dataset_json = dict(DATASET_JSON, dataset={
        c: {"images": [f"imagesTr/{c}_0000.png"], "label": f"labelsTr/{c}.png"} for c in ("a", "b", "c")})
    folder = _dataset(tmp_path, cases=("a", "b", "c", "unlisted"), dataset_json=dataset_json)
    before = copy.deepcopy(dataset_json)
    assert read_case_classes(folder, dataset_json) == {"a": 0, "b": 1, "c": 0}  # only the cases listed
    assert dataset_json == before


@pytest.mark.parametrize("csv, expected", [
    ("case,class\na,cat\nb,bird\nc,cat\n", ["Class names not in", "line 3: b has class 'bird'"]),
    ("case,class\na,cat\nb,dog\nc,cat\nb,cat\n", ["more than one row", "line 5: b (also line 3)"]),
    ("case,class\na,cat\nc,cat\n", ["Training cases without a row", "  b"]),
    ("case,class\na,cat\nb,dog\nc,cat\nd,dog\n", ["Rows without a training case", "line 5: d"]),
    ("case,class\na,cat\nb,\nc,cat\n", ["empty id or class", "line 3: id 'b', class ''"]),
    ("case,label\na,cat\n", ["no column ['class']"]),
])
def test_bad_labels_list_the_offending_rows(tmp_path, csv, expected):
    folder = _dataset(tmp_path, csv)
    with pytest.raises(KDError) as e:
        read_case_classes(folder)
    assert os.path.join(folder, "labels.csv") in str(e.value)
    for text in expected:
        assert text in str(e.value)


def test_all_problems_at_once_and_long_lists_are_cut(tmp_path):
    rows = "".join(f"x{i},cat\n" for i in range(15))
    folder = _dataset(tmp_path, "case,class\na,fish\n" + rows)
    message = str(pytest.raises(KDError, read_case_classes, folder).value)
    assert "line 2: a has class 'fish'" in message and "  b\n  c" in message
    assert "line 3: x0" in message and "line 12: x9" in message and "line 13: x10" not in message
    assert "... and 5 more" in message


def test_missing_labels_or_classes_say_how_to_create_them(tmp_path):
    folder = _dataset(tmp_path / "no_csv", labels_csv=None)
    assert "nnunet_kd convert-cls" in str(pytest.raises(KDError, read_case_classes, folder).value)
    no_classes = {k: v for k, v in DATASET_JSON.items() if k != "classes"}
    folder = _dataset(tmp_path / "no_classes", dataset_json=no_classes)
    assert "nnunet_kd convert-cls" in str(pytest.raises(KDError, read_case_classes, folder).value)


def test_class_names(tmp_path):
    assert class_names(DATASET_JSON) == ["cat", "dog"]
    with pytest.raises(KDError, match="distinct"):
        class_names(dict(DATASET_JSON, classes=["cat", "cat"]))
    with pytest.raises(KDError, match="no 'classes'"):
        class_names({"name": "Seg"})
