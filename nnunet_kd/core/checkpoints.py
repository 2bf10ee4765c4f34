"""Reading checkpoint files that someone may have handed over: tensors and an allow-list of plain types, never code.

`torch.load(..., weights_only=True)` refuses any pickled global outside PyTorch's own and ``SAFE_GLOBALS``: the numpy
scalars and dtypes that nnU-Net's logging holds. A file that needs more is refused with the type named, never loaded
unsafely; a truncated or foreign file is `UnreadableCheckpoint`, so callers can tell corruption from refusal.
"""
import pickle
import zipfile

import numpy as np
import torch

from nnunet_kd.core.errors import KDError

_scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
#: the non-tensor, non-builtin types of nnU-Net checkpoints (numpy 1 pickles name the scalar under numpy.core)
SAFE_GLOBALS = [_scalar, (_scalar, "numpy.core.multiarray.scalar"), np.dtype] + [
    getattr(np.dtypes, f"{kind}DType") for kind in ("Bool", "Float16", "Float32", "Float64", "Int8", "Int16", "Int32",
                                                     "Int64", "UInt8", "UInt16", "UInt32", "UInt64")]
#: what a truncated, empty or non-PyTorch file raises in torch.load
CORRUPT_ERRORS = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, KeyError,
                  IndexError)


class UnreadableCheckpoint(KDError):
    """The file is truncated, empty or not a PyTorch file."""


class UnsafeCheckpoint(KDError):
    """The file pickles types outside the allow-list: loading it could run code."""


def safe_torch_load(path: str, fix: str = ""):
    """``torch.load(path)`` on the CPU with ``weights_only=True`` and ``SAFE_GLOBALS``."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except CORRUPT_ERRORS as e:
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise UnsafeCheckpoint(
                f"{path} holds {', '.join(unsafe)}: nnunet_kd loads only tensors, plain Python values and numpy "
                f"scalars from checkpoints, because unpickling other types can run code. If you trust the file, load "
                f"it in Python yourself and save only its tensors (e.g. its network_weights) to a new file.") from None
        raise UnreadableCheckpoint(f"Cannot read checkpoint {path} ({type(e).__name__}: {str(e)[:200]}); it is "
                                   f"truncated or not a PyTorch file. {fix}".rstrip()) from None


def _unsafe_globals(path: str) -> list:
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS if not isinstance(g, tuple)}
    allowed |= {g[1] for g in SAFE_GLOBALS if isinstance(g, tuple)}
    try:
        return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except Exception:  # unreadable as a PyTorch archive: corrupt, not unsafe
        return []


def load_checkpoint(path: str, fix: str = "Retrain that model.") -> dict:
    """An nnU-Net checkpoint on the CPU, loaded safely; a corrupt or foreign file is a KDError naming it and ``fix``."""
    ckpt = safe_torch_load(path, fix)
    if not isinstance(ckpt, dict) or "network_weights" not in ckpt:
        raise UnreadableCheckpoint(f"{path} is not an nnU-Net checkpoint (no network_weights). {fix}")
    return ckpt
