"""Atomic writes keep the old file whole when writing the new one fails; lock files name their holder; a folder that
takes no files is named with the reason."""
import errno
import json
import os

import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import check_writable, exclusive, save_json_atomic, staged_folder, write_atomic


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


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "is on a read-only file system"),
                                          (errno.ENOSPC, "is on a full disk"),
                                          (errno.EACCES, "is not writable by this user")])
def test_a_folder_that_takes_no_files_is_named_with_the_reason(tmp_path, monkeypatch, code, reason):
    import nnunet_kd.core.files as files

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(files.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(KDError, match=f"nnUNet_results {tmp_path} {reason}. Free space or point nnUNet_results at a "
                                      f"writable folder"):
        check_writable(str(tmp_path), "nnUNet_results")


def test_check_writable_leaves_nothing_and_names_a_path_under_a_file(tmp_path):
    check_writable(str(tmp_path / "new"), "nnUNet_preprocessed")
    assert os.listdir(tmp_path / "new") == []
    (tmp_path / "file").write_text("")
    with pytest.raises(KDError, match=r"nnUNet_preprocessed .*file.sub cannot take files \(Not a directory\)"):
        check_writable(str(tmp_path / "file" / "sub"), "nnUNet_preprocessed")


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "raw" / "Dataset001_X"
    with pytest.raises(RuntimeError):
        with staged_folder(str(target)) as tmp:
            (tmp_path / "raw" / os.path.basename(tmp) / "half.txt").write_text("x")
            raise RuntimeError("conversion failed")
    assert os.listdir(tmp_path / "raw") == []
    with staged_folder(str(target)) as tmp:
        assert os.path.basename(tmp).startswith(".Dataset001_X.") and not target.exists()
        (tmp_path / "raw" / os.path.basename(tmp) / "done.txt").write_text("x")
    assert os.listdir(tmp_path / "raw") == ["Dataset001_X"] and (target / "done.txt").read_text() == "x"
