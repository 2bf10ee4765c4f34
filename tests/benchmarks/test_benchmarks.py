"""Smoke tests of the benchmarks on tiny sizes (their figures are not asserted: timings belong in benchmarks)."""
import importlib.util
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import tree_digest, use_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
    if os.path.join(ROOT, "benchmarks") not in sys.path:  # as `python benchmarks/<name>.py` has it
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_overhead_runs_the_real_train_steps(capsys, monkeypatch):
    bench = _load("step_overhead")
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_compile"):
        monkeypatch.setenv(k, os.environ.get(k, ""))  # restored afterwards: the benchmark points them elsewhere
    bench.main(["--teachers", "1", "2", "--steps", "1", "--warmup", "1"])
    out = capsys.readouterr().out
    table = out[out.index("| step |"):].splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == [
        "vanilla nnU-Net step", "KD step, 1 teacher", "KD step, 2 teachers"]
    assert all(float(line.split("|")[2]) > 0 for line in table[2:])


def test_seed_runs_tables(tmp_path, monkeypatch):
    results = _load("seed_runs")
    monkeypatch.setattr(results, "RESULTS", str(tmp_path))
    metrics = {"test_froc": "FROC.", "test_map": "mAP."}
    for s in range(3):
        run = {"seed": s, "date": "2026-11-26", "machine": "m", "minutes": 1.0, "command": f"x --seed {s}",
               "test_froc": {"baseline": 0.5 + s / 10, "student": 0.6}, "test_map": {"baseline": None, "student": 0.2}}
        text = results.record("bench", run, "Title", metrics)
        if s == 1:
            assert "mean +/- std" not in text
    results.record("bench", dict(run, minutes=3.0), "Title", metrics)  # the same seed and command: replaced
    assert [r["minutes"] for r in json.loads((tmp_path / "bench.json").read_text())] == [1.0, 1.0, 3.0]
    assert (tmp_path / "bench.md").read_text() == text.replace("| 2 | 2026-11-26 | m | 1 |", "| 2 | 2026-11-26 | m | 3 |")
    assert "| 2 | 2026-11-26 | m | 1 | 0.7000 | 0.6000 |" in text
    assert "| mean +/- std | | | | 0.6000 +/- 0.0816 | 0.6000 +/- 0.0000 |" in text
    assert "| 0 | 2026-11-26 | m | 1 | - | 0.2000 |" in text
    assert "| mean +/- std | | | | - | 0.2000 +/- 0.0000 |" in text


def _seg_run(results, s: int, gain: float = 0.05, command: str = "x") -> dict:
    """A run of seed s with 6 test cases: joint teacher +0.1 on every case, student about +gain."""
    def summary(dice):
        return results.kept_summary({"metric_per_case": [
            {"reference_file": f"/raw/labelsTs/case_{k}.png", "prediction_file": "x", "metrics": {"1": {"Dice": d}}}
            for k, d in enumerate(dice)]})

    base = [0.5 + 0.01 * k + 0.02 * s for k in range(6)]
    return {"seed": s, "date": "2026-11-30", "machine": "m", "minutes": 1.0, "command": f"{command} --seed {s}",
            "test_dice": {"baseline": float(np.mean(base)), "joint teacher": float(np.mean(base)) + 0.1,
                          "student": float(np.mean(base)) + gain},
            "summaries": {"baseline": summary(base), "joint teacher": summary([d + 0.1 for d in base]),
                          "student": summary([d + gain + 0.001 * k + 0.0002 * s for k, d in enumerate(base)])}}


