"""What the SDK touches of TensorRT (from its source) and what the real bindings have (from fixtures).

The fixtures (tests/fixtures/trt_names/, written by scripts/trt_names.py from NVIDIA's wheels) list,
per class, the names its binding code loads: a superset of its attributes. Uses in the SDK are found
by an AST walk; each use carries the `if` conditions around it, evaluated per version against the
real names (`api.*` from detect_api on the real names, `plan.*` over the whole decision table,
`hasattr(obj, "x")` against the fixture), so a use in a branch a version never takes is not held
against that version.
"""
from __future__ import annotations

import ast
import itertools
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Tuple

from dynmm_edge.errors import BackendError
from dynmm_edge.export.trt_build import PRECISIONS, decide_build, detect_api

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "trt_names"
VERSIONS = ("8.6.1", "10.3.0", "11.4.0.106")
FAKE_VERSION = {"8.6.1": "8.6.1", "10.3.0": "10.3.0", "11.4.0.106": "11.4.0"}
SDK_FILES = ("dynmm_edge/backends/tensorrt.py", "dynmm_edge/backends/trt_engine.py", "export/trt_build.py", "export/trt_check.py",
             "calibration/trt_cache.py")  # cuda_buffers.py touches no TensorRT name
MODULE_NAMES = ("trt", "self.trt", "self._trt")  # expressions that are the tensorrt module
RECEIVERS = {  # variable -> TensorRT class, as the adapters name them
    "builder": "Builder", "config": "IBuilderConfig", "network": "INetworkDefinition", "parser": "OnnxParser",
    "engine": "ICudaEngine", "self.engine": "ICudaEngine", "context": "IExecutionContext", "ctx": "IExecutionContext",
    "self.context": "IExecutionContext", "runtime": "Runtime", "self._runtime": "Runtime",
    "opt_profile": "IOptimizationProfile", "calib_profile": "IOptimizationProfile", "err": "ParserError",
    "t": "ITensor", "cache": "ITimingCache", "ncf": "NetworkDefinitionCreationFlag",
}
# Python-side inheritance the string table cannot show: ILogger.Severity values are exported into
# ILogger (export_values), Logger derives from ILogger; the calibrators derive from IInt8Calibrator.
BASES = {"Logger": ("ILogger", "Severity"), "ILogger": ("Severity",),
         "IInt8EntropyCalibrator2": ("IInt8Calibrator",)}


def load_fixture(version: str) -> dict:
    return json.loads((FIXTURES / f"tensorrt-{version}.json").read_text())


class RealNames:
    def __init__(self, fixture: dict):
        self.version = fixture["tensorrt_version"]
        self.classes = {k: frozenset(v) for k, v in fixture["classes"].items()}
        self.module = frozenset(self.classes) | frozenset(fixture["python_names"])
        self.args = fixture["args"]

    def has(self, cls: Optional[str], name: str) -> bool:
        if cls is None:
            return name in self.module
        if cls not in self.classes:
            return False
        return name in self.classes[cls] or any(self.has(b, name) for b in BASES.get(cls, ()))

    def stub(self):
        """A module-like object with exactly the real names (values are placeholders)."""
        mod = types.SimpleNamespace(__version__=self.version)
        for cls, members in self.classes.items():
            setattr(mod, cls, type(cls, (), {m: i for i, m in enumerate(sorted(members))}))
        return mod


def real(version: str) -> RealNames:
    return RealNames(load_fixture(version))


def all_plans(api):
    """Every BuildPlan the decision table gives on this version (refusals left out)."""
    plans = []
    for precision, fp16, qdq, calib in itertools.product(PRECISIONS, (False, True), (False, True), (False, True)):
        try:
            plans.append(decide_build(api, precision, onnx_fp16=fp16, onnx_qdq=qdq, calibrator=calib))
        except BackendError:
            pass
    return plans


@dataclass(frozen=True)
class Use:
    file: str
    line: int
    cls: Optional[str]          # None = the tensorrt module itself
    name: str
    guards: Tuple[Tuple[ast.expr, bool], ...]
    call: Optional[ast.Call] = None

    def where(self) -> str:
        return f"{self.file}:{self.line} {(self.cls or 'trt')}.{self.name}"


def _dotted(node) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _resolve(node, aliases) -> Tuple[bool, Optional[str]]:
    """(is TensorRT, class or None for the module) for an expression."""
    d = _dotted(node)
    if d is None:
        return False, None
    if d in MODULE_NAMES:
        return True, None
    if d in aliases:
        return True, aliases[d]
    for mod in MODULE_NAMES:
        if d.startswith(mod + ".") and d.count(".") == mod.count(".") + 1:
            return True, d.rsplit(".", 1)[1]
    if d in RECEIVERS:
        return True, RECEIVERS[d]
    return False, None


