"""Image-level class labels of an nnU-Net raw dataset: `classes` in dataset.json and `labels.csv` (columns case,class)
in the dataset folder."""
import copy
import csv
import os
from collections.abc import Iterable
from typing import NamedTuple

import pandas as pd
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from nnunet_kd.core.errors import KDError, listing

CLASSES_KEY = "classes"  # dataset.json: list of class names, index = class id
LABELS_CSV = "labels.csv"  # raw dataset folder: one row per training case
TEST_LABELS_CSV = "labelsTs.csv"  # raw dataset folder, beside imagesTs: one row per test case
CREATE_HINT = ("Create the dataset with `nnunet_kd convert-cls --images DIR --labels CSV -d ID -n NAME`, or add "
               f"'{CLASSES_KEY}' (a list of class names) to dataset.json and a {LABELS_CSV} with columns case,class.")


class LabelRow(NamedTuple):
    line: int  # line in the CSV file, the header being line 1
    case: str
    cls: str


def class_names(dataset_json: dict) -> list[str]:
    """The dataset's class names, index = class id."""
    classes = dataset_json.get(CLASSES_KEY)
    if not classes:
        raise KDError(f"dataset.json of '{dataset_json.get('name', '?')}' has no '{CLASSES_KEY}' list, so it is not "
                      f"a classification dataset. {CREATE_HINT}")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c.strip() for c in classes) \
            or len(set(classes)) != len(classes):
        raise KDError(f"'{CLASSES_KEY}' in dataset.json of '{dataset_json.get('name', '?')}' must be a list of "
                      f"distinct, non-empty class names, got {classes!r}. Fix the list in dataset.json.")
    return classes


def read_label_rows(path: str, id_column: str | None = None, class_column: str | None = None) -> list[LabelRow]:
    """Rows of a CSV of (id, class name) as strings; columns by name, default the first and second column. Blank
    lines are skipped."""
    if not os.path.isfile(path):
        raise KDError(f"Label table {path} does not exist. {CREATE_HINT}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise KDError(f"Label table {path} is not a readable CSV file ({e}). Write it as comma-separated text with "
                      f"a header line, one row per image.") from None
    columns = list(table.columns)
    if len(columns) < 2:
        raise KDError(f"Label table {path} has the columns {columns}, but needs an id and a class column (by default "
                      f"the first two). Write it as comma-separated text with a header line, e.g. 'case,class'.")
    id_column = columns[0] if id_column is None else id_column
    class_column = columns[1] if class_column is None else class_column
    if id_column == class_column:
        raise KDError(f"Label table {path}: the id and the class column are both '{id_column}', which would make every "
                      f"image its own class. Name two different columns (convert-cls: --id-column, --class-column).")
    missing = [c for c in (id_column, class_column) if c not in columns]
    if missing:
        raise KDError(f"Label table {path} has no column {missing}; its columns are {columns}. Fix the header line, "
                      f"or name columns that exist (convert-cls: --id-column, --class-column).")
    rows, empty = [], []
    for index, case, cls in zip(table.index, table[id_column], table[class_column]):
        case, cls = case.strip(), cls.strip()
        row = LabelRow(int(index) + 2, case, cls)
        if case and cls:
            rows.append(row)
        elif case or cls or any(v.strip() for v in table.loc[index]):
            empty.append(f"line {row.line}: id {case!r}, class {cls!r}")
    if empty:
        raise KDError(f"Label table {path} has rows with an empty id or class; give every row both:\n"
                      + listing(empty))
    return rows


def write_label_rows(path: str, rows: Iterable[tuple[str, str]]) -> None:
    """Writes (case, class name) rows as a CSV with the columns case,class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["case", "class"])
        writer.writerows(rows)


def duplicate_rows(rows: list[LabelRow], key=lambda r: r.case) -> list[str]:
    """'line N: id (also line M)' for every row whose key an earlier row already has."""
    first, out = {}, []
    for row in rows:
        k = key(row)
        if k in first:
            out.append(f"line {row.line}: {row.case} (also line {first[k]})")
        else:
            first[k] = row.line
    return out


def read_case_classes(raw_folder: str, dataset_json: dict | None = None) -> dict[str, int]:
    """Training case id -> class index (into dataset.json's `classes`) from <raw_folder>/labels.csv, checked against
    the dataset's training images."""
    if dataset_json is None:
        dataset_json = load_json(os.path.join(raw_folder, "dataset.json"))
    names = class_names(dataset_json)
    path = os.path.join(raw_folder, LABELS_CSV)
    if not os.path.isfile(path):
        raise KDError(f"{raw_folder} has no {LABELS_CSV} with the class of each training case. {CREATE_HINT}")
    rows = read_label_rows(path, "case", "class")
    # nnU-Net rewrites the paths of a `dataset` entry in place: give it a copy
    cases = set(get_filenames_of_train_images_and_targets(raw_folder, copy.deepcopy(dataset_json)))

    problems = []
    unknown = [f"line {r.line}: {r.case} has class {r.cls!r}" for r in rows if r.cls not in names]
    if unknown:
        problems.append(f"Class names not in dataset.json's '{CLASSES_KEY}' {names} (fix the name or add the class):"
                        f"\n{listing(unknown)}")
    duplicates = duplicate_rows(rows)
    if duplicates:
        problems.append(f"Cases with more than one row (keep one row per case):\n{listing(duplicates)}")
    unlabelled = sorted(cases - {r.case for r in rows})
    if unlabelled:
        problems.append(f"Training cases without a row (add a row 'case,class' for each):\n{listing(unlabelled)}")
    orphans = [f"line {r.line}: {r.case}" for r in rows if r.case not in cases]
    if orphans:
        problems.append(f"Rows without a training case in imagesTr (remove them or add the images):\n"
                        f"{listing(orphans)}")
    if problems:
        raise KDError(f"{path} does not match the training cases of {raw_folder}.\n" + "\n".join(problems))
    return {r.case: names.index(r.cls) for r in rows}
