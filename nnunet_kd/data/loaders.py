"""Extra loaders of the plugin's trainers: another dataset of the same shared plans (target-domain images for the
source teacher, labelled source batches for the multi-head baseline) and the target's unlabelled images (the student's
unlabelled distillation)."""
import functools

import torch
from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class, nnUNetDatasetBlosc2
from nnunetv2.utilities.crossval_split import generate_crossval_split
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from threadpoolctl import ThreadpoolController

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import save_json_atomic
from nnunet_kd.planning.unlabelled import unlabelled_folder, unlabelled_identifiers


class _UnionDataset:
    """The cases of several nnU-Net datasets, as nnUNetDataLoader reads them (identifiers + load_case)."""

    def __init__(self, datasets):
        self._owner = {i: d for d in datasets for i in d.identifiers}
        self.identifiers = list(self._owner)

    def load_case(self, identifier):
        return self._owner[identifier].load_case(identifier)


def _shared_plans(trainer, name: str):
    """(preprocessed folder of dataset ``name``, its plans manager, its configuration) under the trainer's plans."""
    base = join(nnUNet_preprocessed.get(), name)
    plans_file = join(base, trainer.plans_manager.plans_name + ".json")
    try:
        plans = PlansManager(plans_file)
        return base, plans, plans.get_configuration(trainer.configuration_name)
    except (FileNotFoundError, KeyError):
        raise KDError(f"{name} has no shared plans {plans_file} with configuration "
                      f"{trainer.configuration_name}. Run `nnunet_kd plan` for this target and source.") from None


def dataset_loader(trainer, name: str, batch_size: int, with_labels: bool = False):
    """Batches of all preprocessed training cases of another dataset under the trainer's shared plans.

    Same patch size, view of a case (``trainer.loader_dataset``) and augmentation as the trainer's own loader. Without
    labels (the source teacher's target-domain images): random patches, the images alone augmented (batches carry
    ``data`` and ``keys``). With labels: the dataset's own label handling, like nnU-Net's training loader.
    """
    base, plans, cm = _shared_plans(trainer, name)
    folder = join(base, cm.data_identifier)
    if not isdir(folder):
        raise KDError(f"{name} has no preprocessed data in {folder}. Run `nnunet_kd plan` again; "
                      f"it preprocesses what is missing.")
    dataset_class = infer_dataset_class(folder)
    identifiers = dataset_class.get_identifiers(folder)
    fold = trainer.settings.dann.target_fold
    if not with_labels and fold is not None:
        identifiers = fold_training_keys(base, identifiers, fold)
    dataset = dataset_class(folder, identifiers)
    extra = unlabelled_folder(base, cm.data_identifier)
    if not with_labels and trainer.settings.dann.extra_target_images and unlabelled_identifiers(extra):
        dataset = _UnionDataset([dataset, nnUNetDatasetBlosc2(extra, unlabelled_identifiers(extra))])
    return _loader(trainer, trainer.loader_dataset(dataset), plans, cm, load_json(join(base, "dataset.json")),
                   batch_size, with_labels)


def unlabelled_loader(trainer, batch_size: int):
    """Batches of the trainer's own dataset's unlabelled images (``plan --extra-target-images``), augmented like its
    training batches (the student's unlabelled distillation)."""
    base, plans, cm = _shared_plans(trainer, trainer.plans_manager.dataset_name)
    extra = unlabelled_folder(base, cm.data_identifier)
    dataset = trainer.loader_dataset(nnUNetDatasetBlosc2(extra, unlabelled_identifiers(extra)))
    return _loader(trainer, dataset, plans, cm, load_json(join(base, "dataset.json")), batch_size, with_labels=False)


def has_unlabelled_images(plans: dict, configuration: str) -> bool:
    """Whether `plan --extra-target-images` preprocessed unlabelled images for the plans' dataset and configuration."""
    return bool(unlabelled_identifiers(_unlabelled_folder_of(plans, configuration)))


