"""The task registry and the contract every registered task keeps (in the spirit of scikit-learn's estimator checks):
its trainers exist with their roles, its summary.json is told apart from the others' and read into its headline and
per-case results, its commands and options reach the command line."""
import math

import pytest

from nnunet_kd.core import tasks

# a summary.json of each task as its own code writes it (a new task adds one here)
SUMMARIES = {
    "seg": lambda: {"mean": {"1": {"Dice": 0.5}, "2": {"Dice": float("nan")}}, "foreground_mean": {"Dice": 0.5},
                    "metric_per_case": [{"reference_file": f"/gt/c{k}.png",
                                         "metrics": {"1": {"Dice": 0.2 * k}, "2": {"Dice": 0.1}}} for k in range(3)]},
    "cls": lambda: __import__("nnunet_kd.classification.metrics", fromlist=["x"]).classification_summary(
        [0, 1, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], ["a", "b"], cases=["c0", "c1", "c2"]),
    "det": lambda: __import__("nnunet_kd.detection.metrics", fromlist=["x"]).detection_summary(
        {"c0": [([0, 0, 10, 10], 0)], "c1": [([5, 5, 20, 20], 1)]},
        {"c0": [([0, 0, 10, 10], 0, 0.9)], "c1": [([30, 30, 40, 40], 1, 0.8)]}, ["nodule", "mass"]),
}
TASKS = tasks.names()


def test_the_registry_holds_the_default_task_and_refuses_an_unknown_one():
    assert tasks.DEFAULT_TASK in TASKS and len(set(TASKS)) == len(TASKS)
    with pytest.raises(Exception, match="Unknown task 'regression'.*seg"):
        tasks.get("regression")
    specs, channel_map = tasks.get(tasks.DEFAULT_TASK).demo()  # the demo is the default task's
    assert len(specs) == 3 and set(channel_map) <= {str(s.dataset_id) for s in specs[1:]}


@pytest.mark.parametrize("name", TASKS)
def test_its_trainers_exist_with_their_roles(name):
    import nnunet_kd.trainers.nnunet_kd_trainers as found
    task = tasks.get(name)
    assert {"target", "source", "joint", "student"} <= {r for r, t in task.trainers.items() if t}
    for role, trainer in task.trainers.items():
        if trainer:
            cls = getattr(found, trainer + "_tiny")
            assert cls.kd_role == role, (role, trainer)
            assert cls.epoch_metric.lower() == task.epoch_metric.lower(), trainer
    assert next(iter(task.models().values())) == task.trainer("target")


@pytest.mark.parametrize("name", TASKS)
def test_its_summary_is_told_apart_and_read(name):
    from nnunet_kd.report.collect import pooled_metric
    summary = SUMMARIES[name]()
    task = tasks.for_summary(summary)
    assert task.name == name
    assert tasks.for_summary({k: v for k, v in summary.items() if k != "task"}).name == name  # older summaries
    headline = task.headline(summary)
    assert headline["metric"] == task.metric and 0 <= headline["foreground"] <= 1
    measures = task.per_case(summary)
    assert measures
    for measure, (kind, cases) in measures.items():
        assert kind in ("values", "classes") or kind in task.record_measures, (measure, kind)
        assert len(cases) >= 2 and math.isfinite(pooled_metric(kind, cases)), measure


@pytest.mark.parametrize("name", TASKS)
def test_its_options_and_commands_reach_the_command_line(name):
    from nnunet_kd.cli import build_parser
    task = tasks.get(name)
    parser = build_parser()
    args = parser.parse_args(["plan", "-t", "1", "-s", "2", "--task", name])
    assert args.task == name
    commands = set(parser._subparsers._group_actions[0].choices)
    if task.add_commands:
        import argparse
        sub = argparse.ArgumentParser().add_subparsers()
        task.add_commands(sub)
        assert set(sub.choices) and set(sub.choices) <= commands
    assert task.test_labels and callable(task.predict_and_score)


def test_a_task_registered_later_is_found_by_name_and_by_its_summary(monkeypatch):
    monkeypatch.setattr(tasks, "_TASKS", dict(tasks._load()))  # registered here, gone after the test
    toy = tasks.register(tasks.Task(
        name="toy", package="toy", title="toy", description="a toy task", predict_command="toy-predict",
        trainers={"target": "T", "source": "S", "joint": "J", "student": "St"}, epoch_metric="acc", metric="acc",
        headline=lambda s: {"foreground": s["acc"], "per_class": {}, "metric": "acc"}, per_case=lambda s: {},
        figures=lambda *a: [], predict_and_score=lambda *a: "", test_labels="a toy file", test_labels_folder=False,
        summary_keys=("acc",)))
    assert tasks.get("toy") is toy and "toy" in tasks.names()
    assert tasks.for_summary({"acc": 0.5}) is toy and tasks.for_metric("acc") is toy
    assert list(toy.models()) == ["dataset-specific (target teacher)", "joint teacher", "student"]
    with pytest.raises(ValueError, match="unknown roles"):
        tasks.register(tasks.Task(**{**toy.__dict__, "name": "bad", "trainers": {"teacher": "X"}}))
