"""Mapping a source's channels onto the target's, and registering a derived source dataset when needed.

A derived dataset has a raw folder holding only a ``dataset.json`` whose ``dataset`` key lists the original source
files in target channel order (relative paths), so the source's own raw and preprocessed folders are never written.
"""
import json
import os

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from nnunet_kd.core.datasets import DERIVED_KEY, dataset_id
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import save_json_atomic

CHANNEL_MAP_SYNTAX = ('--channel-map \'{"SOURCE_ID": {"TARGET_CHANNEL": "SOURCE_CHANNEL", ...}}\' '
                      '(a JSON string or a JSON file; channels by name or by index)')


def channel_list(dataset_json: dict) -> list:
    names = dataset_json.get("channel_names", dataset_json.get("modality"))
    return [names[k] for k in sorted(names, key=int)]


def resolve_channel_order(target_json: dict, source_json: dict, source_name: str, target_name: str,
                          explicit: dict[str, str] | None) -> list:
    """Index of the source channel feeding each target channel, in target order."""
    t_channels, s_channels = channel_list(target_json), channel_list(source_json)
    s_lower = [c.lower() for c in s_channels]
    order = []
    for i, t in enumerate(t_channels):
        if explicit is not None:
            ref = explicit.get(t, explicit.get(str(i)))
            if ref is None:
                raise KDError(
                    f"--channel-map for {source_name} does not say which source channel feeds target channel "
                    f"{i} '{t}'. Target channels: {t_channels}; source channels: {s_channels}. Syntax: {CHANNEL_MAP_SYNTAX}")
            ref = str(ref)
            if ref.isdigit() and int(ref) < len(s_channels):
                order.append(int(ref))
            elif ref.lower() in s_lower:
                order.append(s_lower.index(ref.lower()))
            else:
                raise KDError(f"--channel-map for {source_name} names source channel '{ref}', which {source_name} does "
                              f"not have. Source channels: {s_channels}.")
        elif t.lower() in s_lower:
            order.append(s_lower.index(t.lower()))
        else:
            raise KDError(
                f"Target {target_name} needs channel '{t}', which source {source_name} lacks (matched by name, "
                f"case-insensitive).\n  target channels: {t_channels}\n  source channels: {s_channels}\n"
                f"Map channels explicitly with {CHANNEL_MAP_SYNTAX}, e.g. "
                f"--channel-map '{{\"{dataset_id(source_name)}\": {json.dumps({c: s_channels[0] for c in t_channels})}}}'")
    if explicit is not None:
        unknown = set(explicit) - set(t_channels) - {str(i) for i in range(len(t_channels))}
        if unknown:
            raise KDError(f"--channel-map for {source_name} names target channels {sorted(unknown)}, which target "
                          f"{target_name} does not have. Target channels: {t_channels}.")
    return order


def derived_dataset_json(raw_root: str, source_folder: str, derived_name: str, source_json: dict,
                         target_json: dict, order: list) -> dict:
    cases = get_filenames_of_train_images_and_targets(source_folder, dict(source_json))
    derived_folder = os.path.join(raw_root, derived_name)

    def rel(p):
        return os.path.relpath(p, derived_folder)

    out = {k: v for k, v in source_json.items() if k != "dataset"}
    out["channel_names"] = {str(i): c for i, c in enumerate(channel_list(target_json))}
    out["dataset"] = {k: {"images": [rel(v["images"][j]) for j in order], "label": rel(v["label"])}
                      for k, v in sorted(cases.items())}
    out["numTraining"] = len(out["dataset"])
    out[DERIVED_KEY] = {"dataset": os.path.basename(source_folder),
                        "source_channels": [channel_list(source_json)[j] for j in order]}
    return out


def register_derived(raw_root: str, derived_name: str, dataset_json: dict) -> None:
    """Writes the derived dataset's raw folder; an existing one must be identical (never overwritten)."""
    folder = os.path.join(raw_root, derived_name)
    path = os.path.join(folder, "dataset.json")
    if os.path.isfile(path):
        if load_json(path) != dataset_json:
            raise KDError(f"{path} exists and differs from the derived dataset this command would register "
                          f"({dataset_json[DERIVED_KEY]['dataset']}, channels {dataset_json[DERIVED_KEY]['source_channels']}). "
                          f"Choose another id with --derived-id, or delete that folder if it is a stale nnunet_kd one.")
        return
    os.makedirs(folder, exist_ok=True)
    save_json_atomic(dataset_json, path, indent=2)
