"""benchmarks/runner.py: arms, statistics, checks and the rule of the protocol, on made-up per-case results."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from helpers import CHANNEL_MAP, tree_digest, use_env
from test_benchmarks import _load


def _summary(runner, dice):
    return runner.kept_summary({"metric_per_case": [
        {"reference_file": f"/raw/labelsTs/case_{k:03d}.png", "prediction_file": "x", "metrics": {"1": {"Dice": d}}}
        for k, d in enumerate(dice)]})


def _run(runner, seed: int, stage: str, gains: dict) -> dict:
    """A run of 12 held-out cases: baseline dice, every model the baseline + its gain + per-case noise."""
    rng = np.random.RandomState(seed)
    base = rng.uniform(0.3, 0.8, 12)
    summaries = {"baseline": _summary(runner, base)}
    for model, gain in gains.items():
        summaries[model] = _summary(runner, np.clip(base + gain + rng.normal(0, 0.002, 12), 0, 1))
    return {"seed": seed, "stage": stage, "date": "2026-12-07", "machine": "m", "commit": "abc", "minutes": 1.0,
            "command": f"python benchmarks/seg.py --stage {stage} --seed {seed}", "summaries": summaries}


@pytest.fixture
def runner(tmp_path, monkeypatch):
    module = _load("runner")
    monkeypatch.setattr(module, "RESULTS", str(tmp_path))
    return module


def _scenario(runner, **kw):
    return runner.Scenario(name="bench", title="T", task="seg", specs=None, write=None, labels="labelsTs",
                           measure="foreground",
                           held_out={"choice": 12, "final": 12},
                           candidates={"voxel": {}, "class": {"distill": {"kd_mode": "class"}},
                                       "fast": {"student": {"initial_lr": 0.01}}}, **kw)


def test_the_arms_share_the_students_recipe_and_candidates_of_another_recipe_get_their_own_control(runner):
    scenario = _scenario(runner)
    final = runner.arms(scenario, "final", {})
    assert final == {"control": {"distill": {"w_feat": 0.0, "w_kd": 0.0, "w_box": 0.0}}, "self_distill": {"student": {"teacher": "target"}}}
    choice = runner.arms(scenario, "choice", {})
    assert choice["student:class"] == {"distill": {"kd_mode": "class"}} and "control:class" not in choice
    assert choice["control:fast"] == {"student": {"initial_lr": 0.01}, "distill": {"w_feat": 0.0, "w_kd": 0.0, "w_box": 0.0}}


def test_the_final_summary_has_every_difference_the_protocol_reports(runner, tmp_path):
    scenario = _scenario(runner)
    gains = {"joint": 0.04, "student": 0.03, "control": 0.01, "self_distill": 0.015, "multi_head": 0.0}
    for seed in (100, 101):
        page = runner.record(scenario, _run(runner, seed, "final", gains))
    summary = json.loads((tmp_path / "bench" / "summary.json").read_text())
    assert summary["seeds"] == [100, 101] and summary["cases"] == 24
    for key, gain in (("student", 0.03), ("joint", 0.04), ("control", 0.01), ("self_distill", 0.015),
                      ("student_vs_control", 0.02), ("student_vs_self_distill", 0.015)):
        assert summary[key]["mean"] == pytest.approx(gain, abs=0.002) and summary[key]["ci95"][0] > 0, key
        assert set(summary[key]) == {"mean", "ci95", "p"}
    assert summary["retention"] == pytest.approx(0.75, abs=0.08)
    assert summary["retention_vs_control"] == pytest.approx(2 / 3, abs=0.08)
    assert json.loads((tmp_path / "summary.json").read_text())["seg"]["benchmark"] == "bench"
    assert "| student - control | +0.02" in page and "above 0" in page
    runner.record(scenario, _run(runner, 100, "final", gains))  # a seed's rerun replaces it
    assert [r["seed"] for r in json.loads((tmp_path / "bench" / "final.json").read_text())] == [101, 100]


def test_the_choice_page_checks_headroom_and_convergence_and_applies_the_rule(runner, tmp_path):
    scenario = _scenario(runner)
    gains = {"joint": 0.01, "student": 0.02, "control": 0.01, "self_distill": 0.01, "baseline_x2": 0.005,
             "student:class": 0.03, "student:fast": 0.015, "control:fast": 0.0}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "choice.json").write_text(json.dumps([_run(runner, s, "choice", gains) for s in (0, 1)]))
    page = runner.record(scenario, _run(runner, 2, "choice", gains))
    assert "Headroom: joint - baseline = +0.0" in page and "FAIL: change the scenario" in page
    assert "Convergence: baseline_x2 - baseline = +0.00" in page and "FAIL: lengthen the schedule" in page
    assert "Rule: 'class'" in page
    assert "| student:fast - control:fast |" in page and "| student:class - control |" in page
    assert not (tmp_path / "bench" / "summary.json").exists()  # choice seeds never make the summary
    runs = [_run(runner, s, "choice", gains) for s in (0, 1, 2)]
    for r in runs:  # the best mean, by a little: not above the reference, which stays
        r["summaries"]["student:class"] = json.loads(json.dumps(r["summaries"]["student"]))
        for case, change in enumerate((0.01, -0.009, 0.004, -0.004)):
            r["summaries"]["student:class"]["metric_per_case"][case]["metrics"]["1"]["Dice"] += change
    assert runner.choose(scenario, runs) == "'voxel' (best mean: 'class', not above it)"


def test_a_classification_page_gives_the_balanced_accuracy_of_each_model_and_its_validation_metric(runner):
    from nnunet_kd.classification.metrics import classification_summary
    scenario = runner.Scenario(name="bench_cls", title="T", task="cls", specs=None, write=None, labels="labelsTs.csv",
                               measure="balanced accuracy", held_out={"choice": 8, "final": 8})
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    predicted = {"baseline": [0, 0, 1, 1, 1, 1, 2, 2], "joint": [0, 0, 0, 1, 1, 1, 1, 2],
                 "student": [0, 0, 0, 0, 1, 1, 1, 2]}
    run = {"seed": 0, "stage": "final", "date": "d", "machine": "m", "commit": "abc", "minutes": 1.0, "command": "c",
           "validation_curves": {"student": [0.5, 0.7]}, "summaries": {
               m: runner.kept_summary(classification_summary(truth, np.eye(3)[p], ["a", "b", "c"],
                                                             cases=[f"c{k}" for k in range(8)]))
               for m, p in predicted.items()}}
    assert runner.headline(run, "baseline", "balanced accuracy") == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert runner.headline(run, "student", "balanced accuracy") == pytest.approx(1.0)
    page = runner.render(scenario, "final", [run])
    assert "| 0 | abc | 1 | 0.7222 | 0.9167 | 1.0000 |" in page
    assert "fold 0, balanced accuracy" in page


@pytest.mark.slow
def test_a_final_seed_trains_the_arms_from_the_runs_teachers_and_scores_every_model_on_its_held_out_cases(
        kd, kd_pipeline, runner, tmp_path, monkeypatch):
    """The fixture's experiment as a seed's finished pipeline: `run_seed` adopts its stages and trains the control and
    self-distillation beside them; the doubled baselines of the choice stage double their variant's epochs."""
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunet_kd import trainer_path
    from nnunet_kd.segmentation.synthetic import tiny_benchmark, write_dataset
    out = tmp_path / "w"
    for name, folder in (("nnUNet_raw", kd.raw), ("nnUNet_preprocessed", kd.preprocessed),
                         ("nnUNet_results", kd.results)):
        shutil.copytree(folder, out / name)
    use_env(monkeypatch, dict(os.environ, TMPDIR=str(tmp_path)))  # run_seed sets nnU-Net's folders: restored after
    results = out / "nnUNet_results" / kd.target
    teachers = tree_digest(str(results / f"nnUNetTrainer_tiny__{kd.plans}__2d"))
    scenario = runner.Scenario(name="bench", title="T", task="seg", specs=lambda n: tiny_benchmark(n_test=n),
                               write=write_dataset, labels="labelsTs", measure="foreground",
                               held_out={"choice": 4, "final": 4}, channel_map=CHANNEL_MAP, suffix="_tiny")
    # the copy's datasets are the scenario's, as the runner stamps a work folder it made
    (out / "benchmark_datasets.json").write_text(json.dumps([repr(s) for s in tiny_benchmark(n_test=4)]))
    run = runner.run_seed(scenario, 0, "final", str(out), "python benchmarks/x.py --stage final --seed 0")
    assert set(run["summaries"]) == {"baseline", "joint", "student", "multi_head", "control", "self_distill"}
    assert all(len(s["metric_per_case"]) == 4 for s in run["summaries"].values())
    assert tree_digest(str(results / f"nnUNetTrainer_tiny__{kd.plans}__2d")) == teachers  # adopted, not retrained
    block = json.loads((out / "nnUNet_preprocessed" / kd.target / f"{kd.plans}_control.json").read_text())["nnunet_kd"]
    assert (block["distill"]["w_feat"], block["distill"]["w_kd"]) == (0.0, 0.0)
    assert block["student"]["joint_teacher_plans"] == kd.plans
    log = "".join(open(os.path.join(root, f)).read() for root, _, files in os.walk(
        results / f"nnUNetTrainerJointKD_tiny__{kd.plans}_self_distill__2d") for f in files
        if f.startswith("training_log"))
    assert "nnUNetTrainer_tiny__" in log.split("student initialised from ")[1].split()[0]
    assert len(run["validation_curves"]["control"]) == 2  # the _tiny variant's epochs
    page = runner.record(scenario, run)
    assert "| student - control |" in page
    assert json.loads((tmp_path / "summary.json").read_text())["seg"]["seeds"] == [0]
    monkeypatch.setenv("nnUNet_extTrainer", trainer_path() + os.pathsep + os.path.join(runner.HERE, "trainers"))
    doubled = get_trainer_from_args(kd.target, "2d", 0, "nnUNetTrainer_tiny_x2", kd.plans, device=torch.device("cpu"))
    assert doubled.num_epochs == 4  # twice _tiny's 2


def test_a_work_folder_of_other_datasets_is_refused_not_reused(runner, tmp_path):
    from nnunet_kd.segmentation.synthetic import variety_benchmark
    out, specs = str(tmp_path / "work"), variety_benchmark(n_held_out=4)
    runner.check_work_folder(out, specs)
    runner.check_work_folder(out, specs)  # the same seed again: kept
    other = variety_benchmark(n_held_out=5)
    with pytest.raises(SystemExit, match="holds the models of other datasets than this scenario makes"):
        runner.check_work_folder(out, other)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "nnUNet_results").mkdir()
    with pytest.raises(SystemExit, match="is not empty and has no benchmark_datasets.json"):
        runner.check_work_folder(str(tmp_path / "old"), specs)
