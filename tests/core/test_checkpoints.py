"""Checkpoint files are read with weights_only=True and an allow-list: tensors and nnU-Net's plain values load, code
embedded in a pickle never runs."""
import pytest
import torch
from helpers import OpensAFile, nnunet_like_checkpoint

from nnunet_kd.core.checkpoints import UnreadableCheckpoint, UnsafeCheckpoint, load_checkpoint, safe_torch_load


def test_nnunet_checkpoints_load(tmp_path):
    path = str(tmp_path / "checkpoint_final.pth")
    torch.save(nnunet_like_checkpoint(), path)
    ckpt = load_checkpoint(path)
    assert ckpt["_best_ema"] == pytest.approx(0.55) and ckpt["init_args"]["device"] == torch.device("cpu")
    assert torch.equal(ckpt["kd_state"]["modules"]["x"], torch.zeros(1))


def test_embedded_code_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    path = str(tmp_path / "checkpoint_final.pth")
    torch.save({**nnunet_like_checkpoint(), "payload": OpensAFile(str(marker))}, path)
    with pytest.raises(UnsafeCheckpoint, match=r"checkpoint_final.pth holds io.open.*save only its tensors"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_corrupt_files_are_unreadable_not_unsafe(tmp_path, content):
    path = str(tmp_path / "checkpoint_latest.pth")
    if content is None:  # a checkpoint cut short while being written
        torch.save(nnunet_like_checkpoint(), path)
        with open(path, "rb") as f:
            content = f.read()[:200]
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(UnreadableCheckpoint, match="checkpoint_latest.pth.*Retrain that model"):
        load_checkpoint(path)


def test_a_tensor_file_is_not_an_nnunet_checkpoint(tmp_path):
    path = str(tmp_path / "weights.pth")
    torch.save({"w": torch.ones(1)}, path)
    assert torch.equal(safe_torch_load(path)["w"], torch.ones(1))
    with pytest.raises(UnreadableCheckpoint, match="not an nnU-Net checkpoint"):
        load_checkpoint(path)

