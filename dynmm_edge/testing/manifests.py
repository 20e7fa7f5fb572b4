"""A minimal, valid-enough Manifest around hand-made branches (backend tests without an export)."""
from pathlib import Path
from typing import Iterable

from dynmm_edge.manifest import Branch, Manifest


def manifest_for(folder, branches: Iterable[Branch], name: str = "test") -> Manifest:
    """A Manifest whose only path runs `branches` in order; files are resolved inside `folder`."""
    branches = tuple(branches)
    return Manifest(folder=Path(folder), name=name, height=1, width=1, preprocess={}, classes=(), palette=(),
                    gate={}, branches=branches, paths={0: tuple(b.name for b in branches)},
                    macs={"depth_per_path": {"0": 0.0}, "total_per_path": {"0": 0.0}})