def test_seed_runs_paired_differences_and_summary(tmp_path, monkeypatch):
    results = _load("seed_runs")
    monkeypatch.setattr(results, "RESULTS", str(tmp_path))
    for s in range(3):
        text = results.record("bench", _seg_run(results, s), "Title", {"test_dice": "Dice."},
                              summary=("seg", "test_dice", "foreground"))
    assert "| joint teacher | fg Dice | +0.1000 | [+0.1000, +0.1000] |" in text
    assert "| student | fg Dice | +0.0527 |" in text and "| 18 × 1 | better (CI above 0) |" in text
    seg = json.loads((tmp_path / "summary.json").read_text())["seg"]
    assert (seg["seeds"], seg["test_cases"]) == (3, 18)
    assert seg["mean"]["joint teacher"] == pytest.approx(seg["mean"]["baseline"] + 0.1)
    assert seg["joint"]["mean"] == pytest.approx(0.1) and seg["joint"]["ci95"] == pytest.approx([0.1, 0.1])
    assert seg["student"]["p"] == pytest.approx(2 / 2 ** 18, rel=1e-6)  # Wilcoxon: all 18 differences positive
    assert seg["retention"] == pytest.approx(0.527)
    assert list(seg["student_by_measure"]) == ["foreground"] and seg["student_below_baseline"] == []


def test_ablation_table_compares_each_arm_with_its_own_baseline(tmp_path, monkeypatch, capsys):
    results = _load("seed_runs")
    monkeypatch.setattr(results, "RESULTS", str(tmp_path))
    for s in range(2):
        results.record_arm("bench", None, _seg_run(results, s), "Title", {"test_dice": "Dice."},
                           ("seg", "test_dice", "foreground"))
        results.record_arm("bench", "arm", _seg_run(results, s, gain=0.08, command="y"), "Title",
                           {"test_dice": "Dice."}, None)
    _load("ablation").main(["--benchmark", "bench", "--results", str(tmp_path)])
    text = (tmp_path / "bench_ablation.md").read_text()
    assert text.index("arm 'default', seeds [0, 1]") < text.index("arm 'arm', seeds [0, 1]")
    assert "| student | fg Dice | +0.0526 |" in text and "| student | fg Dice | +0.0826 |" in text
    assert "Retention (foreground): 0.53" in text and "Retention (foreground): 0.83" in text
    assert "`y --seed 1`" in text and text == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "against itself" not in text


def test_ablation_puts_an_arm_against_another_on_the_seeds_both_ran(tmp_path, monkeypatch):
    results = _load("seed_runs")
    monkeypatch.setattr(results, "RESULTS", str(tmp_path))
    for s in range(3):
        if s < 2:
            results.record_arm("bench", "old", _seg_run(results, s), "Title", {"test_dice": "Dice."}, None)
        results.record_arm("bench", "new", _seg_run(results, s, gain=0.08, command="y"), "Title",
                           {"test_dice": "Dice."}, None)
    ablation = _load("ablation")
    ablation.main(["--benchmark", "bench", "--results", str(tmp_path), "--versus", "new", "old"])
    text = (tmp_path / "bench_ablation.md").read_text()
    versus = text[text.index("each model of arm 'new' against itself in arm 'old', seeds [0, 1]"):]
    assert "| baseline | fg Dice | +0.0000 |" in versus and "| joint teacher | fg Dice | +0.0000 |" in versus
    assert "| student | fg Dice | +0.0300 | [+0.0300, +0.0300] |" in versus and "| 12 × 1 |" in versus
    with pytest.raises(SystemExit, match="no arm 'gone'"):
        ablation.main(["--benchmark", "bench", "--results", str(tmp_path), "--versus", "new", "gone"])
    # a second training of seed 0 (student_variant.py --student-seed) is paired with the reference's second
    results.record_arm("bench", "new", _seg_run(results, 0, gain=0.10, command="y --student-seed 100"), "Title",
                       {"test_dice": "Dice."}, None)
    with pytest.raises(SystemExit, match="seed 0: 2 training.s. against 1"):
        ablation.main(["--benchmark", "bench", "--results", str(tmp_path), "--versus", "new", "old"])
    results.record_arm("bench", "old", _seg_run(results, 0, gain=0.05, command="x --student-seed 100"), "Title",
                       {"test_dice": "Dice."}, None)
    ablation.main(["--benchmark", "bench", "--results", str(tmp_path), "--versus", "new", "old"])
    versus = (tmp_path / "bench_ablation.md").read_text().split("against itself")[1]
    assert "| student | fg Dice | +0.0367 |" in versus and "| 12 × 2 |" in versus


