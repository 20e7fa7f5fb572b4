"""ONNX -> TensorRT engine, one branch at a time, across TensorRT 8.5, 10 and 11; with an engine cache.

Why version adapters: the three generations differ in what exists, not just in defaults.
8.x needs EXPLICIT_BATCH and takes precision as BuilderFlag.FP16/INT8; 10 adds STRONGLY_TYPED
(which forbids those flags) and drops build_engine/max_workspace_size; 11 drops the flags and
implicit calibration altogether, so precision must already be in the ONNX (FP16 graph, Q/DQ INT8).
Engines are tied to TensorRT version and GPU, so the cache key covers the ONNX bytes, the version,
GPU name and compute capability, precision, batch profile and workspace; a JSON sidecar records the
key fields and is written after the engine, so an engine without a matching sidecar is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from dynmm_edge._lazy import require
from dynmm_edge.atomic import write_bytes, write_json
from dynmm_edge.backends.trt_engine import (BatchProfile, load_engine, read_sidecar,  # noqa: F401 - re-exported
                                            sidecar_path)
from dynmm_edge.backends.trt_engine import make_logger as _make_logger
from dynmm_edge.errors import BackendError, MissingDependency
from dynmm_edge.manifest import sha256_file
from dynmm_edge.tensors import PRECISIONS

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "dynmm-edge/trt-engine"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class OnnxInfo:
    """What the builder must know about an ONNX file before choosing flags."""
    sha256: str
    has_qdq: bool
    is_fp16: bool


@dataclass(frozen=True)
class TrtApi:
    """Which API generation a tensorrt module belongs to, decided by what it has (not only its number)."""
    version: str
    major: int
    explicit_batch_flag: bool    # 8.x: ONNX needs EXPLICIT_BATCH
    strongly_typed_flag: bool    # 10.x: opt-in STRONGLY_TYPED; 11: always on (flag ignored)
    precision_flags: bool        # BuilderFlag.FP16 / INT8 exist (8.5, 10)
    calibrators: bool            # IInt8EntropyCalibrator2 / int8_calibrator exist (8.5, 10)


def version_tuple(version: str) -> Tuple[int, int, int]:
    nums = [int(x) for x in re.findall(r"\d+", str(version))[:3]]
    return tuple((nums + [0, 0, 0])[:3])


def detect_api(trt) -> TrtApi:
    version = str(getattr(trt, "__version__", "0.0.0"))
    major = version_tuple(version)[0]
    ncf = trt.NetworkDefinitionCreationFlag
    return TrtApi(version=version, major=major,
                  explicit_batch_flag=major < 10 and hasattr(ncf, "EXPLICIT_BATCH"),
                  strongly_typed_flag=hasattr(ncf, "STRONGLY_TYPED"),
                  precision_flags=hasattr(trt.BuilderFlag, "FP16") and hasattr(trt.BuilderFlag, "INT8"),
                  calibrators=hasattr(trt, "IInt8EntropyCalibrator2"))


def inspect_onnx(data: bytes) -> OnnxInfo:
    """Hash, Q/DQ presence (explicit INT8) and FP16-ness; works without the onnx package (byte scan)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        onnx = require("onnx", "inspecting ONNX precision")
    except MissingDependency:
        # op_type strings are stored verbatim in the protobuf; fp16 cannot be told without parsing
        return OnnxInfo(digest, b"QuantizeLinear" in data, False)
    model = onnx.load_model_from_string(data)
    ops = {n.op_type for n in model.graph.node}
    fp16 = onnx.TensorProto.FLOAT16
    is_fp16 = (any(i.data_type == fp16 for i in model.graph.initializer)
               or any(vi.type.tensor_type.elem_type == fp16 for vi in model.graph.value_info)
               or any(a.name == "to" and a.i == fp16 for n in model.graph.node if n.op_type == "Cast"
                      for a in n.attribute))
    return OnnxInfo(digest, bool(ops & {"QuantizeLinear", "DequantizeLinear"}), bool(is_fp16))


