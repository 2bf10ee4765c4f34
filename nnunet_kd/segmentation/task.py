"""Segmentation registers itself: nnU-Net's own trainer as the target teacher, nnU-Net's summary.json, Dice."""
from nnunet_kd.core.tasks import Task, lazy, register

TASK = register(Task(
    package=__package__, name="seg", title="segmentation", description="segmentation",
    predict_command="stock nnU-Net: nnUNetv2_predict -i IMAGES -o OUTPUT -d {dataset} -c {configuration} -p {plans} "
                    "-tr {trainer}",
    trainers={"target": "nnUNetTrainer", "source": "nnUNetTrainerDomainAdversarial",
              "joint": "nnUNetTrainerJointTeacher", "student": "nnUNetTrainerJointKD",
              "multihead": "nnUNetTrainerMultiHead"},
    epoch_metric="pseudo Dice", metric="Dice",
    headline=lazy(f"{__package__}.report", "headline"), per_case=lazy(f"{__package__}.report", "per_case"),
    figures=lazy(f"{__package__}.report", "figures"),
    predict_and_score=lazy(f"{__package__}.predict", "predict_and_score"),
    test_labels="a folder of label files named like the images without the channel suffix (labelsTs)",
    test_labels_folder=True, existing_teachers=True, npz=True, student_warm_start=True,
    demo=lazy(f"{__package__}.synthetic", "demo"), write_datasets=lazy(f"{__package__}.synthetic", "write_datasets")))
