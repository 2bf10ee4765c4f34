"""Opt-in unlabelled target images for the source teachers' domain loss (``nnunet_kd plan --extra-target-images``).

They are preprocessed with the target's shared plans next to the target's data, in ``<data_identifier>_unlabelled``,
with the nonzero mask nnU-Net derives for unlabelled cases as their (never used) segmentation.
"""
import os

from batchgenerators.utilities.file_and_folder_operations import isdir, join, maybe_mkdir_p
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder, \
    get_identifiers_from_splitted_dataset_folder

from nnunet_kd.core.errors import KDError
from nnunet_kd.run.progress import cases_bar

PREFIX = "unlabelled_"


def unlabelled_folder(target_preprocessed: str, data_identifier: str) -> str:
    return join(target_preprocessed, data_identifier + "_unlabelled")


def find_cases(images_folder: str, dataset_json: dict) -> dict:
    """case id -> image files in channel order; the folder follows nnU-Net's imagesTs naming (case_XXXX.ext)."""
    if not isdir(images_folder):
        raise KDError(f"--extra-target-images {images_folder} is not a folder.")
    ending = dataset_json["file_ending"]
    ids = [str(i) for i in get_identifiers_from_splitted_dataset_folder(images_folder, ending)]
    if not ids:
        raise KDError(f"--extra-target-images {images_folder} holds no images named CASE_0000{ending} (nnU-Net's "
                      f"naming, one file per channel).")
    files = create_lists_from_splitted_dataset_folder(images_folder, ending, ids, num_processes=1)
    n_channels = len(dataset_json["channel_names"])
    wrong = [i for i, f in zip(ids, files) if len(f) != n_channels]
    if wrong:
        raise KDError(f"--extra-target-images {images_folder}: cases {wrong[:5]} do not have one file for each of the "
                      f"target's {n_channels} channels {list(dataset_json['channel_names'].values())}.")
    return dict(zip(ids, files))


def _unlabelled(preprocessor_class):
    """The plans' preprocessor, marking cases as having no foreground to sample (nnU-Net's loader reads the key)."""
    def run_case(self, *args, **kwargs):
        data, seg, properties = preprocessor_class.run_case(self, *args, **kwargs)
        properties["class_locations"] = {}
        return data, seg, properties
    return type("Unlabelled" + preprocessor_class.__name__, (preprocessor_class,), {"run_case": run_case})


def preprocess_unlabelled(cases: dict, plans: dict, configuration: str, dataset_json: dict, out_folder: str) -> None:
    """Preprocesses the cases that are not in out_folder yet."""
    pm = PlansManager(plans)
    cm = pm.get_configuration(configuration)
    maybe_mkdir_p(out_folder)
    done = set(nnUNetDatasetBlosc2.get_identifiers(out_folder))
    preprocessor = _unlabelled(cm.preprocessor_class)(verbose=False)
    todo = {case: files for case, files in cases.items() if PREFIX + case not in done}
    for case, files in cases_bar(todo.items(), "unlabelled target images: preprocessing", len(todo)):
        preprocessor.run_case_save(join(out_folder, PREFIX + case), files, None, pm, cm, dataset_json)


def unlabelled_identifiers(folder: str) -> list[str]:
    return nnUNetDatasetBlosc2.get_identifiers(folder) if os.path.isdir(folder) else []