def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str, compute_capability: str,
                     precision: str, profile: Optional[BatchProfile], workspace_mb: int) -> Tuple[str, Dict]:
    """sha256 over the fields that make an engine valid; returns (hex key, the fields)."""
    fields = {"onnx_sha256": onnx_sha256, "trt_version": str(trt_version), "gpu_name": str(gpu_name),
              "compute_capability": str(compute_capability), "precision": precision,
              "profile": asdict(profile) if profile else None, "workspace_mb": int(workspace_mb)}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return key, fields


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "gpu"


def _parser_errors(parser, onnx_path: Path, data: bytes, api: TrtApi) -> str:
    """One line per parser error naming node index, node name/op where the version tells them."""
    names = []
    try:
        onnx = require("onnx", "naming the ONNX node of a parser error")
        names = [(n.name, n.op_type) for n in onnx.load_model_from_string(data).graph.node]
    except Exception:  # noqa: BLE001 - best effort: without onnx the index is still reported
        pass
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = int(err.node()) if hasattr(err, "node") else -1
        name = err.node_name() if hasattr(err, "node_name") else ""
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        if node >= 0 and node < len(names):
            name, op = name or names[node][0], op or names[node][1]
        where = f"node {node} ({name or '?'}, op {op or '?'})" if node >= 0 else "graph"
        lines.append(f"{where}: {err.desc()}")
    return (f"TensorRT {api.version} could not parse {onnx_path}: " + "; ".join(lines or ["unknown parser error"]))


def _fp16_onnx_for_trt11(onnx_path: Path, cache_dir: Path, info: OnnxInfo) -> Tuple[Path, bytes]:
    """TensorRT 11 has no FP16 flag: convert the graph (FP32 IO kept) with export/fp16.convert_fp16."""
    try:
        from dynmm_edge.export.fp16 import convert_fp16
    except ImportError as exc:
        raise BackendError(f"TensorRT 11 builds FP16 only from an FP16 ONNX, and the converter "
                           f"dynmm_edge.export.fp16.convert_fp16 is not available ({exc}); export an fp16 "
                           f"variant of {onnx_path.name} or install the export extra") from None
    out = cache_dir / f"{onnx_path.stem}.{info.sha256[:16]}.fp16.onnx"
    if not out.is_file():
        convert_fp16(onnx_path, out)
    return out, out.read_bytes()


@dataclass(frozen=True)
class BuildPlan:
    """How precision reaches TensorRT, decided from the version alone (pure; see decide_build)."""
    builder_flags: Tuple[str, ...] = ()      # BuilderFlag member names to set
    network_flags: Tuple[str, ...] = ()      # NetworkDefinitionCreationFlag member names to set
    strongly_typed: bool = False             # precision comes from the ONNX types
    convert_fp16: bool = False               # TensorRT 11: make an FP16 ONNX first (no FP16 flag)
    calibrate: bool = False                  # legacy implicit INT8 calibration (8.x / 10 only)


def decide_build(api: TrtApi, precision: str, *, onnx_fp16: bool, onnx_qdq: bool, calibrator: bool,
                 name: str = "the ONNX") -> BuildPlan:
    """The precision decision table: (TensorRT generation, requested precision, what the ONNX carries)
    -> builder flags / strongly typed / FP16 conversion / refusal (BackendError). No TensorRT calls."""
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r} for {name}; choose one of {PRECISIONS}")
    net = ("EXPLICIT_BATCH",) if api.explicit_batch_flag else ()
    if precision == "int8" and not onnx_qdq:
        if not calibrator:
            raise BackendError(f"{name}: INT8 needs a Q/DQ (explicitly quantised) ONNX; this one has no "
                               f"QuantizeLinear nodes. Quantise it (calibration/) or pass a legacy calibrator "
                               f"(TensorRT 8.5/10 only)")
        if not (api.precision_flags and api.calibrators):
            raise BackendError(f"TensorRT {api.version} removed implicit INT8 calibration: build {name} "
                               f"from a Q/DQ ONNX instead")
        return BuildPlan(builder_flags=("INT8",), network_flags=net, calibrate=True)
    if api.major >= 11:  # always strongly typed; the deprecated flag is not set
        return BuildPlan(network_flags=net, strongly_typed=True, convert_fp16=precision == "fp16" and not onnx_fp16)
    carries = precision == "fp32" or (precision == "fp16" and onnx_fp16) or (precision == "int8" and onnx_qdq)
    if api.major >= 10 and api.strongly_typed_flag and carries:
        return BuildPlan(network_flags=net + ("STRONGLY_TYPED",), strongly_typed=True)
    flags = {"fp16": ("FP16",), "int8": ("INT8",)}.get(precision, ())  # Q/DQ on 8.x still needs INT8
    if flags and not api.precision_flags:
        raise BackendError(f"TensorRT {api.version} has no BuilderFlag.{flags[0]}")
    return BuildPlan(builder_flags=flags, network_flags=net)


