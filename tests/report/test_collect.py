"""`nnunet_kd report` on hand-written nnU-Net summary.json files (expected numbers computed by hand)."""
import json
import math
import os

import numpy as np
import pytest

from nnunet_kd.cli import main
from nnunet_kd.core.errors import KDError
from nnunet_kd.report.collect import collect, per_case
from nnunet_kd.report.tables import verdict_line, write_report

NAN = float("nan")
MODELS = {"target teacher": "nnUNetTrainer", "multi-head": "nnUNetTrainerMultiHead",
          "joint teacher": "nnUNetTrainerJointTeacher", "student": "nnUNetTrainerJointKD",
          "unfinished": "nnUNetTrainerUnfinished"}


def write_summary(folder, dice1, dice2, cases=()):
    """A summary.json as nnU-Net writes it: its foreground_mean is NaN when a class is NaN. cases: (case, Dice of
    class 1, Dice of class 2) per case."""
    os.makedirs(folder, exist_ok=True)
    summary = {"foreground_mean": {"Dice": (dice1 + dice2) / 2, "IoU": 0.5},
               "mean": {"1": {"Dice": dice1, "IoU": 0.5}, "2": {"Dice": dice2, "IoU": 0.5}},
               "metric_per_case": [{"reference_file": f"/gt/{c}.png", "prediction_file": f"/pred/{c}.png",
                                    "metrics": {"1": {"Dice": d1}, "2": {"Dice": d2}}} for c, d1, d2 in cases]}
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(summary, f)  # writes NaN as the bare NaN token, like nnU-Net


def write_fold(results, target, trainer, fold, dice1, dice2, plans="P", configuration="2d", cases=()):
    write_summary(os.path.join(results, target, f"{trainer}__{plans}__{configuration}", fold, "validation"),
                  dice1, dice2, cases)


@pytest.fixture
def experiment(tmp_path):
    results = str(tmp_path / "results")
    t = "Dataset001_X"
    write_fold(results, t, "nnUNetTrainer", "fold_0", 0.8, 0.6)
    write_fold(results, t, "nnUNetTrainer", "fold_1", 0.9, NAN)  # class 2 absent everywhere in fold 1
    write_fold(results, t, "nnUNetTrainer", "fold_2", 0.7, 0.5)
    write_fold(results, t, "nnUNetTrainerJointTeacher", "fold_all", 0.6, 0.4)
    write_fold(results, t, "nnUNetTrainerJointKD", "fold_0", 0.85, 0.75)
    write_fold(results, t, "nnUNetTrainerJointKD", "fold_1", 0.95, 0.65)
    write_fold(results, t, "nnUNetTrainerJointKD", "fold_3", 0.5, 0.5, plans="OtherPlans")  # another experiment
    os.makedirs(os.path.join(results, t, "nnUNetTrainerUnfinished__P__2d", "fold_0"))  # no validation yet
    os.makedirs(os.path.join(results, t, "nnUNetTrainer__P__2d", "fold_3"))  # fold without summary: skipped
    tests = {"target teacher": str(tmp_path / "test_teacher"), "student": str(tmp_path / "test_student")}
    write_summary(tests["target teacher"], 0.7, 0.6)
    write_summary(tests["student"], 0.8, NAN)
    return results, t, tests


