"""Atomic writes: a reader sees the old file or the whole new one, never half of one (a kill, a full disk, an error
while serialising)."""
import json
import os


def write_atomic(path: str, text: str) -> None:
    """Writes text to a temporary file beside path, flushed to disk, then renames it over path."""
    tmp = f"{path}.{os.getpid()}.tmp"  # one per process: DDP ranks may write the same file
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_json_atomic(obj, path: str, sort_keys: bool = False, indent: int = 4, allow_nan: bool = True) -> None:
    """``json.dump`` written atomically (allow_nan=False: NaN and Infinity are an error, not a non-standard token)."""
    write_atomic(path, json.dumps(obj, sort_keys=sort_keys, indent=indent, allow_nan=allow_nan))
