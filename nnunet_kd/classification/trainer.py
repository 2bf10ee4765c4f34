"""What turns an nnU-Net trainer of the plugin into an image classifier (the dataset-specific one is in baseline.py).

nnU-Net's preprocessing (cropping, resampling, normalisation) and augmentation stay; each whole preprocessed image is
resized to the patch size when it is loaded, the class of a case comes from the dataset's ``labels.csv`` through the
batch's ``keys``, the loss is (class-weighted) cross-entropy, ``checkpoint_best`` follows the EMA of the validation
balanced accuracy (logged where nnU-Net logs its pseudo Dice) and the final validation writes scikit-learn metrics.
"""
import warnings

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join, maybe_mkdir_p
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.helpers import dummy_context
from sklearn.utils.class_weight import compute_class_weight
from torch import autocast, distributed as dist, nn

from nnunet_kd.classification.labels import class_names, read_case_classes
from nnunet_kd.classification.metrics import classification_summary, write_summary
from nnunet_kd.classification.network import build_cls_network
from nnunet_kd.classification.predict import predict_probabilities, resize_to_patch, write_predictions_csv
from nnunet_kd.classification.task import TASK
from nnunet_kd.core.datasets import raw_label_folder
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import save_json_atomic
from nnunet_kd.run.progress import cases_bar
from nnunet_kd.core.failpoints import failpoint


class WholeImageDataset:
    """nnU-Net's preprocessed cases as its loaders read them, each whole image resized to the patch size (the label
    map is all ones). ``identifiers`` may repeat cases (class-balanced sampling)."""

    def __init__(self, dataset, patch_size, identifiers=None):
        self._data = dataset
        self.patch_size = list(patch_size)
        self.identifiers = list(dataset.identifiers if identifiers is None else identifiers)

    def load_case(self, identifier):
        data, _, _, properties = self._data.load_case(identifier)
        data = resize_to_patch(data, self.patch_size)
        return data, np.ones((1, *data.shape[1:]), dtype=np.int16), None, properties


def case_classes_of(dataset_name: str, dataset_json: dict) -> dict:
    return read_case_classes(raw_label_folder(dataset_name, dataset_json,
                                              "classification trainers read the labels.csv"))


def class_weighted_ce(counts: np.ndarray, weighted: bool, device) -> nn.Module:
    """Cross-entropy with scikit-learn's "balanced" weights n / (classes present * count) (1 for a class absent from
    training)."""
    if not weighted:
        return nn.CrossEntropyLoss()
    present = np.flatnonzero(counts)
    w = np.ones(len(counts), dtype=np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=np.repeat(np.arange(len(counts)), counts))
    return nn.CrossEntropyLoss(weight=torch.from_numpy(w).to(device))


def balanced_identifiers(identifiers: list[str], case_classes: dict) -> list[str]:
    """Each case repeated so that every class is drawn about equally often by a uniform sampler."""
    counts = np.bincount([case_classes[i] for i in identifiers])
    top = counts.max()
    return [i for i in identifiers for _ in range(int(round(top / counts[case_classes[i]])))]


