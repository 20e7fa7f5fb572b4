"""Explicit Q/DQ INT8 per branch with onnxruntime.quantization, written into the model folder.

Explicit Q/DQ is the one INT8 route TensorRT 8.5, 10 and 11 all accept (11 removed implicit
calibrators), and ONNX Runtime CPU runs the same file, so accuracy is measurable without a GPU.
TensorRT takes only symmetric quantisation, hence int8 everywhere and every zero-point 0
(check_symmetric verifies it). The folder changes only after every branch quantised: models are
built in a temp folder, then copied in with backups, and the manifest is rewritten last; any
error restores the folder byte for byte.
"""
from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import BackendError, DynMMError, ManifestError

METHODS = ("minmax", "entropy", "percentile")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
Progress = Optional[Callable[[str], None]]


@dataclass(frozen=True)
class QuantizeConfig:
    """How branches are quantised. exclude: node names (glob patterns) or op types kept in float."""
    method: str = "minmax"
    per_channel: bool = True
    exclude: Tuple[str, ...] = ()
    percentile: float = 99.999
    chunk: int = 32  # frames per calibration collect (bounds activation memory)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; use one of {METHODS}")
        object.__setattr__(self, "exclude", tuple(str(e).strip() for e in self.exclude if str(e).strip()))
        if not 0.0 < float(self.percentile) <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")


@dataclass(frozen=True)
class BranchQuantization:
    branch: str
    file: str
    sha256: str
    qdq_nodes: int
    excluded_nodes: Tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class CalibrationResult:
    manifest: object
    branches: Tuple[BranchQuantization, ...]
    precision: Dict[str, str]
    selection: object
    config: QuantizeConfig
    seconds: float
    info: Dict[str, object] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- checks
def _const_arrays(graph) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    return consts


def qdq_nodes(onnx_path) -> int:
    """Number of QuantizeLinear + DequantizeLinear nodes in the graph."""
    from dynmm_edge._lazy import require
    onnx = require("onnx", "Q/DQ checks")
    return sum(1 for n in onnx.load(str(onnx_path)).graph.node if n.op_type in QDQ_OPS)


def check_symmetric(onnx_path) -> List[str]:
    """Every Q/DQ zero-point must be a constant 0 of a signed type (what TensorRT accepts).

    Returns one message per violation (empty list = OK). A missing zero-point means 0.
    """
    from dynmm_edge._lazy import require
    onnx = require("onnx", "Q/DQ checks")
    model = onnx.load(str(onnx_path))
    consts = _const_arrays(model.graph)
    problems = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        label = f"{Path(onnx_path).name}: {node.op_type} '{node.name or node.output[0]}'"
        if len(node.input) < 3 or not node.input[2]:
            continue
        zp_name = node.input[2]
        if zp_name not in consts:
            problems.append(f"{label}: zero-point '{zp_name}' is not a constant")
            continue
        zp = consts[zp_name]
        if zp.dtype == np.uint8:
            problems.append(f"{label}: zero-point '{zp_name}' is uint8 (asymmetric type); TensorRT needs int8")
        if np.any(zp != 0):
            nz = np.asarray(zp).reshape(-1)
            problems.append(f"{label}: zero-point '{zp_name}' is not 0 (values {nz[:4].tolist()}"
                            f"{'...' if nz.size > 4 else ''})")
    return problems


# ------------------------------------------------------------------------------ precision spec
from dynmm_edge.manifest import parse_precision_spec, resolve_keys  # noqa: E402,F401  (shared with the runtime)


def resolve_branches(spec, manifest) -> List[str]:
    """'depth' / 'gate,trunk' / ['depth_0'] / None (all) -> branch names in execution order."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        keys = ["all"]
    else:
        keys = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    resolved = resolve_keys(keys, manifest)
    chosen = {n for names in resolved.values() for n in names}
    # region branches (tile engines) sit on no frame path: 'all' means the path branches; naming one is an error
    region = {b.name for b in manifest.branches if b.kind == "region"}
    named = sorted(n for k, names in resolved.items() if k not in ("all", "*") for n in names if n in region)
    if named:
        raise ManifestError(f"INT8 calibration of region branches {named} is not supported yet; "
                            f"calibrate the path branches (gate, depth, trunk)")
    order = list(manifest.paths[manifest.full_path])
    order += [b.name for b in manifest.branches if b.name not in order and b.name not in region]
    return [n for n in order if n in chosen]


def apply_precision(manifest, precision: Mapping[str, str]):
    """A Manifest with the given per-branch precisions (each must exist as a variant)."""
    branches = []
    for b in manifest.branches:
        p = precision.get(b.name, b.precision)
        b.variant(p)  # ManifestError naming the branch when the variant is missing
        branches.append(replace(b, precision=p))
    return manifest.with_branches(branches)


# ------------------------------------------------------------------------------- quantisation
def _chunk(n: int, max_chunk: int) -> Optional[int]:
    """Largest divisor of n not above max_chunk (quantize_static needs n % stride == 0)."""
    if n <= max_chunk:
        return None
    return max(d for d in range(1, max_chunk + 1) if n % d == 0)


@contextlib.contextmanager
def _quiet():
    """onnxruntime.quantization prints and logs INFO per tensor; our progress lines say what matters."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _preprocess(src: Path, dst: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process
    try:
        quant_pre_process(str(src), str(dst))
    except Exception:  # symbolic shape inference fails on some graphs: ONNX shape inference suffices
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)


