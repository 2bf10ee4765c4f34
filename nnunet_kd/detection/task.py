"""Detection registers itself: 2D boxes (`convert-det` datasets), COCO mAP with FROC and mAP@0.5 beside it."""
from nnunet_kd.core.tasks import Task, lazy, register


def check_raw(raw_folder: str, dataset_json: dict) -> None:
    """The boxes and their categories, before anything is planned."""
    from nnunet_kd.detection.labels import categories, read_boxes
    categories(dataset_json)
    read_boxes(raw_folder)


TASK = register(Task(
    package=__package__, name="det", title="detection", predict_command="nnunet_kd predict-det", description="2D object detection (datasets made with `nnunet_kd convert-det`)",
    trainers={"target": "nnUNetTrainerDet", "source": "nnUNetTrainerDetDomainAdversarial",
              "joint": "nnUNetTrainerDetJointTeacher", "student": "nnUNetTrainerDetJointKD", "multihead": None},
    epoch_metric="FROC", metric="mAP",
    headline=lazy(f"{__package__}.report", "headline"), per_case=lazy(f"{__package__}.report", "per_case"),
    figures=lazy(f"{__package__}.report", "figures"),
    predict_and_score=lazy(f"{__package__}.predict", "predict_and_score"),
    test_labels="a COCO-style boxes file (such as boxesTs.json of `convert-det`)", test_labels_folder=False,
    check_raw=check_raw, add_commands=lazy(f"{__package__}.commands", "add_commands"), summary_keys=("mAP",),
    record_measures={"map": lazy(f"{__package__}.metrics", "map_of_matches"),
                     "map50": lazy(f"{__package__}.metrics", "map50_of_matches"),
                     "froc": lazy(f"{__package__}.report", "froc_score")}))
