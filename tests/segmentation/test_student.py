import pytest

from nnunet_kd.classification.roles import nnUNetTrainerClsJointKD
from nnunet_kd.detection.roles import nnUNetTrainerDetJointKD
from nnunet_kd.errors import KDError
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD


@pytest.mark.parametrize("trainer, kind", [(nnUNetTrainerClsJointKD, "classifier"),
                                           (nnUNetTrainerDetJointKD, "detector")])
def test_students_without_a_unet_decoder_refuse_decoder_levels_and_channel_wise_kd(trainer, kind):
    plans = {"dataset_name": "Dataset041_Target", "plans_name": "nnUNetPlans_kd"}
    decoder = {"target": "Dataset041_Target", "distill": {"decoder_levels": True, "kd_mode": "voxel"}}
    channel = {"target": "Dataset041_Target", "distill": {"decoder_levels": False, "kd_mode": "channel"}}
    with pytest.raises(KDError, match=f"'nnUNetPlans_kd': distill.decoder_levels is true, but {kind}s have no U-Net"):
        trainer.check_inputs(plans, "2d", 0, decoder)
    with pytest.raises(KDError, match=f"distill.kd_mode is 'channel' .* but a {kind}'s logits have no spatial axis"):
        trainer.check_inputs(plans, "2d", 0, channel)
    trainer.check_inputs(plans, "2d", 0, {"target": "Dataset041_Target",
                                          "distill": {"decoder_levels": False, "kd_mode": "class"}})
    for block in (decoder, channel):  # the segmentation student has a decoder and spatial logits
        nnUNetTrainerJointKD.check_inputs(plans, "2d", 0, block)