def test_retention_only_where_the_joint_teacher_is_better():
    retention = _load("seed_runs").retention
    student = {"mean": 0.011, "ci95": [-0.017, 0.043]}
    assert retention({"mean": 0.02, "ci95": [0.005, 0.04]}, student) == pytest.approx(0.55)
    # a joint teacher level with the baseline (mean 1e-16 from rounding) has no gain to keep
    assert retention({"mean": 1e-16, "ci95": [-0.034, 0.035]}, student) is None
    assert retention({"mean": 0.02, "ci95": [None, None]}, student) is None and retention(None, student) is None


def test_summary_names_a_class_the_student_loses(tmp_path, monkeypatch):
    results = _load("seed_runs")
    monkeypatch.setattr(results, "RESULTS", str(tmp_path))
    rng = np.random.RandomState(0)

    def summary(organ, lesion):
        return results.kept_summary({"metric_per_case": [
            {"reference_file": f"case_{k}.png", "metrics": {"1": {"Dice": o}, "2": {"Dice": le}}}
            for k, (o, le) in enumerate(zip(organ, lesion))]})

    organ, lesion = 0.8 + 0.05 * rng.rand(12), 0.4 + 0.1 * rng.rand(12)
    run = {"seed": 0, "date": "d", "machine": "m", "minutes": 1.0, "command": "x", "test_dice": {
        "baseline": 0.6, "joint teacher": 0.65, "student": 0.6},
        "summaries": {"baseline": summary(organ, lesion), "joint teacher": summary(organ + 0.05, lesion + 0.05),
                      "student": summary(organ + 0.07 + 0.01 * rng.rand(12), lesion - 0.05 - 0.01 * rng.rand(12))}}
    results.record("bench", run, "Title", {"test_dice": "Dice."}, summary=("seg", "test_dice", "foreground"))
    seg = json.loads((tmp_path / "summary.json").read_text())["seg"]
    assert set(seg["student_by_measure"]) == {"foreground", "1", "2"}
    assert seg["student_below_baseline"] == ["2"]  # the lesion class, while the foreground mean hides it
    assert seg["student_by_measure"]["1"]["ci95"][0] > 0


def test_targets_say_which_are_missed_and_by_how_much(tmp_path, capsys):
    def diff(mean, low, high):
        return {"mean": mean, "ci95": [low, high], "p": 0.5}

    summary = {
        "seg": {"metric": "test_dice: foreground", "seeds": 3, "retention": 0.5, "student": diff(0.01, 0.002, 0.02),
                "student_by_measure": {"foreground": diff(0.01, 0.002, 0.02)}, "student_below_baseline": []},
        "cls": {"metric": "test_balanced_accuracy: balanced accuracy", "seeds": 3, "retention": None,
                "student": diff(0.01, -0.02, 0.04), "student_by_measure": {}, "student_below_baseline": []},
        "det": {"metric": "test_froc: FROC", "seeds": 3, "retention": None, "student": diff(-0.01, -0.03, 0.0),
                "student_by_measure": {"FROC": diff(-0.01, -0.03, 0.0), "mAP@0.5": diff(-0.01, -0.03, -0.002)},
                "student_below_baseline": ["mAP@0.5"]}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "det_domain_shift_kd.json").write_text("[]")
    _load("targets").main(["--results", str(tmp_path)])
    text = (tmp_path / "targets.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = {tuple(c.strip() for c in line.split("|")[1:5:3]): line.split("|")[6:8] for line in text.splitlines()
            if line.startswith("| seg") or line.startswith("| cls") or line.startswith("| det")}
    assert rows[("seg", "student interval above 0")] == [" met ", " - "]
    assert rows[("seg", "retention >= 0.7")] == [" missed ", " 0.2000 "]
    assert rows[("cls", "student interval above 0")] == [" missed ", " 0.0200 "]
    assert rows[("cls", "retention >= 0.7")][0] == " missed "
    assert rows[("det", "student FROC interval not below 0")] == [" met ", " - "]
    assert rows[("det", "student mAP@0.5 interval not below 0")] == [" missed ", " 0.0020 "]
    assert rows[("det", "no student measure below the baseline (CI under 0)")] == [" missed ", " 0.0020 "]
    assert "- det (`det_domain_shift`): `kd`" in text and "- seg (`domain_shift`): nothing else" in text


