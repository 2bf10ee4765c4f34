"""Atomic writes (a reader sees the old file or the whole new one, never half of one: a kill, a full disk, an error
while serialising) lock files, JSON objects read with errors that name their file, and a check that a folder takes
files."""
import contextlib
import errno
import json
import os
import shutil
import socket
import tempfile
import time
import uuid

from nnunet_kd.core.errors import KDError


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


def parse_json_object(text: str, where: str) -> dict:
    """The JSON object in text, or a KDError naming where it came from."""
    try:
        out = json.loads(text)
    except ValueError as e:  # not JSON, or an integer beyond Python's conversion limit
        raise KDError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(out, dict):
        raise KDError(f"{where} must be a JSON object {{...}}, got {type(out).__name__}.")
    return out


def read_json_object(path: str, where: str | None = None) -> dict:
    """The JSON object in the UTF-8 file path, or a KDError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise KDError(f"{where or path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8 JSON.") \
            from None
    return parse_json_object(text, where or path)


#: why a folder cannot take files, by errno
NOT_WRITABLE = {errno.EROFS: "is on a read-only file system", errno.EACCES: "is not writable by this user",
                errno.EPERM: "is not writable by this user", errno.ENOSPC: "is on a full disk",
                errno.EDQUOT: "is over its disk quota"}


def check_writable(folder: str, variable: str) -> None:
    """KDError naming the folder (of environment variable ``variable``) when it cannot take a new file: read-only,
    not writable, full or over quota."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".nnunet_kd_write_check_") as f:
            f.write(b"\0" * 2 ** 16)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        reason = NOT_WRITABLE.get(e.errno, f"cannot take files ({e.strerror})")
        raise KDError(f"{variable} {folder} {reason}. Free space or point {variable} at a writable folder, then "
                      f"rerun; nothing was written.") from None


@contextlib.contextmanager
def exclusive(path: str, what: str):
    """Holds the lock file path (its holder's pid, host and start written in it) for the block; KDError naming the
    holder when another process holds it. The lock dies with its process; the file is removed on release."""
    import fcntl
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with os.fdopen(fd) as f:
                holder = f.read().strip() or "another process"
            raise KDError(f"{what} is in use by {holder} (lock file {path}). Wait until it ends; the lock goes with "
                          f"its process.") from None
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)  # removed by its last holder between our open and lock: take the new file
    try:
        os.truncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        yield
    finally:
        os.remove(path)
        os.close(fd)


@contextlib.contextmanager
def staged_folder(folder: str):
    """A hidden folder beside ``folder`` to write into; it becomes ``folder`` when the block ends and is removed when
    the block fails, so that nnU-Net and the user never see a half-written dataset."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.{uuid.uuid4().hex[:8]}.tmp")
    os.makedirs(tmp)
    try:
        yield tmp
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
