"""Classification registers itself: image-level classes (`convert-cls` datasets), balanced accuracy."""
from nnunet_kd.core.tasks import Task, lazy, register


def check_raw(raw_folder: str, dataset_json: dict) -> None:
    """The class labels, before anything is planned (class sets may differ between datasets)."""
    from nnunet_kd.classification.labels import read_case_classes
    read_case_classes(raw_folder, dataset_json)


TASK = register(Task(
    package=__package__, name="cls", title="classification", predict_command="nnunet_kd predict-cls", description="image classification (datasets made with `nnunet_kd convert-cls`: 'classes' in "
                            "dataset.json and a labels.csv)",
    trainers={"target": "nnUNetTrainerCls", "source": "nnUNetTrainerClsDomainAdversarial",
              "joint": "nnUNetTrainerClsJointTeacher", "student": "nnUNetTrainerClsJointKD",
              "multihead": "nnUNetTrainerClsMultiHead"},
    epoch_metric="balanced accuracy", metric="balanced accuracy",
    headline=lazy(f"{__package__}.report", "headline"), per_case=lazy(f"{__package__}.report", "per_case"),
    figures=lazy(f"{__package__}.report", "figures"),
    predict_and_score=lazy(f"{__package__}.predict", "predict_and_score"),
    test_labels="a CSV case,class (such as labelsTs.csv of `convert-cls`)", test_labels_folder=False,
    check_raw=check_raw, add_commands=lazy(f"{__package__}.commands", "add_commands"), summary_keys=("balanced_accuracy",)))