def check_unlabelled_images(plans: dict, configuration: str, ratio: float) -> None:
    """Raises KDError when the plans' dataset has no unlabelled images for distill.unlabelled_ratio > 0."""
    extra = _unlabelled_folder_of(plans, configuration)
    if not unlabelled_identifiers(extra):
        raise KDError(f"plans '{plans['plans_name']}': distill.unlabelled_ratio is {ratio}, but "
                      f"{plans['dataset_name']} has no unlabelled images in {extra}. Add them with `nnunet_kd plan ... "
                      f"--extra-target-images DIR`, or set distill.unlabelled_ratio to 0.")


def _unlabelled_folder_of(plans: dict, configuration: str) -> str:
    return unlabelled_folder(join(nnUNet_preprocessed.get(), plans["dataset_name"]),
                             plans["configurations"][configuration]["data_identifier"])


def _loader(trainer, dataset, plans, cm, dataset_json: dict, batch_size: int, with_labels: bool):
    label_manager = plans.get_label_manager(dataset_json)
    rotation, dummy_2d, initial_patch_size, mirror_axes = \
        trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    if with_labels:
        transforms = trainer.get_training_transforms(
            cm.patch_size, rotation, trainer._get_deep_supervision_scales(), mirror_axes, dummy_2d,
            use_mask_for_norm=cm.use_mask_for_norm, foreground_labels=label_manager.foreground_labels,
            regions=label_manager.foreground_regions if label_manager.has_regions else None,
            ignore_label=label_manager.ignore_label)
    else:
        transforms = trainer.get_training_transforms(cm.patch_size, rotation, None, mirror_axes, dummy_2d,
                                                     use_mask_for_norm=cm.use_mask_for_norm)
    # nnU-Net's masking reads the mask from the label map, so masked normalisation keeps nnU-Net's own loader
    images_only = not with_labels and not any(cm.use_mask_for_norm or ())
    loader = (_ImagesLoader if images_only else nnUNetDataLoader)(
        dataset, batch_size, initial_patch_size, cm.patch_size, label_manager,
        oversample_foreground_percent=trainer.oversample_foreground_percent if with_labels else 0.0,
        transforms=transforms)
    n = get_allowed_n_proc_DA()
    if n == 0:
        return SingleThreadedAugmenter(loader, None)
    return NonDetMultiThreadedAugmenter(loader, None, num_processes=max(1, n // 2), num_cached=max(2, n // 4),
                                        seeds=None, pin_memory=trainer.device.type == "cuda", wait_time=0.002)


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The process's thread pools, inspected once (nnU-Net's loader inspects them for every batch, ~2-4 ms)."""
    return ThreadpoolController()


class _ImagesLoader(nnUNetDataLoader):
    """nnU-Net's loader for images without labels: random patches (annotations play no part, also with an ignore
    label), the trainer's augmentation on the image alone; no label map is cropped or transformed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_ignore = False  # else nnU-Net centres patches on annotated voxels

    def generate_train_batch(self) -> dict:
        keys = self.get_indices()
        images = []
        with torch.no_grad(), _threadpools().limit(limits=1):
            for key in keys:
                data = self._data.load_case(key)[0]
                lbs, ubs = self.get_bbox(data.shape[1:], force_fg=False, class_locations=None)
                image = torch.from_numpy(crop_and_pad_nd(data, [[lo, hi] for lo, hi in zip(lbs, ubs)], 0)).float()
                images.append(self.transforms(image=image[:, 0] if self.patch_size_was_2d else image)["image"])
        return {"data": torch.stack(images), "keys": keys}


def fold_training_keys(preprocessed: str, identifiers, fold: int) -> list:
    """The training keys of a fold in the dataset's splits_final.json; where it has none yet, nnU-Net's own default
    5-fold split is written first (the one its trainers would write)."""
    path = join(preprocessed, "splits_final.json")
    if not isfile(path):
        save_json_atomic(generate_crossval_split(sorted(identifiers), seed=12345, n_splits=5), path)
    splits = load_json(path)
    if not 0 <= fold < len(splits):
        raise KDError(f"dann.target_fold is {fold}, but {path} defines folds 0-{len(splits) - 1}. Set it to the fold "
                      f"you validate on in your KD preset.")
    return sorted(set(splits[fold]["train"]) & set(identifiers))


def shutdown(loader) -> None:
    """Stops a loader's worker processes (nnU-Net does this for its own two loaders in on_train_end)."""
    if isinstance(loader, NonDetMultiThreadedAugmenter):
        loader._finish()
