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
from dynmm_edge.backends.trt_engine import load_engine, read_sidecar, sidecar_path  # noqa: F401 - re-exported
from dynmm_edge.backends.trt_engine import make_logger as _make_logger
from dynmm_edge.errors import BackendError, MissingDependency
from dynmm_edge.manifest import sha256_file
from dynmm_edge.tensors import PRECISIONS

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "dynmm-edge/trt-engine"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes for dynamic-batch inputs; TensorRT tunes kernels for `opt`."""
    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self):
        if not (1 <= self.min <= self.opt <= self.max):
            raise BackendError(f"batch profile needs 1 <= min <= opt <= max, got {self.min}/{self.opt}/{self.max}")


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
    if gpu is None:
        from dynmm_edge.backends.cuda_buffers import open_device
        dev = open_device("auto")
        try:
            gpu = dev.describe()
        finally:
            dev.close()
    branch = branch or onnx_path.stem
    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_path.parent / "trt_engines"
    if profile is None:
        profile = BatchProfile()

    key, fields = engine_cache_key(info.sha256, api.version, gpu["name"], gpu["compute_capability"],
                                   precision, profile, workspace_mb)
    engine_path = cache_dir / f"{branch}.{key[:16]}.engine"
    if not rebuild and engine_path.is_file() and sidecar_path(engine_path).is_file():
        try:
            side = json.loads(sidecar_path(engine_path).read_text())
            if side.get("key") == key and side.get("engine_sha256") == sha256_file(engine_path):
                return engine_path
        except (ValueError, OSError):
            pass  # unreadable sidecar: rebuild
        log.warning("engine cache entry %s is stale or damaged; rebuilding", engine_path)
    if not allow_build:
        raise BackendError(f"no valid cached engine for branch '{branch}' ({precision}, TensorRT {api.version}, "
                           f"{gpu['name']} sm{gpu['compute_capability']}): expected {engine_path}; "
                           f"build it on this device first")

    # --- decide how precision reaches TensorRT ---------------------------------------------
    flags, strongly, parse_path, parse_data = [], False, onnx_path, data
    if precision == "int8" and not info.has_qdq:
        if calibrator is None:
            raise BackendError(f"{onnx_path.name}: INT8 needs a Q/DQ (explicitly quantised) ONNX; this one has no "
                               f"QuantizeLinear nodes. Quantise it (calibration/) or pass a legacy calibrator "
                               f"(TensorRT 8.5/10 only)")
        if not (api.precision_flags and api.calibrators):
            raise BackendError(f"TensorRT {api.version} removed implicit INT8 calibration: build {onnx_path.name} "
                               f"from a Q/DQ ONNX instead")
        flags = ["INT8"]
    elif api.major >= 11:
        if precision == "fp16" and not info.is_fp16:
            parse_path, parse_data = _fp16_onnx_for_trt11(onnx_path, cache_dir, info)
        strongly = True  # always on in 11; the deprecated flag is not set
    else:
        carries = (precision == "fp32" or (precision == "fp16" and info.is_fp16)
                   or (precision == "int8" and info.has_qdq))
        if api.major >= 10 and api.strongly_typed_flag and carries:
            strongly = True
        elif precision == "fp16":
            flags = ["FP16"]
        elif precision == "int8":
            flags = ["INT8"]  # explicit Q/DQ on 8.x still needs the INT8 flag
    if flags and not api.precision_flags:
        raise BackendError(f"TensorRT {api.version} has no BuilderFlag.{flags[0]}")

    # --- network ------------------------------------------------------------------------------
    logger = _make_logger(trt, log_severity)
    builder = trt.Builder(logger)
    net_flags = 0
    ncf = trt.NetworkDefinitionCreationFlag
    if api.explicit_batch_flag:
        net_flags |= 1 << int(ncf.EXPLICIT_BATCH)
    if strongly and api.major == 10:
        net_flags |= 1 << int(ncf.STRONGLY_TYPED)
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(parse_data, str(parse_path)):  # the path lets external weights resolve
        raise BackendError(_parser_errors(parser, parse_path, parse_data, api))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    for f in flags:
        config.set_flag(getattr(trt.BuilderFlag, f))
    if calibrator is not None and flags == ["INT8"] and not info.has_qdq:
        config.int8_calibrator = calibrator

    dynamic = False
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(int(d) for d in t.shape)
        if -1 in shape[1:]:
            raise BackendError(f"{onnx_path.name}: input '{t.name}' has dynamic non-batch dimensions {shape}; "
                               f"only the batch dimension may be dynamic")
        if shape and shape[0] == -1:
            dynamic = True
            rest = shape[1:]
            opt_profile.set_shape(t.name, (profile.min,) + rest, (profile.opt,) + rest, (profile.max,) + rest)
    if dynamic:
        config.add_optimization_profile(opt_profile)
        if config_has_calibrator(config) and hasattr(config, "set_calibration_profile"):
            # implicit calibration of a dynamic-batch network runs at the calibrator's fixed batch size
            bs = int(calibrator.get_batch_size())
            calib_profile = builder.create_optimization_profile()
            for i in range(network.num_inputs):
                t = network.get_input(i)
                shape = (bs,) + tuple(int(d) for d in t.shape)[1:]
                calib_profile.set_shape(t.name, shape, shape, shape)
            config.set_calibration_profile(calib_profile)

    timing_file = None
    if timing_cache_path is not False:
        timing_file = (Path(timing_cache_path) if timing_cache_path is not None else
                       cache_dir / f"timing.trt{api.version}.{_slug(gpu['name'])}.sm{gpu['compute_capability']}.cache")
        blob = timing_file.read_bytes() if timing_file.is_file() else b""
        try:
            cache = config.create_timing_cache(blob)
        except Exception as exc:  # noqa: BLE001 - a foreign or damaged cache must not block the build
            log.warning("timing cache %s unusable (%s); starting a fresh one", timing_file, exc)
            cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)

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
            **fields, "onnx_file": onnx_path.name, "built_from": parse_path.name, "strongly_typed": strongly,
            "builder_flags": flags, "network_flags": net_flags, "explicit_qdq": info.has_qdq,
            "calibrated": bool(flags == ["INT8"] and not info.has_qdq),
            "engine_bytes": len(blob), "engine_sha256": hashlib.sha256(blob).hexdigest()}
    write_json(sidecar_path(engine_path), side)
    return engine_path


def config_has_calibrator(config) -> bool:
    return getattr(config, "int8_calibrator", None) is not None