def test_per_fold_values_means_and_stds(experiment):
    results, t, _ = experiment
    rep = collect(results, t, "P", "2d", MODELS)
    assert rep["baseline"] == "target teacher"
    teacher = rep["models"]["target teacher"]
    assert list(teacher["folds"]) == ["fold_0", "fold_1", "fold_2"]
    assert teacher["folds"]["fold_0"]["foreground"] == pytest.approx(0.7)
    assert teacher["folds"]["fold_1"] == {"foreground": pytest.approx(0.9), "per_class": {"1": 0.9, "2": None},
                                          "metric": "Dice"}
    assert teacher["folds"]["fold_2"]["per_class"] == {"1": 0.7, "2": 0.5}
    # foreground per fold 0.7, 0.9, 0.6
    mean = (0.7 + 0.9 + 0.6) / 3
    std = math.sqrt(((0.7 - mean) ** 2 + (0.9 - mean) ** 2 + (0.6 - mean) ** 2) / 3)
    assert teacher["validation"]["foreground"] == {"mean": pytest.approx(mean), "std": pytest.approx(std)}
    assert teacher["validation"]["per_class"]["1"] == {"mean": pytest.approx(0.8),
                                                       "std": pytest.approx(math.sqrt(0.02 / 3))}
    assert teacher["validation"]["per_class"]["2"] == {"mean": pytest.approx(0.55), "std": pytest.approx(0.05)}

    joint = rep["models"]["joint teacher"]  # a single fold: std 0
    assert list(joint["folds"]) == ["fold_all"]
    assert joint["validation"]["foreground"] == {"mean": pytest.approx(0.5), "std": 0.0}

    student = rep["models"]["student"]  # only the folds of the requested plans
    assert list(student["folds"]) == ["fold_0", "fold_1"]
    assert student["validation"]["foreground"] == {"mean": pytest.approx(0.8), "std": pytest.approx(0.0)}
    assert student["validation"]["per_class"]["2"] == {"mean": pytest.approx(0.7), "std": pytest.approx(0.05)}


def test_differences_to_the_baseline(experiment):
    results, t, tests = experiment
    rep = collect(results, t, "P", "2d", MODELS, tests)
    models = rep["models"]
    assert models["target teacher"]["delta_vs_baseline"] is None
    # over the folds both have (0 and 1; the baseline's fold 2 and the joint teacher's fold all have no partner)
    assert models["student"]["delta_vs_baseline"] == {"validation": pytest.approx(0.8 - (0.7 + 0.9) / 2),
                                                      "test": pytest.approx(0.8 - 0.65)}
    assert "Δ val over the folds both it and the baseline have: 0, 1" in models["student"]["notes"]
    assert models["joint teacher"]["delta_vs_baseline"] == {"validation": None, "test": None}
    assert "Δ val over the folds both it and the baseline have: none" in models["joint teacher"]["notes"]
    assert models["multi-head"]["delta_vs_baseline"] == {"validation": None, "test": None}


def test_missing_models_are_empty_rows_with_a_note(experiment):
    results, t, _ = experiment
    rep = collect(results, t, "P", "2d", MODELS)
    for label, note in (("multi-head", "no model folder"), ("unfinished", "no fold_*/validation/summary.json")):
        row = rep["models"][label]
        assert row["folds"] == {} and row["test"] is None
        assert row["validation"] == {"foreground": {"mean": None, "std": None}, "per_class": {}}
        assert len(row["notes"]) == 1 and note in row["notes"][0]


def test_test_set_values(experiment):
    results, t, tests = experiment
    rep = collect(results, t, "P", "2d", MODELS, dict(tests, **{"joint teacher": str(os.path.dirname(results))}))
    assert rep["models"]["target teacher"]["test"] == {"foreground": pytest.approx(0.65),
                                                       "per_class": {"1": 0.7, "2": 0.6}, "metric": "Dice", "runs": 1}
    assert rep["models"]["student"]["test"] == {"foreground": pytest.approx(0.8), "per_class": {"1": 0.8, "2": None},
                                                "metric": "Dice", "runs": 1}
    joint = rep["models"]["joint teacher"]  # test folder without summary.json
    assert joint["test"] is None and "no test-set summary" in joint["notes"][0]
    with pytest.raises(KDError, match="unknown models"):
        collect(results, t, "P", "2d", MODELS, {"teacher": str(results)})


@pytest.mark.parametrize("text", ["{not json", '{"mean": {"1": {"Dice": ' + "9" * 5000 + "}}}",
                                  '{"mean": {"1": {"Dice": ' + "9" * 401 + "}}}"])