def _target_gpu(gpu: Optional[Dict[str, str]]) -> Dict[str, str]:
    if gpu is not None:
        return gpu
    from dynmm_edge.backends.cuda_buffers import open_device
    dev = open_device("auto")
    try:
        return dev.describe()
    finally:
        dev.close()


def _cached_engine(engine_path: Path, key: str) -> bool:
    """True when engine_path and its sidecar exist and match the key and the engine bytes."""
    if not (engine_path.is_file() and sidecar_path(engine_path).is_file()):
        return False
    try:
        side = json.loads(sidecar_path(engine_path).read_text())
        if side.get("key") == key and side.get("engine_sha256") == sha256_file(engine_path):
            return True
    except (ValueError, OSError):
        pass  # unreadable sidecar: rebuild
    log.warning("engine cache entry %s is stale or damaged; rebuilding", engine_path)
    return False


def _make_network(trt, builder, plan: BuildPlan, logger, parse_path: Path, parse_data: bytes, api: TrtApi):
    """Network with the plan's creation flags, parsed from the ONNX; returns (network, flags int)."""
    ncf = trt.NetworkDefinitionCreationFlag
    net_flags = 0
    for name in plan.network_flags:
        net_flags |= 1 << int(getattr(ncf, name))
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(parse_data, str(parse_path)):  # the path lets external weights resolve
        raise BackendError(_parser_errors(parser, parse_path, parse_data, api))
    return network, net_flags


def _batch_profiles(builder, config, network, profile: BatchProfile, plan: BuildPlan, calibrator,
                    onnx_name: str) -> None:
    """One optimisation profile for a dynamic batch (and the calibration profile for 8.x/10 calibration)."""
    dynamic = False
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(int(d) for d in t.shape)
        if -1 in shape[1:]:
            raise BackendError(f"{onnx_name}: input '{t.name}' has dynamic non-batch dimensions {shape}; "
                               f"only the batch dimension may be dynamic")
        if shape and shape[0] == -1:
            dynamic = True
            rest = shape[1:]
            opt_profile.set_shape(t.name, (profile.min,) + rest, (profile.opt,) + rest, (profile.max,) + rest)
    if not dynamic:
        return
    config.add_optimization_profile(opt_profile)
    if plan.calibrate:
        # implicit calibration of a dynamic-batch network runs at the calibrator's fixed batch size
        bs = int(calibrator.get_batch_size())
        calib_profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            shape = (bs,) + tuple(int(d) for d in t.shape)[1:]
            calib_profile.set_shape(t.name, shape, shape, shape)
        config.set_calibration_profile(calib_profile)


def _make_config(trt, builder, network, plan: BuildPlan, workspace_mb: int, profile: BatchProfile,
                 calibrator, onnx_name: str):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if plan.calibrate:
        config.int8_calibrator = calibrator
    _batch_profiles(builder, config, network, profile, plan, calibrator, onnx_name)
    return config


def _attach_timing_cache(config, timing_file: Optional[Path]) -> None:
    if timing_file is None:
        return
    blob = timing_file.read_bytes() if timing_file.is_file() else b""
    try:
        cache = config.create_timing_cache(blob)
    except Exception as exc:  # noqa: BLE001 - a foreign or damaged cache must not block the build
        log.warning("timing cache %s unusable (%s); starting a fresh one", timing_file, exc)
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)


