"""Test-set figures of every model of an experiment: predict held-out images with each model and score them, in the
files `report --test-dir` reads (what `run --test-images/--test-labels` and the demo do)."""
from collections.abc import Sequence

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile

from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError


def check_test_inputs(task: str, images: str, labels: str) -> None:
    """Before any training: the test images and labels exist in the form the task needs."""
    if not isdir(images):
        raise KDError(f"--test-images {images} is not a folder of images named CASE_0000.ext.")
    spec = tasks.get(task)
    if not (isdir if spec.test_labels_folder else isfile)(labels):
        raise KDError(f"--test-labels {labels} must be {spec.test_labels}.")


def predict_and_score(task: str, model_folder: str, folds: Sequence[str], device: str, images: str, labels: str,
                      out: str) -> str:
    """Predicts images with the model's folds into out and scores them against labels; returns what `report
    --test-dir LABEL=...` takes (the task's `predict_and_score`)."""
    return tasks.get(task).predict_and_score(model_folder, folds, device, images, labels, out)
