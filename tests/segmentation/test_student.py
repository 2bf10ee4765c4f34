import pytest

from nnunet_kd.classification.roles import nnUNetTrainerClsJointKD
from nnunet_kd.detection.roles import nnUNetTrainerDetJointKD
from nnunet_kd.errors import KDError
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD


@pytest.mark.parametrize("trainer, kind", [(nnUNetTrainerClsJointKD, "classifiers"),
                                           (nnUNetTrainerDetJointKD, "detectors")])
def test_students_without_a_unet_decoder_refuse_decoder_levels(trainer, kind):
    plans = {"dataset_name": "Dataset041_Target", "plans_name": "nnUNetPlans_kd"}
    kd_block = {"target": "Dataset041_Target", "distill": {"decoder_levels": True, "kd_mode": "voxel"}}
    with pytest.raises(KDError, match=f"'nnUNetPlans_kd': distill.decoder_levels is true, but {kind} have no U-Net"):
        trainer.check_inputs(plans, "2d", 0, kd_block)
    trainer.check_inputs(plans, "2d", 0, {**kd_block, "distill": {"decoder_levels": False, "kd_mode": "class"}})
    nnUNetTrainerJointKD.check_inputs(plans, "2d", 0, kd_block)  # the segmentation student distils its decoder


@pytest.mark.parametrize("trainer, kind", [(nnUNetTrainerClsJointKD, "classifier"),
                                           (nnUNetTrainerDetJointKD, "detector")])
def test_students_without_spatial_logits_refuse_channel_wise_kd(trainer, kind):
    plans = {"dataset_name": "Dataset041_Target", "plans_name": "nnUNetPlans_kd"}
    kd_block = {"target": "Dataset041_Target", "distill": {"decoder_levels": False, "kd_mode": "channel"}}
    with pytest.raises(KDError, match=f"distill.kd_mode is 'channel' .* but a {kind}'s logits have no spatial axis"):
        trainer.check_inputs(plans, "2d", 0, kd_block)
    nnUNetTrainerJointKD.check_inputs(plans, "2d", 0, kd_block)
