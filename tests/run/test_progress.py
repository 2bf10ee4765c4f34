"""The stage runner: whole output to the log, one live line per stage, the log's tail on failure."""
import os
import sys

import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.run.progress import TAIL_LINES, EpochLines, run_stage

# what nnU-Net 2.8.1's trainer prints per epoch (print_to_log_file: a timestamp, then the values)
EPOCH = """2026-12-01 10:00:0{e}.123456: Epoch {e}
2026-12-01 10:00:0{e}.123456: Current learning rate: 0.01
2026-12-01 10:00:0{e}.223456: train_loss {loss}
2026-12-01 10:00:0{e}.223456: val_loss -0.1
2026-12-01 10:00:0{e}.223456: Pseudo dice [np.float32(0.5), np.float32({d}), np.float32(nan)]
2026-12-01 10:00:0{e}.223456: Epoch time: {t} s
"""


def _script(tmp_path, epochs, fail=False):
    text = "".join(EPOCH.format(e=e, loss=-0.1 * e, d=0.7 + 0.1 * e, t=2.0 + e) for e in range(epochs))
    path = tmp_path / "train.py"
    path.write_text(f"import sys\nprint('plans ' * 50)\nsys.stdout.write({text!r})\n"
                    f"print('warning on stderr', file=sys.stderr)\n" +
                    ("for i in range(40): print(f'traceback line {i}')\nsys.exit(3)\n" if fail else ""))
    return [sys.executable, str(path)]


def test_epoch_lines_read_nnunets_epoch_output():
    lines = EpochLines()
    ends = [lines.feed(line) for e in range(2) for line in EPOCH.format(e=e, loss=-0.5, d=0.9, t=3.0).splitlines()]
    assert ends.count(True) == 2 and lines.done == 2 and lines.loss == -0.5
    assert lines.metric == pytest.approx(0.7)  # mean over classes, NaN left out
    assert lines.summary(10, "pseudo Dice") == "loss -0.5000, pseudo Dice 0.7000, 3.0 s/epoch, ~24 s left"


def test_a_stage_writes_everything_to_its_log_and_shows_one_line_per_epoch(tmp_path, capfd):
    log = tmp_path / "model" / "nnunet_kd_fold_0.log"
    run_stage(_script(tmp_path, 3), dict(os.environ), str(log), "[2/6] student fold 0", epochs=3,
              metric_name="FROC")
    out, err = capfd.readouterr()
    assert out.splitlines() == [
        "[2/6] student fold 0: epoch 1/3, loss -0.0000, FROC 0.6000, 2.0 s/epoch, ~4 s left",
        "[2/6] student fold 0: epoch 2/3, loss -0.1000, FROC 0.6500, 2.5 s/epoch, ~2 s left",
        "[2/6] student fold 0: epoch 3/3, loss -0.2000, FROC 0.7000, 3.0 s/epoch, ~0 s left"]
    assert err == ""
    text = log.read_text()
    assert text.count("Epoch time:") == 3 and "warning on stderr" in text and "plans plans" in text
    run_stage(_script(tmp_path, 1), dict(os.environ), str(log), "again", epochs=1)  # a rerun appends
    assert log.read_text().startswith(text) and log.read_text().count("\n==== ") == 2


def test_verbose_streams_the_output_and_planning_keeps_its_progress_bars_on_the_console(tmp_path, capfd):
    log = tmp_path / "plan.log"
    run_stage(_script(tmp_path, 1), dict(os.environ), str(log), "[1/6] shared plans", verbose=True)
    out, _ = capfd.readouterr()
    assert "Epoch time: 2.0 s" in out and "plans plans" in out and "warning on stderr" in out
    run_stage(_script(tmp_path, 1), dict(os.environ), str(log), "[1/6] shared plans")  # no epochs: planning
    out, err = capfd.readouterr()
    assert out == "" and err == "warning on stderr\n"  # nnU-Net draws its bars on stderr


def test_a_failed_stage_shows_the_tail_of_its_log(tmp_path, capfd):
    log = tmp_path / "nnunet_kd_fold_0.log"
    with pytest.raises(KDError) as e:
        run_stage(_script(tmp_path, 1, fail=True), dict(os.environ), str(log), "[3/6] joint", epochs=5)
    message = str(e.value)
    assert f"failed with exit status 3. The last lines of its log {log}:" in message
    assert "traceback line 39" in message and f"traceback line {40 - TAIL_LINES}" in message
    assert f"traceback line {39 - TAIL_LINES}" not in message and "rerun the same `nnunet_kd run`" in message


def test_on_a_terminal_the_line_carries_a_bar_and_stays_one_line(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr("nnunet_kd.run.progress._tty", lambda: True)
    run_stage(_script(tmp_path, 2), dict(os.environ), str(tmp_path / "log"), "[4/6] target teacher fold 0", epochs=2)
    out, err = capfd.readouterr()
    assert out == ""  # the bar redraws one line on stderr
    last = err.split("\r")[-2] if err.endswith("\n") else err.split("\r")[-1]
    assert last.startswith("[4/6] target teacher fold 0: epoch 2/2, loss -0.1000, metric 0.6500, 2.5 s/epoch")
    assert last.rstrip().endswith("|" + "█" * 20 + "|")
