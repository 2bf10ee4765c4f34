"""Atomic writes keep the old file whole when writing the new one fails; lock files name their holder."""
import json
import os

import pytest

from nnunet_kd.errors import KDError
from nnunet_kd.files import exclusive, save_json_atomic, write_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "nnunet_kd_stage.json")
    save_json_atomic({"fingerprint": "a"}, path)
    with pytest.raises(TypeError):  # fails while serialising
        save_json_atomic({"fingerprint": object()}, path)
    with pytest.raises(ValueError):  # strict JSON refuses NaN
        save_json_atomic({"x": float("nan")}, path, allow_nan=False)

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        write_atomic(path, "{}")
    with open(path) as f:
        assert json.load(f) == {"fingerprint": "a"}
    assert os.listdir(tmp_path) == ["nnunet_kd_stage.json"]


def test_a_lock_is_refused_while_held_and_taken_when_its_holder_is_gone(tmp_path):
    lock = str(tmp_path / "x.lock")
    with open(lock, "w") as f:
        f.write("pid 1 on elsewhere since yesterday")  # left by a killed process: nothing holds it
    with exclusive(lock, "The thing"):
        with open(lock) as f:
            assert f.read().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(KDError, match=f"The thing is in use by pid {os.getpid()} on .* \\(lock file {lock}\\)"):
            with exclusive(lock, "The thing"):
                pass
    assert not os.path.exists(lock)
