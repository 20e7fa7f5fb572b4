"""Loading TensorRT engines and their JSON sidecars: what the runtime needs, without the builder.

Building lives in dynmm_edge.export.trt_build (above the backends in the layering); it writes the
sidecar this module checks, and a TensorRTBackend that may build receives the builder as a callable.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Dict, Optional

from dynmm_edge._lazy import require
from dynmm_edge.errors import BackendError


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes for dynamic-batch inputs; TensorRT tunes kernels for `opt`."""
    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self):
        if not (1 <= self.min <= self.opt <= self.max):
            raise BackendError(f"batch profile needs 1 <= min <= opt <= max, got {self.min}/{self.opt}/{self.max}")


def sidecar_path(engine_path) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def make_logger(trt, severity: str):
    level = getattr(trt.Logger, severity.upper(), trt.Logger.WARNING)
    return trt.Logger(level)


def read_sidecar(engine_path) -> Optional[Dict[str, Any]]:
    p = sidecar_path(engine_path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise BackendError(f"engine sidecar {p} is not valid JSON: {exc}") from None


def load_engine(engine_path, trt_module=None, runtime=None, log_severity: str = "warning",
                gpu: Optional[Dict[str, str]] = None):
    """Deserialize an engine after checking its sidecar: version/GPU mismatch and damage give clear errors."""
    engine_path = Path(engine_path)
    trt = trt_module if trt_module is not None else require("tensorrt", "loading TensorRT engines")
    running = str(getattr(trt, "__version__", "unknown"))
    if not engine_path.is_file():
        raise BackendError(f"TensorRT engine {engine_path} does not exist")
    side = read_sidecar(engine_path)
    data = engine_path.read_bytes()
    if side is not None:
        built = side.get("trt_version")
        if built != running:
            raise BackendError(f"engine {engine_path.name} was built by TensorRT {built}, this is {running}: "
                               f"rebuild it on this device (delete it or build with rebuild=True)")
        if gpu is not None and side.get("compute_capability") not in (None, gpu["compute_capability"]):
            raise BackendError(f"engine {engine_path.name} was built for compute capability "
                               f"{side['compute_capability']} ({side.get('gpu_name')}), this GPU is "
                               f"{gpu['compute_capability']} ({gpu['name']}): rebuild it on this device")
        if side.get("engine_sha256") and side["engine_sha256"] != hashlib.sha256(data).hexdigest():
            raise BackendError(f"engine {engine_path} is corrupt or truncated ({len(data)} bytes, sidecar says "
                               f"{side.get('engine_bytes')}): rebuild it")
    runtime = runtime if runtime is not None else trt.Runtime(make_logger(trt, log_severity))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise BackendError(f"TensorRT {running} could not deserialize engine {engine_path} (corrupt, truncated, "
                           f"or built by another TensorRT version / GPU): rebuild it")
    return engine
