"""Atomic artefact writes: temp file in the same folder + fsync + rename.

A crash mid-write leaves the old file (or none), never a truncated one that loads as if whole.
"""
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

UMASK = os.umask(0)  # read once (os.umask can only be read by setting it); used for artefact modes
os.umask(UMASK)


@contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; artefacts get the usual permissions
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
