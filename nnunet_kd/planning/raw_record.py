"""A record of the raw files a dataset's fingerprint and preprocessed data were made from, so that a dataset whose raw
files changed (re-converted under the same name, cases added, removed or edited) is never trained on stale data.

Size and modification time of every training image, label and the dataset.json, plus each file's sha256: a file whose
time changed but whose content did not (a copy without timestamps) still matches.
"""
import os

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import save_json_atomic
from nnunet_kd.core.teachers import file_sha256

RECORD = "nnunet_kd_raw_files.json"


def raw_files(ds) -> dict:
    """{path relative to the raw dataset folder: [size, mtime_ns]} of what nnU-Net reads for ds's training data."""
    paths = [join(ds.raw_folder, "dataset.json")] + [f for c in ds.cases.values() for f in c["images"] + [c["label"]]]
    out = {}
    for p in paths:
        st = os.stat(p)
        out[os.path.relpath(os.path.normpath(p), ds.raw_folder)] = [st.st_size, st.st_mtime_ns]
    return out


def write_record(ds) -> None:
    """Records ds's raw files in its preprocessed folder (once: an existing record is what the data was made from)."""
    path = join(ds.preprocessed_folder, RECORD)
    if not isfile(path):
        files = raw_files(ds)
        save_json_atomic({rel: stat + [file_sha256(join(ds.raw_folder, rel))] for rel, stat in files.items()}, path)


def check_record(ds) -> None:
    """Raises KDError when ds's raw files differ from those its preprocessed folder was made from."""
    path = join(ds.preprocessed_folder, RECORD)
    if not isfile(path):
        return
    recorded, now = load_json(path), raw_files(ds)
    added, removed = sorted(set(now) - set(recorded)), sorted(set(recorded) - set(now))
    changed = sorted(rel for rel in set(now) & set(recorded) if now[rel][0] != recorded[rel][0] or (
        now[rel][1] != recorded[rel][1] and file_sha256(join(ds.raw_folder, rel)) != recorded[rel][2]))
    if added or removed or changed:
        what = "; ".join(f"{n} {kind} (e.g. {files[:3]})" for kind, files, n in (
            ("added", added, len(added)), ("removed", removed, len(removed)), ("changed", changed, len(changed)))
            if files)
        raise KDError(f"The raw files of {ds.name} differ from those its fingerprint and preprocessed data in "
                      f"{ds.preprocessed_folder} were made from: {what} (recorded in {path}). Training on them would "
                      f"use stale data. Move that preprocessed folder aside (and the models trained on it in "
                      f"nnUNet_results) and run again to plan anew, or restore the raw files.")
