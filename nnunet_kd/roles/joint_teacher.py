"""Stage 2 of the method: the joint teacher (frozen teachers' encoders fused level by level, a new decoder or head)."""
import copy

import torch
from batchgenerators.utilities.file_and_folder_operations import join, load_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.core.datasets import dataset_name
from nnunet_kd.core.fused_encoders import resolve_levels
from nnunet_kd.core.teachers import check_compatible, resolve_teachers, teacher_record
from nnunet_kd.core.trainer import KDTrainerMixin


class JointTeacherRole(KDTrainerMixin):
    """``self.network`` is the whole joint network (the task's `joint_architecture`); only the fusion and the decoder or
    head train. The model folder's plans name the joint network by dotted path, so prediction needs no
    nnUNet_extTrainer. Mix in before the nnU-Net trainer."""

    requires_kd_block = True
    trains_on_target = True
    kd_role = "joint"

    @classmethod
    def check_inputs(cls, plans: dict, configuration: str, fold, kd_block) -> None:
        super().check_inputs(plans, configuration, fold, kd_block)
        pm = PlansManager(copy.deepcopy(plans))
        dataset_json = load_json(join(nnUNet_preprocessed.get(), dataset_name(plans["dataset_name"]), "dataset.json"))
        cm = pm.get_configuration(configuration)
        check_compatible(resolve_teachers(kd_block, configuration, fold, cls.variant_suffix),
                         plans["configurations"][configuration]["architecture"],
                         determine_num_input_channels(pm, cm, dataset_json),
                         pm.get_label_manager(dataset_json).num_segmentation_heads)

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.teachers = resolve_teachers(self.kd_block, configuration, fold, self.variant_suffix)
        check_compatible(self.teachers, self.configuration_manager.configuration["architecture"],
                         determine_num_input_channels(self.plans_manager, self.configuration_manager, dataset_json),
                         self.label_manager.num_segmentation_heads)
        arch = self.joint_architecture()
        # the model folder's plans.json (written in on_train_start) describes the joint network
        self.plans_manager.plans["configurations"][configuration]["architecture"] = arch
        self.configuration_manager.configuration["architecture"] = arch
        self.teacher_records = [teacher_record(t) for t in self.teachers]

    def fused_levels(self) -> list:
        """The encoder stages fused from every teacher (the KD block's fusion.levels resolved)."""
        shared = self.configuration_manager.configuration["architecture"]
        return resolve_levels(self.settings.fusion.levels, shared["arch_kwargs"]["n_stages"])

    def joint_architecture(self) -> dict:
        """The plans ``architecture`` entry of the task's joint network."""
        raise NotImplementedError

    #: where the encoder sits in a teacher's network_weights
    teacher_encoder_prefix = "encoder."

    def teacher_encoders(self):
        return self.stock_network().teacher_encoders

    def initialize(self):
        super().initialize()
        prefix = self.teacher_encoder_prefix
        for enc, t in zip(self.teacher_encoders(), self.teachers):
            weights = load_checkpoint(t.checkpoint)["network_weights"]
            enc.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        self.print_to_log_file("nnunet_kd: joint teacher from " + ", ".join(r["checkpoint"] for r in self.teacher_records))