def build_engine(onnx_path, precision: str = "fp32", *, trt_module=None, workspace_mb: int = 1024,
                 profile: Optional[BatchProfile] = None, timing_cache_path=None, cache_dir=None,
                 branch: Optional[str] = None, gpu: Optional[Dict[str, str]] = None, calibrator=None,
                 log_severity: str = "warning", rebuild: bool = False, allow_build: bool = True) -> Path:
    """Build (or reuse from the cache) the engine for one branch; returns the .engine path.

    gpu: {'name', 'compute_capability'} of the target (default: asked from the CUDA stack).
    calibrator: legacy implicit INT8 for an ONNX without Q/DQ (8.5 / 10 only).
    timing_cache_path: None = a per-version-and-GPU file in cache_dir; False = no timing cache.
    allow_build=False: only reuse a cached engine (deployments that must not build on the device).
    """
    onnx_path = Path(onnx_path)
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r} for {onnx_path.name}; choose one of {PRECISIONS}")
    trt = trt_module if trt_module is not None else require("tensorrt", "building TensorRT engines")
    api = detect_api(trt)
    try:
        data = onnx_path.read_bytes()
    except FileNotFoundError:
        raise BackendError(f"ONNX file {onnx_path} does not exist") from None
    info = inspect_onnx(data)
    gpu = _target_gpu(gpu)
    branch = branch or onnx_path.stem
    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_path.parent / "trt_engines"
    profile = profile or BatchProfile()
    key, fields = engine_cache_key(info.sha256, api.version, gpu["name"], gpu["compute_capability"],
                                   precision, profile, workspace_mb)
    engine_path = cache_dir / f"{branch}.{key[:16]}.engine"
    if not rebuild and _cached_engine(engine_path, key):
        return engine_path
    if not allow_build:
        raise BackendError(f"no valid cached engine for branch '{branch}' ({precision}, TensorRT {api.version}, "
                           f"{gpu['name']} sm{gpu['compute_capability']}): expected {engine_path}; "
                           f"build it on this device first")
    plan = decide_build(api, precision, onnx_fp16=info.is_fp16, onnx_qdq=info.has_qdq,
                        calibrator=calibrator is not None, name=onnx_path.name)
    parse_path, parse_data = onnx_path, data
    if plan.convert_fp16:
        parse_path, parse_data = _fp16_onnx_for_trt11(onnx_path, cache_dir, info)
    logger = _make_logger(trt, log_severity)
    builder = trt.Builder(logger)
    network, net_flags = _make_network(trt, builder, plan, logger, parse_path, parse_data, api)
    config = _make_config(trt, builder, network, plan, workspace_mb, profile, calibrator, onnx_path.name)
    timing_file = None
    if timing_cache_path is not False:
        timing_file = (Path(timing_cache_path) if timing_cache_path is not None else
                       cache_dir / f"timing.trt{api.version}.{_slug(gpu['name'])}.sm{gpu['compute_capability']}.cache")
    _attach_timing_cache(config, timing_file)
    serialized = builder.build_serialized_network(network, config)
    calib_error = getattr(calibrator, "error", None)
    if calib_error is not None:
        raise BackendError(f"INT8 calibration of {onnx_path.name} failed: {calib_error}") from calib_error
    if serialized is None:
        raise BackendError(f"TensorRT {api.version} failed to build {onnx_path.name} ({precision}); "
                           f"see the TensorRT log above (rerun with log_severity='verbose')")
    blob = bytes(serialized)
    if timing_file is not None and config.get_timing_cache() is not None:
        write_bytes(timing_file, bytes(config.get_timing_cache().serialize()))
    write_bytes(engine_path, blob)
    side = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "branch": branch, "key": key,
            **fields, "onnx_file": onnx_path.name, "built_from": parse_path.name,
            "strongly_typed": plan.strongly_typed, "builder_flags": list(plan.builder_flags),
            "network_flags": net_flags, "explicit_qdq": info.has_qdq, "calibrated": plan.calibrate,
            "engine_bytes": len(blob), "engine_sha256": hashlib.sha256(blob).hexdigest()}
    write_json(sidecar_path(engine_path), side)
    return engine_path