def test_unreadable_summary_is_a_kd_error(experiment, text):
    results, t, _ = experiment
    with open(os.path.join(results, t, "nnUNetTrainer__P__2d", "fold_0", "validation", "summary.json"), "w") as f:
        f.write(text)
    with pytest.raises(KDError, match="fold_0"):
        collect(results, t, "P", "2d", MODELS)


def _strict(text):
    def reject(token):
        raise ValueError(f"{token} in report.json")
    return json.loads(text, parse_constant=reject)


def test_write_report_files(experiment, tmp_path):
    results, t, tests = experiment
    with open(os.path.join(results, t, "nnUNetTrainer__P__2d", "dataset.json"), "w") as f:
        json.dump({"labels": {"background": 0, "organ": 1, "lesion": 2}}, f)  # the label names head the columns
    rep = collect(results, t, "P", "2d", MODELS, tests)
    out = tmp_path / "out"
    md = write_report(rep, str(out))
    assert (out / "report.md").read_text() == md
    assert _strict((out / "report.json").read_text()) == json.loads(json.dumps(rep))
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    assert header.split(" | ")[2:] == ["Folds", "Val cases", "Val fg Dice (mean ± std)", "Val Dice organ",
                                       "Val Dice lesion", "Test fg Dice", "Δ val vs baseline", "Δ test vs baseline |"]
    row = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert row["target teacher"] == ["nnUNetTrainer", "0, 1, 2", "", "0.7333 ± 0.1247", "0.8000", "0.5500", "0.6500",
                                     "(baseline)", "(baseline) |"]  # no per-case results: no case count
    assert row["student"] == ["nnUNetTrainerJointKD", "0, 1", "", "0.8000 ± 0.0000", "0.9000", "0.7000", "0.8000",
                              "+0.0000 †", "+0.1500 |"]  # † transductive; folds 0 and 1 only
    assert row["joint teacher"][1:4] == ["all", "", "0.5000"] and row["joint teacher"][-1] == " |"  # one fold: no ±
    assert row["multi-head"] == ["nnUNetTrainerMultiHead", "", "", "", "", "", "", "", " |"]
    assert "Short trainers" not in md
    assert "- multi-head: no model folder" in md


def test_write_report_without_test_set(experiment, tmp_path):
    results, t, _ = experiment
    md = write_report(collect(results, t, "P", "2d", MODELS), str(tmp_path / "out"))
    assert "Test fg Dice" not in md and "Δ test" not in md
    assert (tmp_path / "out" / "report.png").is_file()


@pytest.fixture
def cli_env(experiment, tmp_path, monkeypatch):
    results, t, tests = experiment
    for name in ("raw", "preprocessed"):
        os.makedirs(tmp_path / name)
        monkeypatch.setenv(f"nnUNet_{name}", str(tmp_path / name))
    monkeypatch.setenv("nnUNet_results", results)
    for trainer, fold in (("nnUNetTrainer_tiny", "fold_0"), ("nnUNetTrainerJointKD_tiny", "fold_0")):
        write_fold(results, t, trainer, fold, 0.8, 0.6)
    return results, t, tests


def test_cli_report(cli_env, capsys):
    results, t, tests = cli_env
    assert main(["report", "-t", "1", "-p", "P", "-c", "2d", "--suffix", "_tiny",
                 "--test-dir", f"student={tests['student']}"]) == 0
    out_dir = os.path.join(results, t, "nnunet_kd_report_P_2d")
    with open(os.path.join(out_dir, "report.md")) as f:
        md = f.read()
    assert md in capsys.readouterr().out
    with open(os.path.join(out_dir, "report.json")) as f:
        rep = json.load(f)
    assert rep["target"] == t and list(rep["models"]) == ["dataset-specific (target teacher)", "multi-head",
                                                          "joint teacher", "student"]
    assert rep["models"]["student"]["trainer"] == "nnUNetTrainerJointKD_tiny"
    assert rep["models"]["student"]["delta_vs_baseline"] == {"validation": pytest.approx(0.0),
                                                             "test": None}  # no baseline test set
    assert rep["models"]["student"]["test"]["foreground"] == pytest.approx(0.8)
    assert rep["models"]["multi-head"]["notes"]
    assert os.path.isfile(os.path.join(out_dir, "report.png"))


