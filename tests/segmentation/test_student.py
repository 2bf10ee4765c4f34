import pytest

from nnunet_kd.classification.roles import nnUNetTrainerClsJointKD
from nnunet_kd.detection.roles import nnUNetTrainerDetJointKD
from nnunet_kd.errors import KDError
from nnunet_kd.segmentation.student import nnUNetTrainerJointKD


@pytest.mark.parametrize("trainer, kind", [(nnUNetTrainerClsJointKD, "classifiers"),
                                           (nnUNetTrainerDetJointKD, "detectors")])
def test_students_without_a_unet_decoder_refuse_decoder_levels(trainer, kind):
    plans = {"dataset_name": "Dataset041_Target", "plans_name": "nnUNetPlans_kd"}
    kd_block = {"target": "Dataset041_Target", "distill": {"decoder_levels": True}}
    with pytest.raises(KDError, match=f"'nnUNetPlans_kd': distill.decoder_levels is true, but {kind} have no U-Net"):
        trainer.check_inputs(plans, "2d", 0, kd_block)
    trainer.check_inputs(plans, "2d", 0, {**kd_block, "distill": {"decoder_levels": False}})
    nnUNetTrainerJointKD.check_inputs(plans, "2d", 0, kd_block)  # the segmentation student distils its decoder