class ClsTrainerMixin:
    """Mix in before a trainer of the plugin (a KDTrainerMixin subclass)."""

    network_trainer_name = "nnUNetTrainerCls"
    #: whether classification.backbone (timm) may replace the plans' encoder
    supports_backbone = False
    #: logged where nnU-Net logs the pseudo Dice (checkpoint_best follows its EMA)
    epoch_metric = TASK.epoch_metric

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        # read before nnU-Net's constructor creates the output folder: bad labels write nothing
        self.classes = class_names(dataset_json)
        self.case_classes = case_classes_of(plans["dataset_name"], dataset_json)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.cls_settings = self.settings.classification
        if self.cls_settings.backbone and not self.supports_backbone:
            raise KDError(f"{self.__class__.__name__} builds on the plans' encoder (teachers, fusion and student must "
                          f"share its levels); classification.backbone '{self.cls_settings.backbone}' is for "
                          f"nnUNetTrainerCls and nnUNetTrainerClsMultiHead. Set it to null for the KD roles.")
        if self.cls_settings.backbone and len(self.configuration_manager.patch_size) != 2:
            raise KDError(f"classification.backbone '{self.cls_settings.backbone}' is a 2D timm backbone, but "
                          f"configuration {configuration} is 3D. Set it to null for 3D data.")
        self.oversample_foreground_percent = 0.0  # no foreground to oversample: labels are per image
        self.enable_deep_supervision = False

    # nnU-Net calls self.build_network_architecture(...); the class count is in dataset.json, which nnU-Net's static
    # signature does not pass, so the classifier's builder is an instance method
    def build_network_architecture(self, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = False) -> nn.Module:
        backbone = {"name": self.cls_settings.backbone, "weights": self.cls_settings.backbone_weights}
        return build_cls_network(configuration_manager.configuration["architecture"], num_input_channels,
                                 len(self.classes), backbone)

    def set_deep_supervision_enabled(self, enabled: bool):
        pass

    def _build_loss(self):
        return nn.CrossEntropyLoss()  # replaced by the class-weighted loss once the training split is known

    def loader_dataset(self, dataset, identifiers=None):
        return WholeImageDataset(dataset, self.configuration_manager.patch_size, identifiers)

    def do_split(self):
        if self.fold != "all":
            self._write_stratified_split()
        return super().do_split()

    def _write_stratified_split(self) -> None:
        """splits_final.json, where there is none yet: 5 folds stratified by class (cases shuffled within their class,
        then dealt to the folds in turn), so that every validation fold holds each class in proportion, also for
        classes of fewer than 5 cases. An existing split file is used as it is."""
        path = join(self.preprocessed_dataset_folder_base, "splits_final.json")
        if isfile(path):
            return
        keys = sorted(infer_dataset_class(self.preprocessed_dataset_folder).get_identifiers(
            self.preprocessed_dataset_folder))
        rng = np.random.RandomState(12345)
        by_class = [k for c in sorted({self.case_classes[k] for k in keys})
                    for k in rng.permutation([k for k in keys if self.case_classes[k] == c]).tolist()]
        splits = [{"train": sorted(set(keys) - set(by_class[i::5])), "val": sorted(by_class[i::5])} for i in range(5)]
        save_json_atomic(splits, path)
        self.print_to_log_file("nnunet_kd: created a 5-fold cross-validation split stratified by class")

    def get_tr_and_val_datasets(self):
        dataset_tr, dataset_val = super().get_tr_and_val_datasets()
        ids = list(dataset_tr.identifiers)
        counts = np.bincount([self.case_classes[i] for i in ids], minlength=len(self.classes))
        self.loss = class_weighted_ce(counts, self.cls_settings.class_weights, self.device)
        self.print_to_log_file(f"nnunet_kd: training cases per class {dict(zip(self.classes, counts.tolist()))}")
        if self.cls_settings.balanced_sampling:
            ids = balanced_identifiers(ids, self.case_classes)
        return self.loader_dataset(dataset_tr, ids), self.loader_dataset(dataset_val)

    def class_targets(self, keys, case_classes=None) -> torch.Tensor:
        cc = self.case_classes if case_classes is None else case_classes
        return torch.tensor([cc[k] for k in keys], dtype=torch.long)

    def train_step(self, batch: dict) -> dict:
        return super().train_step(dict(batch, target=self.class_targets(batch["keys"])))

    def validation_step(self, batch: dict) -> dict:
        data = batch["data"].to(self.device, non_blocking=True)
        target = self.class_targets(batch["keys"]).to(self.device, non_blocking=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            logits = self.network(data)
            loss = self.loss(logits, target)
        probs = torch.softmax(logits.float(), 1)
        values = torch.cat([loss.detach().float()[None], probs.flatten()]).cpu().numpy()  # one transfer
        return {"loss": values[0], "probs": values[1:].reshape(probs.shape), "labels": batch["keys"]}

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        probs = np.concatenate([o["probs"] for o in val_outputs])
        labels = [self.case_classes[k] for o in val_outputs for k in o["labels"]]
        losses = [o["loss"] for o in val_outputs]
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (probs, labels, losses))
            probs = np.concatenate([g[0] for g in gathered])
            labels = [x for g in gathered for x in g[1]]
            losses = [x for g in gathered for x in g[2]]
        bacc = _balanced_accuracy(labels, probs.argmax(1))
        # nnU-Net selects checkpoint_best on the EMA of 'mean_fg_dice': here the balanced accuracy
        self.logger.log("mean_fg_dice", bacc, self.current_epoch)
        self.logger.log("dice_per_class_or_region", [bacc], self.current_epoch)
        self.print_to_log_file(f"{self.epoch_metric} {bacc:.4f}")
        self.logger.log("val_losses", float(np.mean(losses)), self.current_epoch)

    def perform_actual_validation(self, save_probabilities: bool = False):
        failpoint(self.kd_role, "final_validation")
        if self.local_rank != 0:
            return
        _, val_keys = self.do_split()
        dataset = self.loader_dataset(self.dataset_class(self.preprocessed_dataset_folder, val_keys))
        probs = predict_probabilities(self.network, (dataset.load_case(k)[0] for k in cases_bar(
                                          val_keys, "final validation")),
                                      len(self.configuration_manager.patch_size) == 2, self.device)
        folder = join(self.output_folder, "validation")
        maybe_mkdir_p(folder)
        labels = [self.case_classes[k] for k in val_keys]
        summary = classification_summary(labels, probs, self.classes, val_keys)
        write_summary(join(folder, "summary.json"), summary)
        write_predictions_csv(join(folder, "predictions.csv"), val_keys, probs, self.classes, labels)
        self.print_to_log_file(f"Validation: balanced accuracy {summary['balanced_accuracy']:.4f}, accuracy "
                               f"{summary['accuracy']:.4f}, macro F1 {summary['macro_f1']:.4f}, macro AUROC "
                               f"{summary['macro_auroc']:.4f}", also_print_to_console=True)


def _balanced_accuracy(labels, predicted) -> float:
    from sklearn.metrics import balanced_accuracy_score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true" on small validation batches
        return float(balanced_accuracy_score(labels, predicted))
