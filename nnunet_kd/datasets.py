"""nnU-Net dataset names and ids (DatasetXXX_Name), with errors that say where nnU-Net looked."""
import os
import re

from nnunet_kd.errors import KDError


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
