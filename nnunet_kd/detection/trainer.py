"""What turns an nnU-Net trainer of the plugin into a 2D detector (the dataset-specific one is in baseline.py):
nnU-Net's preprocessing, patch sampling (foreground oversampling over the instances) and augmentation of the instance
map; boxes recomputed from the augmented instance map of every patch; torchvision Faster R-CNN losses;
``checkpoint_best`` on the EMA of the validation FROC (logged where nnU-Net logs its pseudo Dice); the final validation
writes COCO mAP and FROC to ``validation/summary.json``."""

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import join, maybe_mkdir_p
from torch import distributed as dist, nn

from nnunet_kd.detection.boxes import boxes_from_instance_map
from nnunet_kd.detection.labels import categories, read_boxes
from nnunet_kd.detection.distill import detector_losses
from nnunet_kd.detection.inference import detect_image
from nnunet_kd.detection.metrics import detection_summary, froc, write_summary
from nnunet_kd.detection.network import build_det_network
from nnunet_kd.detection.task import TASK
from nnunet_kd.core.datasets import raw_label_folder
from nnunet_kd.core.errors import KDError
from nnunet_kd.run.progress import cases_bar
from nnunet_kd.core.failpoints import failpoint


def instance_categories(dataset_name: str, dataset_json: dict) -> dict:
    """case -> {instance id: category index} from the raw dataset's boxes.json."""
    folder = raw_label_folder(dataset_name, dataset_json, "detection trainers read the boxes.json")
    names = categories(dataset_json)
    return {case: {b["instance"]: names.index(b["category"]) for b in items}
            for case, items in read_boxes(folder).items()}


class DetTrainerMixin:
    network_trainer_name = "nnUNetTrainerDet"
    #: logged where nnU-Net logs the pseudo Dice (checkpoint_best follows its EMA)
    epoch_metric = TASK.epoch_metric

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        self.categories = categories(dataset_json)  # read before nnU-Net creates the output folder
        self.instance_categories = instance_categories(plans["dataset_name"], dataset_json)
        super().__init__(plans, configuration, fold, dataset_json, device)
        if len(self.configuration_manager.patch_size) != 2:
            raise KDError(f"nnunet_kd detection is 2D only; configuration {configuration} is 3D. Use 2d.")
        self.enable_deep_supervision = False

    def build_network_architecture(self, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = False) -> nn.Module:
        return build_det_network(configuration_manager.configuration["architecture"], num_input_channels,
                                 len(self.categories), configuration_manager.patch_size)

    def _do_i_compile(self) -> bool:
        return False  # torchvision's detection models do not compile cleanly

    def set_deep_supervision_enabled(self, enabled: bool):
        pass

    def _build_loss(self):
        return None  # Faster R-CNN computes its losses itself

    def box_targets(self, keys, seg: torch.Tensor) -> list[dict]:
        """Boxes (recomputed from each patch's instance map) and labels (category index + 1) of a batch."""
        out = []
        for key, s in zip(keys, seg):
            boxes, ids = boxes_from_instance_map(s[0])
            cats = self.instance_categories[key]
            labels = torch.tensor([cats[int(i)] + 1 for i in ids], dtype=torch.int64)
            out.append({"boxes": boxes.float().to(self.device), "labels": labels.to(self.device)})
        return out

    def train_step(self, batch: dict) -> dict:
        images = list(batch["data"].to(self.device, non_blocking=True))
        targets = self.box_targets(batch["keys"], batch["target"])
        self.optimizer.zero_grad(set_to_none=True)
        loss, parts = detector_losses(self.network, images, targets)
        return self.backward_and_step(loss, {"loss": loss, **parts})

    def _detect(self, images) -> list[dict]:
        with torch.no_grad():
            return self.network(images)

    def validation_step(self, batch: dict) -> dict:
        detections = self._detect(list(batch["data"].to(self.device, non_blocking=True)))
        gt = {f"{k}#{i}": _gt(t) for i, (k, t) in enumerate(zip(batch["keys"], self.box_targets(batch["keys"],
                                                                                             batch["target"])))}
        pred = {case: _pred(d) for case, d in zip(gt, detections)}
        return {"gt": gt, "pred": pred}

    def on_validation_epoch_end(self, val_outputs: list[dict]):
        gt = {k: v for o in val_outputs for k, v in o["gt"].items()}
        pred = {k: v for o in val_outputs for k, v in o["pred"].items()}
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (gt, pred))
            gt = {f"{r}/{k}": v for r, g in enumerate(gathered) for k, v in g[0].items()}
            pred = {f"{r}/{k}": v for r, g in enumerate(gathered) for k, v in g[1].items()}
        score = froc(gt, pred)["froc"] if any(gt.values()) else 0.0
        self.logger.log("mean_fg_dice", score, self.current_epoch)
        self.logger.log("dice_per_class_or_region", [score], self.current_epoch)
        self.print_to_log_file(f"{self.epoch_metric} {score:.4f}")
        self.logger.log("val_losses", float("nan"), self.current_epoch)

    def perform_actual_validation(self, save_probabilities: bool = False):
        failpoint(self.kd_role, "final_validation")
        if self.local_rank != 0:
            return
        self.network.eval()
        _, val_keys = self.do_split()
        dataset = self.dataset_class(self.preprocessed_dataset_folder, val_keys)
        gt, pred = {}, {}
        for k in cases_bar(val_keys, "final validation"):
            data, seg, _, _ = dataset.load_case(k)
            image = torch.from_numpy(np.asarray(data[:], dtype=np.float32)[:, 0]).to(self.device)
            seg = torch.from_numpy(np.asarray(seg[:])[:, 0].astype(np.int64))
            gt[k] = _gt(self.box_targets([k], seg[None])[0])
            pred[k] = _pred(detect_image([self.stock_network()], image, self.configuration_manager.patch_size))
        summary = detection_summary(gt, pred, self.categories)
        folder = join(self.output_folder, "validation")
        maybe_mkdir_p(folder)
        write_summary(join(folder, "summary.json"), summary)
        self.print_to_log_file(f"Validation: mAP {summary['mAP']:.4f}, mAP@0.5 {summary['mAP_50']:.4f}, FROC "
                               f"{summary['froc']:.4f}", also_print_to_console=True)


def _gt(target: dict) -> list:
    return [(b.tolist(), int(c) - 1) for b, c in zip(target["boxes"].cpu(), target["labels"].cpu())]


def _pred(detection: dict) -> list:
    return [(b.tolist(), int(c) - 1, float(s)) for b, c, s in
            zip(detection["boxes"].cpu(), detection["labels"].cpu(), detection["scores"].cpu())]