def test_seed_runs_environment_writes_missing_datasets_only(tmp_path):
    runs = _load("seed_runs")
    written = []

    def write(raw, spec, seed):
        written.append((spec.name, seed))
        os.makedirs(os.path.join(raw, f"Dataset{spec.dataset_id:03d}_{spec.name}"))

    specs = [SimpleNamespace(dataset_id=7, name="A"), SimpleNamespace(dataset_id=8, name="B")]
    env = runs.nnunet_env(str(tmp_path), 3, specs, write)
    assert written == [("A", 3), ("B", 3)] and env["nnUNet_KD_SEED"] == "3"
    assert all(os.path.isdir(env[k]) and env[k].startswith(str(tmp_path))
               for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
    runs.nnunet_env(str(tmp_path), 3, specs, write)
    assert len(written) == 2
    os.makedirs(os.path.join(env["nnUNet_results"], "nnUNetTrainerX_demo__P__2d"))
    os.makedirs(os.path.join(env["nnUNet_results"], "nnUNetTrainerX_demo2__P__2d"))
    assert runs.model_folder(env["nnUNet_results"], "nnUNetTrainerX_demo") == os.path.join(
        env["nnUNet_results"], "nnUNetTrainerX_demo__P__2d")


def test_epoch_overhead_on_the_fixture(kd, kd_pipeline, tmp_path, capsys, monkeypatch):
    env = kd_pipeline.copy(tmp_path)  # the benchmark's trainers write logs
    use_env(monkeypatch, env)
    unlabelled = kd.student_plans(kd.plan_with_unlabelled_images(), "_unl", unlabelled_ratio=0.5)
    _load("epoch_overhead").main(["-t", kd.target, "-s", kd.source_a, "-p", kd.plans, "-c", "2d", "--teachers",
                                  "_tiny", "--device", "cpu", "--epochs", "1", "--iterations", "2",
                                  "--roles", "source", "student_unlabelled",
                                  "--unlabelled-plans", unlabelled])
    out = capsys.readouterr().out
    rows = [line.split("|")[1].strip() for line in out.splitlines()
            if line.startswith("| ") and "x vanilla" not in line]
    assert rows == ["vanilla", "source", "student_unlabelled"]  # the student's benchmark trainer: student_unlabelled
    assert out.count("| vanilla | ") == 1 and "| 1.00 |" in out
    assert out.count("round 1, student_unlabelled:") == 1
    results = os.path.join(env["nnUNet_results"], kd.target, f"nnUNetTrainerJointKD_BenchmarkEpochs__{unlabelled}__2d",
                           "fold_0")
    assert not [f for f in os.listdir(results) if f.endswith(".pth")]  # benchmarks write no checkpoints


def test_epoch_overhead_takes_medians_over_rounds_and_ratios_within_each():
    rounds = [{"vanilla": (2.0, 1.0), "source": (3.0, 1.0)}, {"vanilla": (4.0, 1.0), "source": (4.0, 3.0)},
              {"vanilla": (3.0, 2.0), "source": (3.6, 2.2)}]
    got = _load("epoch_overhead").table(rounds)
    assert got["vanilla"] == (3.0, 1.0, 1.0, 1.0)
    assert got["source"] == pytest.approx((3.6, 1.2, 2.2, 1.1))  # not 3.6 / 3.0 nor 2.2 / 1.0
    assert _load("epoch_overhead").median_ratio(rounds, "vanilla", "source", 1) == pytest.approx(1 / 1.1)


def test_dann_probe_holds_out_each_scanner_under_the_targets_channel_and_chooses_by_its_rule(tmp_path):
    from nnunet_kd.segmentation.synthetic import shift_benchmark
    from nnunet_kd.segmentation.synthetic import DEMO_CHANNEL_MAP
    bench = _load("dann_probe")
    specs = shift_benchmark()
    held_out = bench.held_out_specs(specs, DEMO_CHANNEL_MAP)
    assert [list(s.channels) for s in held_out] == [["T1"]] * 3
    assert held_out[0].channels["T1"] == specs[0].channels["T1"] and held_out[0].dataset_id != specs[0].dataset_id
    assert held_out[1].channels["T1"] == specs[1].channels["t1"]  # mapped by name
    assert held_out[2].channels["T1"] == specs[2].channels["mri"]  # mapped by the channel map
    assert [(s.num_training, s.num_test) for s in held_out] == [(0, bench.HELD_OUT_TARGET)] + [(0, bench.HELD_OUT)] * 2

    def teacher(probe, dice):
        return {"probe": probe, "source_dice": dice, "head_acc": 0.6}
    run = {"seed": 0, "minutes": 1.0, "command": "c", "teachers": {"A": {
        "0": teacher(0.99, 0.95), "0.1": teacher(0.9, 0.945), "0.3": teacher(0.7, 0.93), "1": teacher(0.6, 0.5)}}}
    text = bench.record(run, str(tmp_path))
    assert "| 0 | A | 0.990 / 0.600 / 0.950 | 0.900 / 0.600 / 0.945 |" in text
    assert "Chosen: **0.1**" in text  # 0.3 costs 0.02 Dice, more than the rule allows
    assert bench.choose_weight([run])[0] == "0.1"
    run["teachers"]["A"]["0.3"]["source_dice"] = 0.949
    assert bench.choose_weight([run])[0] == "0.3"
    assert json.loads((tmp_path / "dann_probe.json").read_text())[0]["teachers"]["A"]["0"]["probe"] == 0.99


@pytest.mark.parametrize("module", ["step_overhead", "domain_shift", "epoch_overhead", "student_width", "student_variant",
                                    "cls_domain_shift", "det_domain_shift", "dann_probe", "ablation",
                                    "targets"])
def test_benchmarks_have_a_help(module, capsys):
    with pytest.raises(SystemExit) as e:
        _load(module).main(["--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out


@pytest.mark.parametrize("name, changed", [("no_dann", {("dann", "weight"): 0.0}),
                                           ("unlabelled_kd", {("distill", "unlabelled_ratio"): 0.5}),
                                           ("no_dann_unlabelled_kd", {("dann", "weight"): 0.0,
                                                                      ("distill", "unlabelled_ratio"): 0.5})])
def test_ablation_presets_change_only_their_arm_of_the_tiny_preset(name, changed):
    from nnunet_kd.settings import load_preset
    tiny, arm = load_preset("tiny"), load_preset(os.path.join(ROOT, "benchmarks", "presets", f"{name}.json"))
    differences = {(group, key): arm[group][key] for group in tiny if isinstance(tiny[group], dict)
                   for key in tiny[group] if arm[group][key] != tiny[group][key]}
    assert differences == changed


def test_ablation_arm_options_and_results(tmp_path, monkeypatch):
    import argparse
    runs = _load("seed_runs")
    monkeypatch.setattr(runs, "RESULTS", str(tmp_path))
    parser = argparse.ArgumentParser()
    runs.add_arm_arguments(parser)
    monkeypatch.chdir(tmp_path)
    assert runs.arm_argv(parser.parse_args([]), "U") == ["--preset", "tiny"]
    args = parser.parse_args(["--preset", "arm.json", "--unlabelled", "24", "--tag", "arm"])
    assert runs.arm_argv(args, "U") == ["--preset", str(tmp_path / "arm.json"), "--extra-target-images", "U"]
    run = {"seed": 0, "date": "d", "machine": "m", "minutes": 1.0, "command": "c", "score": {"a": 0.5, "b": 0.6}}
    runs.record_arm("bench", args.tag, run, "Title", {"score": "Score."}, ("seg", "score", "x"))
    assert sorted(os.listdir(tmp_path)) == ["bench_arm.json", "bench_arm.md"]  # an arm leaves summary.json alone
    assert "# Title, arm 'arm'" in (tmp_path / "bench_arm.md").read_text()


def test_student_variant_adds_the_runs_unlabelled_images_for_the_student_alone(kd, tmp_path, monkeypatch):
    import shutil
    import SimpleITK as sitk
    from nnunet_kd.planning.unlabelled import unlabelled_identifiers
    bench = _load("student_variant")
    # the fixture's target is tiny_benchmark()'s, drawn with seed 0
    monkeypatch.setattr(bench, "SCENARIOS", {"tiny": ("tiny_benchmark", "tiny", "seg", "Tiny")})
    preprocessed = tmp_path / "preprocessed" / kd.target  # a copy: the fixture's own stays as it is
    preprocessed.mkdir(parents=True)
    for name in (kd.plans + ".json", "dataset.json"):
        shutil.copy(os.path.join(kd.preprocessed, kd.target, name), preprocessed)
    monkeypatch.setenv("nnUNet_raw", kd.raw)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    raw_before = tree_digest(kd.raw)
    with pytest.raises(SystemExit, match=f"{kd.target}.imagesTr.*seed 1"):
        bench.add_unlabelled_images(str(tmp_path), "tiny", 1, 3, kd.target, kd.plans)
    bench.add_unlabelled_images(str(tmp_path), "tiny", 0, 3, kd.target, kd.plans)
    folders = [f for f in os.listdir(preprocessed) if f.endswith("_unlabelled")]
    assert len(folders) == 1 and len(unlabelled_identifiers(str(preprocessed / folders[0]))) == 3
    with pytest.raises(SystemExit, match="holds 3 unlabelled images, not 2: give --unlabelled 3"):
        bench.add_unlabelled_images(str(tmp_path), "tiny", 0, 2, kd.target, kd.plans)
    assert tree_digest(kd.raw) == raw_before
    # every labelled case is compared, not only the first
    changed_raw = tmp_path / "changed_raw"
    shutil.copytree(os.path.join(kd.raw, kd.target), changed_raw / kd.target)
    last = sorted(os.listdir(changed_raw / kd.target / "imagesTr"))[-1]
    image = sitk.ReadImage(str(changed_raw / kd.target / "imagesTr" / last))
    sitk.WriteImage(image + 1, str(changed_raw / kd.target / "imagesTr" / last))
    monkeypatch.setenv("nnUNet_raw", str(changed_raw))
    with pytest.raises(SystemExit, match=f"imagesTr.{last} differs .* seed 0"):
        bench.add_unlabelled_images(str(tmp_path), "tiny", 0, 3, kd.target, kd.plans)


def test_student_variant_draws_the_classification_runs_unlabelled_images_once(cls_run, tmp_path, monkeypatch):
    import shutil
    from nnunet_kd.classification.synthetic import cls_benchmark
    from nnunet_kd.planning.unlabelled import unlabelled_identifiers
    bench, cls_bench = _load("student_variant"), _load("cls_domain_shift")
    # the fixture's datasets are cls_benchmark()'s, drawn with seed 0
    monkeypatch.setattr(cls_bench, "benchmark_specs", cls_benchmark)
    monkeypatch.setitem(sys.modules, "cls_domain_shift", cls_bench)
    preprocessed = tmp_path / "preprocessed" / cls_run.target  # a copy: the fixture's own stays as it is
    preprocessed.mkdir(parents=True)
    for name in (cls_run.plans + ".json", "dataset.json"):
        shutil.copy(os.path.join(cls_run.setup.preprocessed, cls_run.target, name), preprocessed)
    monkeypatch.setenv("nnUNet_raw", cls_run.setup.raw)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    raw_before = tree_digest(cls_run.setup.raw)
    with pytest.raises(SystemExit, match="differs from the cls_domain_shift target drawn with seed 1"):
        bench.add_unlabelled_images(str(tmp_path / "w1"), "cls_domain_shift", 1, 3, cls_run.target, cls_run.plans)
    for _ in range(2):  # a second training of the variant (--student-seed) reuses the drawn images
        bench.add_unlabelled_images(str(tmp_path / "w0"), "cls_domain_shift", 0, 3, cls_run.target, cls_run.plans)
    folders = [f for f in os.listdir(preprocessed) if f.endswith("_unlabelled")]
    assert len(folders) == 1 and len(unlabelled_identifiers(str(preprocessed / folders[0]))) == 3
    with pytest.raises(SystemExit, match="holds 3 unlabelled images, not 2: give --unlabelled 3"):
        bench.add_unlabelled_images(str(tmp_path / "w0"), "cls_domain_shift", 0, 2, cls_run.target, cls_run.plans)
    assert tree_digest(cls_run.setup.raw) == raw_before