def test_cli_report_out_dir_and_errors(cli_env, tmp_path, capsys):
    assert main(["report", "-t", "1", "-p", "P", "-c", "2d", "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.md").is_file()
    capsys.readouterr()
    assert main(["report", "-t", "1", "-p", "P", "-c", "2d", "--test-dir", "student"]) == 2
    assert "must be LABEL=FOLDER" in capsys.readouterr().err
    assert main(["report", "-t", "1", "-p", "P", "-c", "2d", "--test-dir", "teacher=/x"]) == 2
    assert "LABEL one of ['baseline', 'multihead', 'joint', 'student']" in capsys.readouterr().err
    assert main(["report", "-t", "1", "-p", "P", "-c", "2d", "--test-dir", f"student={tmp_path / 'none'}"]) == 0
    assert f"no test-set summary {tmp_path / 'none'}" in capsys.readouterr().out  # the short label is the student
    assert main(["report", "-t", "7", "-p", "P", "-c", "2d"]) == 2
    assert "Dataset 7 does not exist" in capsys.readouterr().err


def test_cli_report_without_any_matching_model_fails_and_writes_nothing(cli_env, capsys):
    results, t, _ = cli_env
    from helpers import tree_digest
    before = tree_digest(results), sorted(os.walk(results))
    assert main(["report", "-t", "1", "-p", "Typo", "-c", "2d"]) == 2
    err = capsys.readouterr().err
    assert "No results of plans 'Typo', configuration '2d'" in err and "nothing was written" in err
    assert (tree_digest(results), sorted(os.walk(results))) == before  # no report folder created


def test_nan_in_a_summary_is_null_in_report_json(experiment, tmp_path):
    """A detection fold without boxes has mAP NaN: report.json stays strict JSON (null), written whole."""
    results, t, tests = experiment
    rep = collect(results, t, "P", "2d", MODELS, tests)
    rep["models"]["student"]["validation"]["foreground"]["mean"] = float("nan")
    rep["models"]["student"]["validation"]["per_class"]["1"]["std"] = float("inf")
    write_report(rep, str(tmp_path / "out"))
    saved = _strict((tmp_path / "out" / "report.json").read_text())
    assert saved["models"]["student"]["validation"]["foreground"]["mean"] is None
    assert saved["models"]["student"]["validation"]["per_class"]["1"]["std"] is None
    assert not [f for f in os.listdir(tmp_path / "out") if ".tmp" in f]


@pytest.fixture
def paired_experiment(tmp_path):
    """Per-case results: on validation the student is better on class 1 by 0.01 * (k + 1) in case k, equal on class 2;
    on the test set its two runs are +0.1 and -0.1 on class 1 (per-case mean: no difference)."""
    results, t = str(tmp_path / "results"), "Dataset001_X"
    val = [(f"v{k}", 0.6, 0.4) for k in range(10)]
    write_fold(results, t, "nnUNetTrainer", "fold_0", 0.6, 0.4, cases=val)
    write_fold(results, t, "nnUNetTrainer", "fold_all", 0.9, 0.9, cases=val)  # validates on training cases: unused
    write_fold(results, t, "nnUNetTrainerJointKD", "fold_0", 0.655, 0.4,
               cases=[(c, d1 + 0.01 * (k + 1), d2) for k, (c, d1, d2) in enumerate(val)])
    with open(os.path.join(results, t, "nnUNetTrainer__P__2d", "dataset.json"), "w") as f:
        json.dump({"labels": {"background": 0, "organ": 1, "lesion": 2}}, f)
    test = [(f"t{k}", 0.5 + 0.02 * k, 0.3) for k in range(10)]
    folders = {name: str(tmp_path / name) for name in ("base", "up", "down", "joint")}
    write_summary(folders["base"], 0.6, 0.3, test)
    write_summary(folders["up"], 0.7, 0.3, [(c, d1 + 0.1, d2) for c, d1, d2 in test])
    write_summary(folders["down"], 0.5, 0.3, [(c, d1 - 0.1, d2) for c, d1, d2 in test])
    write_summary(folders["joint"], 0.6, 0.3, test)
    tests = {"target teacher": [folders["base"]] * 2, "student": [folders["up"], folders["down"]],
             "joint teacher": [folders["joint"]]}
    return results, t, tests


def test_paired_differences_in_the_report(paired_experiment, tmp_path):
    results, t, tests = paired_experiment
    rep = collect(results, t, "P", "2d", MODELS, tests)
    paired = rep["models"]["student"]["paired"]
    assert paired["validation_folds"] == ["fold_0"] and paired["validation_transductive"]
    organ = paired["validation"]["1"]
    assert organ["mean"] == pytest.approx(0.055) and organ["p"] == pytest.approx(2 / 2 ** 10)
    assert organ["verdict"] == "better (CI above 0)" and organ["n_cases"] == 10
    assert paired["validation"]["2"]["ci95"] == pytest.approx([0.0, 0.0])
    assert paired["validation"]["foreground"]["mean"] == pytest.approx(0.0275)
    fg = paired["test"]["foreground"]
    assert (fg["n_cases"], fg["n_runs"]) == (10, 2) and fg["mean"] == pytest.approx(0.0, abs=1e-12)
    assert fg["ci95"][0] <= 0 <= fg["ci95"][1] and fg["verdict"] == "no significant difference"
    assert rep["models"]["student"]["test"]["runs"] == 2
    joint = rep["models"]["joint teacher"]
    assert joint["paired"]["test"] == {} and "1 test runs against the baseline's 2" in joint["notes"][-1]

    md = write_report(rep, str(tmp_path / "out"))
    assert "| student † | Dice 1 (organ) | +0.0550 |" in md
    student_row = next(line for line in md.splitlines() if line.startswith("| student | nnUNetTrainerJointKD"))
    assert student_row.split(" | ")[-2].endswith(" †")  # Δ val of the main table
    assert "| student | fg Dice | +0.0000 |" in md and "| 10 × 2 | no significant difference |" in md
    assert "† transductive" in md
    assert md.rstrip().splitlines()[-1].startswith("Verdict (test set, fg Dice): student vs target teacher: +0.0000")
    assert md.rstrip().endswith("10 cases × 2 run(s): no significant difference.")
    assert _strict((tmp_path / "out" / "report.json").read_text())["models"]["student"]["paired"]["test"]


def test_one_class_is_only_the_foreground():
    summary = {"metric_per_case": [{"reference_file": f"/gt/c{k}.png", "metrics": {"1": {"Dice": 0.1 * k}}}
                                   for k in range(3)]}
    assert per_case(summary, "s.json") == {"foreground": ("values", {f"c{k}.png": 0.1 * k for k in range(3)})}


def test_a_clean_fold_is_not_transductive(paired_experiment):
    results, t, _ = paired_experiment
    with open(os.path.join(results, t, "nnUNetTrainerJointKD__P__2d", "plans.json"), "w") as f:
        json.dump({"nnunet_kd": {"dann": {"target_fold": 0}}}, f)
    rep = collect(results, t, "P", "2d", MODELS)
    assert not rep["models"]["student"]["paired"]["validation_transductive"]
    # without test sets the verdict reads the validation
    assert verdict_line(rep).startswith("Verdict (validation, fg Dice): student vs target teacher: +0.0275")


@pytest.mark.parametrize("repeated_flag", [False, True])  # --test-dir A B, or --test-dir A --test-dir B
def test_cli_report_pairs_repeated_test_dirs(paired_experiment, tmp_path, monkeypatch, capsys, repeated_flag):
    results, t, tests = paired_experiment
    for name in ("raw", "preprocessed"):
        os.makedirs(tmp_path / name)
        monkeypatch.setenv(f"nnUNet_{name}", str(tmp_path / name))
    monkeypatch.setenv("nnUNet_results", results)
    os.makedirs(tmp_path / "raw" / t)
    items = [f"{label}={folder}" for label in ("target teacher", "student") for folder in tests[label]]
    args = ["report", "-t", "1", "-p", "P", "-c", "2d", "-o", str(tmp_path / "o")]
    args += [a for item in items for a in ("--test-dir", item)] if repeated_flag else ["--test-dir", *items]
    assert main([a.replace("target teacher", "dataset-specific (target teacher)") for a in args]) == 0
    out = capsys.readouterr().out
    assert "Verdict (test set, fg Dice): student vs dataset-specific (target teacher): +0.0000" in out


@pytest.mark.parametrize("kd_state", [[], {"teachers": "x"}, {"teachers": [{"role": "joint"}]}, {"teachers": [1]}])
def test_a_malformed_kd_state_is_a_note_not_a_traceback(experiment, kd_state):
    import torch
    from helpers import nnunet_like_checkpoint
    results, t, tests = experiment
    path = os.path.join(results, t, "nnUNetTrainerJointKD__P__2d", "fold_0", "checkpoint_final.pth")
    torch.save({**nnunet_like_checkpoint(), "kd_state": kd_state}, path)
    rep = collect(results, t, "P", "2d", MODELS, tests)
    assert any(f"{path}: its kd_state has no valid teacher records" in n for n in rep["models"]["student"]["notes"])


def test_a_crafted_checkpoint_in_the_results_runs_no_code(experiment, tmp_path):
    """report reads the student's checkpoint_final.pth for its teacher record: a crafted one is refused and named in
    the notes, and its payload never runs."""
    import torch
    from helpers import OpensAFile, nnunet_like_checkpoint
    results, t, tests = experiment
    marker = tmp_path / "code_ran"
    torch.save({**nnunet_like_checkpoint(), "payload": OpensAFile(str(marker))},
               os.path.join(results, t, "nnUNetTrainerJointKD__P__2d", "fold_0", "checkpoint_final.pth"))
    rep = collect(results, t, "P", "2d", MODELS, tests)
    assert any("checkpoint_final.pth holds io.open" in n for n in rep["models"]["student"]["notes"])
    assert not marker.exists()


def test_summaries_name_their_task_and_older_ones_are_told_by_their_metric():
    from nnunet_kd.classification.metrics import classification_summary
    from nnunet_kd.detection.metrics import detection_summary
    from nnunet_kd.report.collect import summary_task
    cls = classification_summary(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    det = detection_summary({"c": [([0, 0, 4, 4], 0)]}, {"c": [([0, 0, 4, 4], 0, 0.9)]}, ["lesion"])
    assert (cls["task"], det["task"]) == ("cls", "det")
    assert [summary_task(s) for s in (cls, det, {"mean": {}})] == ["cls", "det", "seg"]
    assert [summary_task({"balanced_accuracy": 1.0}), summary_task({"mAP": 0.5})] == ["cls", "det"]


def test_the_pooled_metric_of_each_kind_of_per_case_result():
    from nnunet_kd.detection.metrics import image_matches
    from nnunet_kd.report.collect import pooled_metric
    assert pooled_metric("values", {"a": 0.2, "b": None, "c": float("nan"), "d": 0.6}) == pytest.approx(0.4)
    classes = {"a": ("x", "x"), "b": ("x", "y"), "c": ("y", "y"), "d": ("x", "x")}
    assert pooled_metric("classes", classes) == pytest.approx((2 / 3 + 1) / 2)  # recall of x 2/3, of y 1
    hit, miss = image_matches([([0, 0, 4, 4], 0)], [([0, 0, 4, 4], 0, 0.9)], 1), image_matches([([0, 0, 4, 4], 0)], [], 1)
    assert pooled_metric("map50", {"a": hit}) == pytest.approx(1.0)
    assert pooled_metric("froc", {"a": hit, "b": miss}) == pytest.approx(0.5)
    assert pooled_metric("values", {}) is None
