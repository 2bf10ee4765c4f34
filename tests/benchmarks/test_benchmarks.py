"""Smoke tests of the benchmarks on tiny sizes (their figures are not asserted: timings belong in benchmarks)."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
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


def test_domain_shift_results_table():
    bench = _load("domain_shift")
    runs = [{"seed": s, "date": "2026-11-26", "machine": "m", "minutes": 1.0, "command": f"x --seed {s}",
             "test_dice": {"baseline": 0.5 + s / 10, "student": 0.6}} for s in range(3)]
    text = bench.render(runs)
    assert "| 2 | 2026-11-26 | m | 1 | 0.7000 | 0.6000 |" in text
    assert "| mean +/- std | | | | 0.6000 +/- 0.0816 | 0.6000 +/- 0.0000 |" in text
    assert "mean +/- std" not in bench.render(runs[:2])


def test_epoch_overhead_on_the_fixture(kd, kd_pipeline, capsys, monkeypatch):
    for k, v in kd.env.items():
        monkeypatch.setenv(k, v)
    _load("epoch_overhead").main(["-t", kd.target, "-s", kd.source_a, "-p", kd.plans, "-c", "2d", "--teachers",
                                  "_tiny", "--device", "cpu", "--epochs", "1", "--iterations", "2",
                                  "--roles", "vanilla", "student"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| vanilla") or line.startswith("| student")]
    assert len(rows) == 2 and rows[0].split("|")[3].strip() == "1.00"
    results = os.path.join(kd.results, kd.target, f"nnUNetTrainerJointKD_BenchmarkEpochs__{kd.plans}__2d", "fold_0")
    assert not [f for f in os.listdir(results) if f.endswith(".pth")]  # benchmarks write no checkpoints


def test_cls_domain_shift_results_table():
    runs = [{"seed": s, "date": "2026-11-26", "machine": "m", "minutes": 2.0, "command": f"x --seed {s}",
             "test_balanced_accuracy": {"baseline": 0.4 + s / 10, "student": 0.5}} for s in range(3)]
    text = _load("cls_domain_shift").render(runs)
    assert "| 1 | 2026-11-26 | m | 2 | 0.5000 | 0.5000 |" in text
    assert "| mean +/- std | | | | 0.5000 +/- 0.0816 | 0.5000 +/- 0.0000 |" in text


@pytest.mark.parametrize("module", ["step_overhead", "domain_shift", "epoch_overhead", "student_width",
                                    "cls_domain_shift"])
def test_benchmarks_have_a_help(module, capsys):
    with pytest.raises(SystemExit) as e:
        _load(module).main(["--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out
