"""The subpackages import in one direction only: each may import strictly lower layers.

Every import counts, including those inside functions (lazy imports still tie the packages into one
knot) and importlib.import_module("dynmm_edge...") with a literal name. Same-layer imports between
different units are refused too, so the graph has no cycles by construction. The layers are the
table in docs/DESIGN.md, which this test also checks against LAYERS.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# top-level folders mapped into the package (pyproject [tool.setuptools.package-dir])
PACKAGE_DIRS = {"dynmm_edge": "dynmm_edge", "export": "dynmm_edge.export",
                "calibration": "dynmm_edge.calibration", "apps": "dynmm_edge.apps"}

# lowest first; a unit is a subpackage or a top-level module of dynmm_edge ("dynmm_edge" = its __init__)
LAYERS = [
    ("errors", "_version", "paths", "signals"),
    ("_lazy", "atomic", "types", "tensors", "tiles", "metrics"),
    ("manifest", "viz", "power", "data"),
    ("folder_commit",),
    ("model", "io"),
    ("backends",),
    ("runtime", "export"),
    ("calibration", "bench", "train"),
    ("models",),
    ("apps",),
    ("dynmm_edge",),
    ("testing",),
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def module_files(root: Path = ROOT, package_dirs=PACKAGE_DIRS):
    """{dotted module name: file} for every .py file of the package, mapped folders included."""
    out = {}
    for folder, package in package_dirs.items():
        for f in sorted((root / folder).rglob("*.py")):
            parts = list(f.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = f
    return out


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _resolve(base: str, names, modules) -> list:
    """`from base import a, b`: a name that is itself a module is the imported module."""
    return [f"{base}.{n}" if f"{base}.{n}" in modules else base for n in names] or [base]


def imports_of(module: str, path: Path, modules) -> list:
    """(line, imported dynmm_edge module) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = _resolve(base, [a.name for a in node.names], modules)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            targets = [node.args[0].value]
        found += [(node.lineno, t) for t in targets if t == "dynmm_edge" or t.startswith("dynmm_edge.")]
    return found


def violations(root: Path = ROOT, package_dirs=PACKAGE_DIRS, rank=None):
    rank = RANK if rank is None else rank
    modules = module_files(root, package_dirs)
    bad = []
    for module, path in modules.items():
        src = unit_of(module)
        if src not in rank:
            bad.append(f"{path.relative_to(root)}: unit '{src}' is in no layer (add it to LAYERS and docs/DESIGN.md)")
            continue
        for line, target in imports_of(module, path, modules):
            dst = unit_of(target)
            if dst == src:
                continue
            if dst not in rank:
                bad.append(f"{path.relative_to(root)}:{line}: imports {target}, unit '{dst}' is in no layer")
            elif rank[dst] >= rank[src]:
                kind = "same-layer" if rank[dst] == rank[src] else "upward"
                bad.append(f"{path.relative_to(root)}:{line}: {kind} import {src} (layer {rank[src]}) -> "
                           f"{target} (layer {rank[dst]})")
    return bad


def test_imports_only_go_down():
    bad = violations()
    assert not bad, "imports against the layering (docs/DESIGN.md):\n" + "\n".join(bad)


def test_the_scan_sees_lazy_imports():
    """Guards the guard: known edges, including function-level ones, are found."""
    modules = module_files()
    assert len(modules) > 100
    found = {t for m, p in modules.items() for _, t in imports_of(m, p, modules)}
    assert "dynmm_edge.models" in found            # lazy, inside dynmm_edge.load()
    assert "dynmm_edge.export.trt_build" in found   # lazy, inside models.open_backend
    assert "dynmm_edge.model.net" in found          # importlib.import_module with a literal name


@pytest.mark.parametrize("source,expect", [
    ("def f():\n    from dynmm_edge.runtime.session import Session\n", "upward import manifest (layer 2) -> dynmm_edge.runtime.session"),
    ("from dynmm_edge import models\n", "upward import manifest (layer 2) -> dynmm_edge.models"),
    ("import importlib\nimportlib.import_module('dynmm_edge.apps.cli')\n", "-> dynmm_edge.apps.cli"),
    ("from dynmm_edge.viz import overlay\n", "same-layer import manifest (layer 2) -> dynmm_edge.viz.overlay"),
    ("from ..runtime import session\n", "upward import manifest (layer 2) -> dynmm_edge.runtime.session"),
])
def test_upward_and_cyclic_imports_fail(tmp_path, source, expect):
    pkg = tmp_path / "dynmm_edge"
    for name in ("runtime", "viz", "apps"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "runtime" / "session.py").write_text("from dynmm_edge.manifest import Manifest\n")
    (pkg / "viz" / "overlay.py").write_text("")
    (pkg / "apps" / "cli.py").write_text("")
    (pkg / "models.py").write_text("")
    (pkg / "manifest" ).mkdir()
    (pkg / "manifest" / "__init__.py").write_text(source)
    bad = violations(tmp_path, {"dynmm_edge": "dynmm_edge"})
    assert any(expect in b for b in bad), bad
    (pkg / "manifest" / "__init__.py").write_text("from dynmm_edge.errors import DynMMError\n")
    (pkg / "errors.py").write_text("")
    assert violations(tmp_path, {"dynmm_edge": "dynmm_edge"}) == []


def test_design_doc_lists_the_same_layers():
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.M)
    doc = {int(i): tuple(u.strip(" `") for u in units.split(",")) for i, units in rows}
    assert doc == dict(enumerate(LAYERS)), "docs/DESIGN.md layer table differs from tests/test_import_graph.py"
