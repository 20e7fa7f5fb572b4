"""Helpers for the fault corpus: a private copy of the tiny model, in-process CLI, file hashes."""
import hashlib
import shutil
from pathlib import Path

import pytest


def tree_hashes(*roots) -> dict:
    """path -> sha256 of every file under the roots (a file root hashes itself)."""
    out = {}
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def litter(folder) -> list:
    """Temp / lock files our writers make; none may survive a finished command."""
    return sorted(p.name for p in Path(folder).rglob(".*")
                  if p.name.endswith((".tmp", ".lock", ".bak")) or ".partial" in p.name)


def run_cli(argv, capsys):
    """dynmm_edge.apps.cli.main in this process -> (exit code, stdout, stderr)."""
    from dynmm_edge.apps.cli import main
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def model_copy(tiny_export, tmp_path):
    """A private copy of the exported tiny model (tests may damage it)."""
    dst = tmp_path / "model"
    shutil.copytree(tiny_export[2].folder, dst)
    return dst
