"""Bench report: the JSON schema (bench/schema.py, written first), then Markdown (bench/markdown.py)
and PNG (bench/plots.py) rendered from it. This module writes and reads report files and keeps the
names callers used before the split.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional

from dynmm_edge import _lazy
from dynmm_edge.atomic import write_json, write_text
from dynmm_edge.bench.markdown import compare, machine_text, to_markdown
from dynmm_edge.bench.plots import plot
from dynmm_edge.bench.schema import (DYNAMIC_MODE, MODE_ORDER, NO_METER, SCHEMA, SCHEMA_VERSION,
                                     STATIC_MODE, TOP_KEYS, _jsonable, derive_overhead, derive_savings,
                                     energy_entry, make_report, mode_entry, validate)
from dynmm_edge.errors import DataError

__all__ = ["DYNAMIC_MODE", "MODE_ORDER", "NO_METER", "SCHEMA", "SCHEMA_VERSION", "STATIC_MODE", "TOP_KEYS",
           "compare", "derive_overhead", "derive_savings", "energy_entry", "load_report", "machine_text",
           "make_report", "mode_entry", "plot", "to_markdown", "validate", "write_report"]


def write_report(report: Mapping, json_path, plot_png: bool = True, strict: bool = True) -> Dict[str, Optional[Path]]:
    """Write <name>.json (atomic), then <name>.md and <name>.png beside it; returns the paths.

    strict: refuse an invalid report (DataError listing the problems) before anything is written.
    The PNG is skipped (path None) when matplotlib is not installed; JSON and Markdown never need it.
    """
    report = _jsonable(report)
    problems = validate(report)
    if problems and strict:
        raise DataError(f"bench report for {json_path} is invalid: " + "; ".join(problems))
    json_path = Path(json_path)
    write_json(json_path, report)
    md = write_text(json_path.with_suffix(".md"), to_markdown(report))
    png = None
    if plot_png and _lazy.available("matplotlib"):
        png = plot(report, json_path.with_suffix(".png"))
    return {"json": json_path, "md": md, "png": png}


def load_report(path) -> dict:
    """Read a bench JSON and check its schema (DataError naming the file and the problems)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read bench report {path}: {exc}") from exc
    problems = validate(report)
    if problems:
        raise DataError(f"{path} is not a valid {SCHEMA} v{SCHEMA_VERSION} report: " + "; ".join(problems))
    return report
