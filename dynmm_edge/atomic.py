"""Atomic artefact writes: temp file in the same folder + fsync + rename.

A crash mid-write leaves the old file (or none), never a truncated one that loads as if whole.
"""
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

_umask: Optional[int] = None
_umask_lock = threading.Lock()


def _read_umask() -> int:
    """The process umask without changing it where the OS says it (/proc on Linux >= 4.7); else
    os.umask's set-and-restore, which briefly sets 0 (hence done once, under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def current_umask() -> int:
    """The umask artefact modes are derived from: read on first use (not at import), then cached."""
    global _umask
    if _umask is None:
        with _umask_lock:
            if _umask is None:
                _umask = _read_umask()
    return _umask


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; artefacts get the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent=2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=False, allow_nan=False) + "\n")