def excluded_nodes(onnx_path, patterns: Sequence[str]) -> Tuple[List[str], set]:
    """Node names matching any pattern (glob on names, exact op type); also returns the patterns used."""
    from dynmm_edge._lazy import require
    onnx = require("onnx", "Q/DQ quantisation")
    graph = onnx.load(str(onnx_path)).graph
    chosen, used = [], set()
    for node in graph.node:
        for pat in patterns:
            if node.op_type == pat or (node.name and fnmatch.fnmatchcase(node.name, pat)):
                chosen.append(node.name)
                used.add(pat)
                break
    return chosen, used


def quantize_branch(fp32_path, out_path, reader, config: QuantizeConfig, branch: str = "",
                    work: Optional[Path] = None) -> Tuple[int, List[str], set]:
    """FP32 ONNX + feed reader -> symmetric per-channel Q/DQ INT8 ONNX at out_path.

    Returns (Q/DQ node count, excluded node names, exclusion patterns that matched).
    """
    from dynmm_edge._lazy import require
    q = require("onnxruntime.quantization", "INT8 calibration")
    work = Path(work or Path(out_path).parent)
    pre = work / f"{branch or Path(fp32_path).stem}.pre.onnx"
    with _quiet():
        _preprocess(Path(fp32_path), pre)
    nodes, used = excluded_nodes(pre, config.exclude)
    method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
              "percentile": q.CalibrationMethod.Percentile}[config.method]
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibTensorRangeSymmetric": True}
    if config.method == "percentile":
        extra["CalibPercentile"] = float(config.percentile)
    stride = _chunk(len(reader), config.chunk)
    if stride:
        extra["CalibStridedMinMax"] = stride
    with _quiet():
        q.quantize_static(str(pre), str(out_path), reader, quant_format=q.QuantFormat.QDQ,
                          per_channel=config.per_channel, reduce_range=False, activation_type=q.QuantType.QInt8,
                          weight_type=q.QuantType.QInt8, calibrate_method=method, nodes_to_exclude=nodes or None,
                          extra_options=extra)
    return qdq_nodes(out_path), nodes, used


def int8_file(branch: str) -> str:
    return f"{branch}.int8.onnx"


# ------------------------------------------------------------------------------------- commit
def _commit(folder: Path, staged: Mapping[str, Path], manifest) -> dict:
    """All-or-nothing switch (dynmm_edge.folder_commit): new files, then manifest, then cleanup."""
    from dynmm_edge.folder_commit import commit
    return commit(folder, staged, manifest.to_dict())


def calibrate(model_dir, source, frames: int = 64, method: str = "minmax", branches=None,
              exclude: Sequence[str] = (), precision: Optional[str] = None, strategy: str = "diverse",
              seed: int = 0, stratify_gate: bool = True, pool: Optional[int] = None, min_frames: int = 8,
              workdir=None, progress: Progress = None, config: Optional[QuantizeConfig] = None,
              set_default: bool = False) -> CalibrationResult:
    """Calibrate branches of the model folder from real frames; writes `<branch>.int8.onnx` + manifest.

    The INT8 files are added as variants; the manifest's default precision stays as it was (INT8 is
    not faster everywhere, e.g. ORT CPU) unless set_default, which switches the calibrated branches
    to int8. precision: optional spec applied last (e.g. 'gate=fp32,depth=int8'), an explicit
    default. branches: kinds / names (default all). The folder is untouched on any error.
    """
    from dynmm_edge.manifest import load_manifest
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    config = config or QuantizeConfig(method=method, exclude=tuple(exclude))
    folder = Path(model_dir)
    load_manifest(folder)  # a clear error for a missing / broken folder before taking its lock
    from dynmm_edge.folder_commit import folder_lock, sweep
    with folder_lock(folder):
        sweep(folder)
        manifest = load_manifest(folder)
        return _calibrate_locked(folder, manifest, source, frames, branches, precision, strategy, seed,
                                 stratify_gate, pool, min_frames, workdir, say, config, t0, set_default)


