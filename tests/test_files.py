"""Atomic writes keep the old file whole when writing the new one fails."""
import json
import os

import pytest

from nnunet_kd.files import save_json_atomic, write_atomic


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
