"""nnU-Net dataset names and ids (DatasetXXX_Name), with errors that say where nnU-Net looked."""
import os
import re

from nnunet_kd.core.errors import KDError

DERIVED_KEY = "nnunet_kd_derived_from"  # dataset.json key of a channel-mapped copy: the dataset it was made from


def dataset_name(dataset_id) -> str:
    """nnU-Net's id -> name conversion with an error that says where it looked."""
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    if not (str(dataset_id).isdigit() or re.fullmatch(r"Dataset\d{3,}_[^/\\]+", str(dataset_id))):
        raise KDError(f"Dataset {dataset_id!r} is neither an id (e.g. 11) nor a dataset folder name DatasetXXX_Name "
                      f"(one folder directly inside nnUNet_raw, no path).")
    try:
        return maybe_convert_to_dataset_name(dataset_id)
    except (RuntimeError, ValueError, AssertionError):
        raise KDError(f"Dataset {dataset_id!r} does not exist (or its id is ambiguous): no unique folder "
                      f"Dataset{str(dataset_id).zfill(3)}_* in nnUNet_raw={os.environ.get('nnUNet_raw')}, "
                      f"nnUNet_preprocessed={os.environ.get('nnUNet_preprocessed')} or "
                      f"nnUNet_results={os.environ.get('nnUNet_results')}. Check the id and these folders.") from None


def dataset_id(name: str) -> int:
    """The id of a dataset name DatasetXXX_Name."""
    from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id
    return convert_dataset_name_to_id(str(name))


def raw_label_folder(dataset_name: str, dataset_json: dict, what: str) -> str:
    """The raw folder holding a dataset's own label files (a channel-mapped copy's are its original's); what: the files
    and who reads them, for the error when nnUNet_raw is not set."""
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise KDError(f"nnUNet_raw is not set; {what} from each dataset's raw folder. Export nnUNet_raw.")
    return os.path.join(raw, dataset_json[DERIVED_KEY]["dataset"] if DERIVED_KEY in dataset_json else dataset_name)
