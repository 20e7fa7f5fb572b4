"""All-or-nothing updates of a model folder, under any kill (SIGKILL included).

The manifest is the folder's single commit point. An update (calibrate, build, export --force)
  1. writes new variant files under names the current manifest does not reference,
  2. replaces manifest.json atomically (temp file + fsync + rename + directory fsync),
  3. removes the files the new manifest no longer references.
A kill before 2 leaves the old manifest pointing at untouched old files; a kill after 2 leaves the
new one pointing at complete new files. Leftovers of a killed update (files only we generate, not
referenced) are swept by the next writer. A lock beside the folder keeps writers apart.
"""
import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Set

from dynmm_edge.errors import DynMMError
from dynmm_edge.signals import fault_point

MANIFEST = "manifest.json"


class FolderBusy(DynMMError):
    """Another process holds the folder's lock."""


def lock_path(folder) -> Path:
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def folder_lock(folder):
    """Exclusive, non-blocking lock for writing `folder` (which may not exist yet).

    flock is released by the kernel when the holder dies, so a killed writer never leaves a stale
    lock; the lock file is removed on release (the inode check makes that race-free).
    """
    import fcntl
    lock = lock_path(folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(f"{folder} is being written by another dynmm-edge process (lock {lock} is held); "
                             f"wait for it to finish, then retry") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)


def fsync_dir(folder) -> None:
    """Make renames in `folder` durable (a power cut after rename must not undo it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def referenced_files(manifest: Mapping) -> Set[str]:
    """Every file a manifest dict points at: branch variants and the checkpoint."""
    refs = set()
    for b in manifest.get("branches", []):
        for v in b.get("variants", {}).values():
            refs.add(str(v["file"]))
    ck = manifest.get("checkpoint")
    if isinstance(ck, Mapping) and ck.get("file"):
        refs.add(str(ck["file"]))
    return refs


def read_manifest_dict(folder) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


def _generated_name(name: str, branches: Iterable[str]) -> bool:
    """Names our writers produce: BRANCH[.PREC][.HASH8].onnx, model[.HASH8].pt, hidden temp files."""
    if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".bak") or ".partial" in name):
        return True
    if re.fullmatch(r"model(\.[0-9a-f]{8})?\.pt", name):
        return True
    for b in branches:
        if re.fullmatch(re.escape(b) + r"(\.(fp16|int8))?(\.[0-9a-f]{8})?\.onnx", name):
            return True
    return False


def sweep(folder) -> list:
    """Remove what a killed update left behind: generated files the manifest does not reference.

    Call with the lock held. Also removes staging folders of a killed export beside it
    (.NAME.partial-*). Returns the names removed.
    """
    folder = Path(folder)
    removed = []
    for stale in folder.parent.glob(f".{folder.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
        removed.append(stale.name)
    if not folder.is_dir():
        return removed
    try:
        data = read_manifest_dict(folder)
    except (OSError, ValueError):
        return removed
    refs = referenced_files(data) | {MANIFEST}
    branches = [str(b.get("name")) for b in data.get("branches", [])]
    for p in folder.iterdir():
        if p.name in refs or not _generated_name(p.name, branches):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p.name)
    return removed


def _hash8_name(name: str, digest: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.{digest[:8]}.{ext}" if dot else f"{name}.{digest[:8]}"


def place_files(folder, staged: Mapping[str, Path], protected: Set[str],
                names: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Copy staged files into `folder` without touching any name in `protected`.

    Fills and returns `names`, wanted name -> name actually used, as it goes (so a caller
    interrupted half-way knows what to remove). A file whose bytes already sit under the wanted
    name is reused; a protected name with other bytes gets a content-hash suffix.
    """
    from dynmm_edge.atomic import atomic_path
    from dynmm_edge.manifest import sha256_file
    folder = Path(folder)
    names = {} if names is None else names
    for want, src in staged.items():
        digest = sha256_file(src)
        name = want
        dst = folder / name
        current = sha256_file(dst) if dst.exists() else None
        if current is not None and current != digest and name in protected:
            name = _hash8_name(want, digest)
            dst = folder / name
            current = sha256_file(dst) if dst.exists() else None
        if current == digest:
            names[want] = name
            continue
        names[want] = name  # before the copy: an interrupted copy is removed as well
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        fault_point(f"placed {name}")
    fsync_dir(folder)
    return names


def replace_manifest(folder, data: Mapping) -> None:
    """Step 2, the commit point."""
    from dynmm_edge.atomic import write_json
    fault_point("before manifest")
    write_json(Path(folder) / MANIFEST, data)
    fsync_dir(folder)
    fault_point("manifest replaced")


def remove_unreferenced(folder, old_refs: Set[str], new_refs: Set[str]) -> None:
    """Step 3: best effort (the folder is already consistent); leftovers go at the next sweep.

    A stop signal waits until the loop is done (a few unlinks), so SIGTERM leaves no leftovers.
    """
    from dynmm_edge.signals import deferred
    with deferred():
        for name in sorted(old_refs - new_refs):
            try:
                (Path(folder) / name).unlink()
            except OSError:
                continue
            fault_point(f"removed {name}")


def rename_refs(data: dict, names: Mapping[str, str]) -> dict:
    """The manifest dict with file references renamed (wanted -> placed names)."""
    data = json.loads(json.dumps(data))
    for b in data.get("branches", []):
        for v in b.get("variants", {}).values():
            v["file"] = names.get(v["file"], v["file"])
    ck = data.get("checkpoint")
    if isinstance(ck, dict) and ck.get("file"):
        ck["file"] = names.get(ck["file"], ck["file"])
    return data


def commit(folder, staged: Mapping[str, Path], new_manifest: Mapping) -> dict:
    """Place `staged`, validate, switch the manifest, drop what it no longer references.

    Call with the lock held and a current manifest in `folder`. Returns the manifest dict written.
    Any failure before the switch removes the files it placed and leaves the folder as it was.
    """
    from dynmm_edge.manifest import parse_manifest
    folder = Path(folder)
    old_refs = referenced_files(read_manifest_dict(folder))
    placed: Dict[str, str] = {}
    try:
        place_files(folder, staged, old_refs, placed)
        data = rename_refs(dict(new_manifest), placed)
        parse_manifest(data, folder)  # hashes and graph must check out before anything is visible
        replace_manifest(folder, data)
    except BaseException:
        if _committed(folder, placed, old_refs):  # interrupted just after the switch: keep the new state
            remove_unreferenced(folder, old_refs, referenced_files(read_manifest_dict(folder)))
        else:
            for name in set(placed.values()) - old_refs:
                (folder / name).unlink(missing_ok=True)
        raise
    remove_unreferenced(folder, old_refs, referenced_files(data))
    return data


def _committed(folder: Path, placed: Mapping[str, str], old_refs: Set[str]) -> bool:
    """Does the manifest on disk already reference the files this update placed?"""
    new = set(placed.values()) - old_refs
    if not new:
        return False
    try:
        return new <= referenced_files(read_manifest_dict(folder))
    except (OSError, ValueError):
        return False