class _Collector(ast.NodeVisitor):
    def __init__(self, file: str):
        self.file, self.uses, self.guards, self.aliases, self.calls = file, [], (), {}, {}

    def _guarded(self, nodes, extra):
        saved, self.guards = self.guards, self.guards + extra
        for n in nodes:
            self.visit(n)
        self.guards = saved

    def visit_If(self, node):
        self.visit(node.test)
        self._guarded(node.body, ((node.test, True),))
        self._guarded(node.orelse, ((node.test, False),))

    def visit_IfExp(self, node):
        self.visit(node.test)
        self._guarded([node.body], ((node.test, True),))
        self._guarded([node.orelse], ((node.test, False),))

    def visit_BoolOp(self, node):
        for i, v in enumerate(node.values):
            self._guarded([v], tuple((p, isinstance(node.op, ast.And)) for p in node.values[:i]))

    def visit_Assign(self, node):  # ncf = trt.NetworkDefinitionCreationFlag
        is_trt, cls = _resolve(node.value, self.aliases)
        if is_trt and cls and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Attribute):
            self.aliases[node.targets[0].id] = cls
        self.generic_visit(node)

    def visit_Call(self, node):
        fn = _dotted(node.func)
        if fn in ("hasattr", "getattr") and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            if fn == "getattr" and len(node.args) == 2:  # getattr without a default is a use
                is_trt, cls = _resolve(node.args[0], self.aliases)
                if is_trt:
                    self.uses.append(Use(self.file, node.lineno, cls, node.args[1].value, self.guards))
            for a in node.args[2:]:
                self.visit(a)
            return  # a probe: hasattr/getattr with a default is how absence is handled
        if isinstance(node.func, ast.Attribute):
            self.calls[id(node.func)] = node
        self.generic_visit(node)

    def visit_Attribute(self, node):
        is_trt, cls = _resolve(node.value, self.aliases)
        if is_trt and not node.attr.startswith("__"):
            self.uses.append(Use(self.file, node.lineno, cls, node.attr, self.guards, self.calls.get(id(node))))
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        saved = dict(self.aliases)
        self.generic_visit(node)
        self.aliases = saved


def sdk_uses(root: Path = ROOT, files=SDK_FILES) -> List[Use]:
    uses = []
    for rel in files:
        c = _Collector(rel)
        c.visit(ast.parse((root / rel).read_text()))
        uses += c.uses
    return uses


def _possible(expr, names: RealNames, api, plans, aliases=None) -> FrozenSet[bool]:
    """The values a guard can take on this version; unknown expressions can take both."""
    both = frozenset((True, False))
    if isinstance(expr, ast.Constant):
        return frozenset((bool(expr.value),))
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        return frozenset(not v for v in _possible(expr.operand, names, api, plans))
    if isinstance(expr, ast.BoolOp):
        parts = [_possible(v, names, api, plans) for v in expr.values]
        f = all if isinstance(expr.op, ast.And) else any
        return frozenset(f(c) for c in itertools.product(*parts))
    d = _dotted(expr)
    if d and d.startswith("api.") and d.count(".") == 1:
        return frozenset((bool(getattr(api, d[4:])),))
    if d and d.startswith("plan.") and d.count(".") == 1:
        return frozenset(bool(getattr(p, d[5:])) for p in plans) or both
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and _dotted(expr.left) == "api.major" \
            and isinstance(expr.comparators[0], ast.Constant):
        env = {"a": api.major, "b": expr.comparators[0].value}
        op = {ast.GtE: "a >= b", ast.Gt: "a > b", ast.Lt: "a < b", ast.LtE: "a <= b", ast.Eq: "a == b",
              ast.NotEq: "a != b"}[type(expr.ops[0])]
        return frozenset((bool(eval(op, {}, env)),))  # noqa: S307 - a fixed comparison
    if isinstance(expr, ast.Call) and _dotted(expr.func) == "hasattr" and isinstance(expr.args[1], ast.Constant):
        is_trt, cls = _resolve(expr.args[0], {})
        if is_trt:
            return frozenset((names.has(cls, expr.args[1].value),))
    return both


def reachable(use: Use, names: RealNames, api, plans) -> bool:
    return all(want in _possible(test, names, api, plans) for test, want in use.guards)


def plan_names(api) -> List[Tuple[str, str]]:
    """(class, member) the decision table makes the SDK look up by name on this version."""
    out = set()
    for p in all_plans(api):
        out |= {("BuilderFlag", f) for f in p.builder_flags}
        out |= {("NetworkDefinitionCreationFlag", f) for f in p.network_flags}
    return sorted(out)


def touched(version: str) -> List[Tuple[Optional[str], str, str]]:
    """(class, name, where) of every TensorRT attribute the SDK touches on this version."""
    names = real(version)
    api = detect_api(names.stub())
    plans = all_plans(api)
    out = [(u.cls, u.name, u.where()) for u in sdk_uses() if reachable(u, names, api, plans)]
    out += [(c, n, "decide_build") for c, n in plan_names(api)]
    return out