def _calibrate_locked(folder, manifest, source, frames, branches, precision, strategy, seed, stratify_gate,
                      pool, min_frames, workdir, say, config, t0, set_default=False) -> CalibrationResult:
    from dynmm_edge.manifest import load_manifest, sha256_file
    from dynmm_edge.calibration.feeds import capture_feeds, gate_path_fn
    from dynmm_edge.calibration.frames import choose_frames
    targets = resolve_branches(branches, manifest)
    extra_prec = parse_precision_spec(precision, manifest)  # validate keys before any work
    gate_fn = gate_path_fn(manifest) if (stratify_gate and strategy == "diverse") else None
    say(f"selecting {frames} calibration frames from {source if isinstance(source, str) else 'frames'} ({strategy})")
    sel = choose_frames(source, frames, strategy, seed, pool=pool, gate_fn=gate_fn, min_frames=min_frames)
    say(f"selected {len(sel.frames)} of {sel.scanned} frames from {sel.strata} strata")
    # scratch inside the folder (hidden): a SIGKILL leaves it for the next writer's sweep, not in /tmp
    tmp = Path(tempfile.mkdtemp(prefix=".calib.partial-", dir=workdir or folder))
    try:
        store = capture_feeds(manifest, sel.frames, tmp / "feeds", targets, progress=say)
        staged: Dict[str, Path] = {}
        results: List[BranchQuantization] = []
        matched: set = set()
        for i, name in enumerate(targets):
            t1 = time.perf_counter()
            say(f"quantising branch {name} ({i + 1}/{len(targets)}, {config.method}, {len(store.reader(name))} frames)")
            fp32 = manifest.file_path(manifest.branch(name), "fp32")
            out = tmp / int8_file(name)
            try:
                count, nodes, used = quantize_branch(fp32, out, store.reader(name), config, name, work=tmp)
            except DynMMError:
                raise
            except Exception as exc:
                raise BackendError(f"quantising branch '{name}' ({fp32.name}) failed: {exc}") from exc
            matched |= used
            problems = check_symmetric(out)
            if problems:
                raise BackendError(f"branch '{name}': Q/DQ model is not symmetric ({len(problems)} problem(s)): "
                                + "; ".join(problems[:3]))
            if count == 0:
                raise BackendError(f"branch '{name}': quantisation inserted no Q/DQ nodes "
                                f"(everything excluded by {list(config.exclude)}?)")
            staged[int8_file(name)] = out
            results.append(BranchQuantization(name, int8_file(name), sha256_file(out), count, tuple(nodes),
                                              time.perf_counter() - t1))
        unused = [p for p in config.exclude if p not in matched]
        if unused:
            raise ManifestError(f"--exclude {unused}: no node name or op type matches in branch(es) {targets}")
        from dynmm_edge.manifest import Variant
        new_branches = []
        by_name = {r.branch: r for r in results}
        for b in manifest.branches:
            if b.name in by_name:
                r = by_name[b.name]
                variants = dict(b.variants)
                variants["int8"] = Variant(r.file, r.sha256)
                b = replace(b, variants=variants, precision="int8" if set_default else b.precision)
            new_branches.append(b)
        new_manifest = apply_precision(manifest.with_branches(new_branches), extra_prec)
        say(f"writing {len(staged)} INT8 model(s) and manifest.json to {folder}")
        written = _commit(folder, staged, new_manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    final = load_manifest(folder)
    files = {b["name"]: b["variants"]["int8"]["file"] for b in written["branches"] if "int8" in b["variants"]}
    results = [replace(r, file=files.get(r.branch, r.file)) for r in results]
    prec = {b.name: b.precision for b in final.branches}
    info = {"method": config.method, "frames": len(sel.frames), "scanned": sel.scanned, "strata": sel.strata,
            "strategy": strategy, "seed": seed, "source": sel.source, "branches": targets,
            "exclude": list(config.exclude), "per_channel": config.per_channel,
            "selected_indices": list(sel.indices)}
    return CalibrationResult(final, tuple(results), prec, sel, config, time.perf_counter() - t0, info)
