"""TensorRT backend: one engine per branch, name-based I/O only, one CUDA stream for all branches.

Why name-based I/O only: num_io_tensors / get_tensor_name / set_input_shape / set_tensor_address /
execute_async_v3 is the one execution API present in TensorRT 8.5, 10 and 11 alike. Outputs stay on
the device as DeviceArrays (allocated once per shape and reused), so a depth branch's features feed
the trunk without a host round trip; Backend.download() is where data comes back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.backends.base import Backend, Runner, TensorSpec
from dynmm_edge.backends.cuda_buffers import Device, DeviceArray, cuda_available, open_device
from dynmm_edge.backends.trt_engine import BatchProfile, load_engine, make_logger
from dynmm_edge.errors import BackendError

_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16", np.dtype(np.int32): "int32",
                np.dtype(np.int64): "int64", np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8",
                np.dtype(np.bool_): "bool"}


def trt_available() -> Tuple[bool, str]:
    """(True, 'TensorRT x on GPU') when tensorrt imports and a CUDA device answers; never raises."""
    try:
        import tensorrt as trt  # noqa: F401 - probing only
    except Exception as exc:  # noqa: BLE001 - ImportError or a missing libnvinfer
        return False, f"tensorrt cannot be imported: {exc}"
    ok, why = cuda_available()
    if not ok:
        return False, f"TensorRT {getattr(trt, '__version__', '?')} imports but no CUDA device: {why}"
    return True, f"TensorRT {getattr(trt, '__version__', '?')} on {why}"


class TensorRTRunner(Runner):
    """Runs one engine. Outputs are valid until the next infer() of the same runner."""

    def __init__(self, name: str, engine, device: Device, engine_path: Path, trt):
        self.engine, self.device, self.engine_path, self._trt = engine, device, Path(engine_path), trt
        inputs, outputs = {}, {}
        in_mode = trt.TensorIOMode.INPUT
        self._np = {}
        for i in range(engine.num_io_tensors):
            tname = engine.get_tensor_name(i)
            dt = np.dtype(trt.nptype(engine.get_tensor_dtype(tname)))
            self._np[tname] = dt
            spec = TensorSpec(tname, tuple(int(d) for d in engine.get_tensor_shape(tname)),
                              _DTYPE_NAMES.get(dt, dt.name))
            (inputs if engine.get_tensor_mode(tname) == in_mode else outputs)[tname] = spec
        super().__init__(name, inputs, outputs)
        self.context = None
        self._staging: Dict[str, DeviceArray] = {}
        self._out_bufs: Dict[str, DeviceArray] = {}

    def activate_impl(self) -> None:
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise BackendError(f"branch '{self.name}': TensorRT could not create an execution context for "
                               f"{self.engine_path.name} (out of device memory?)")

    def deactivate_impl(self) -> None:
        for buf in list(self._staging.values()) + list(self._out_bufs.values()):
            buf.free()
        self._staging.clear()
        self._out_bufs.clear()
        self.context = None

    def _device_input(self, name: str, value) -> DeviceArray:
        want = self._np[name]
        if isinstance(value, DeviceArray):
            if value.dtype != want:
                raise BackendError(f"branch '{self.name}': input '{name}' is {value.dtype} on the device, the "
                                   f"engine wants {want}")
            return value
        arr = np.asarray(value)
        if arr.dtype != want:
            raise BackendError(f"branch '{self.name}': input '{name}' is {arr.dtype}, the engine wants {want}")
        buf = self._staging.get(name)
        if buf is None or buf.shape != arr.shape:
            if buf is not None:
                buf.free()
            buf = self._staging[name] = self.device.alloc(arr.shape, want)
        return buf.upload(arr)

    def infer_impl(self, feeds: Dict[str, Any]) -> Dict[str, DeviceArray]:
        ctx = self.context
        for name, value in feeds.items():
            buf = self._device_input(name, value)
            if not ctx.set_input_shape(name, buf.shape):
                raise BackendError(f"branch '{self.name}': input '{name}' shape {list(buf.shape)} is not accepted "
                                   f"by {self.engine_path.name} (engine shape {list(self.inputs[name].shape)}; "
                                   f"outside the optimisation profile?)")
            ctx.set_tensor_address(name, buf.ptr)
        results = {}
        for name in self.outputs:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"branch '{self.name}': output '{name}' shape {list(shape)} is unresolved")
            buf = self._out_bufs.get(name)
            if buf is None or buf.shape != shape:
                if buf is not None:
                    buf.free()
                buf = self._out_bufs[name] = self.device.alloc(shape, self._np[name])
            ctx.set_tensor_address(name, buf.ptr)
            results[name] = buf
        if not ctx.execute_async_v3(self.device.stream_handle):
            raise BackendError(f"branch '{self.name}': execute_async_v3 failed for {self.engine_path.name}")
        return results


class TensorRTBackend(Backend):
    """Loads (building when allowed) one engine per branch and runs them on one shared stream.

    builder: the engine builder, `build_engine(onnx_path, precision, **options) -> engine path`
    (dynmm_edge.export.trt_build.build_engine; dynmm_edge.models.open_backend passes it). It also
    finds cached engines, so a backend without one cannot open branches.
    build=False: use cached engines only (error if one is missing) - for devices that must not build.
    """

    name = "tensorrt"

    def __init__(self, *, device="auto", trt_module=None, cache_dir=None, precision: Optional[str] = None,
                 workspace_mb: int = 1024, profile=None, timing_cache_path=None, build: bool = True,
                 log_severity: str = "warning", builder: Optional[Callable[..., Path]] = None):
        self.trt = trt_module if trt_module is not None else require("tensorrt", "the TensorRT backend")
        self.device = open_device(device)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.precision, self.workspace_mb, self.profile = precision, workspace_mb, profile
        self.timing_cache_path, self.build, self.log_severity = timing_cache_path, build, log_severity
        self.builder = builder
        self._runtime = None
        self._closed = False
        self.engines: Dict[str, Path] = {}

    @property
    def runtime(self):
        if self._runtime is None:
            self._runtime = self.trt.Runtime(make_logger(self.trt, self.log_severity))
        return self._runtime

    def _profile_for(self, branch, manifest):
        """Region tile-batch engines get a profile spanning the manifest's buckets; others self.profile."""
        if branch.kind != "region" or not any(t.shape and t.shape[0] < 0 for t in branch.inputs):
            return self.profile
        from dynmm_edge.manifest import region_spec
        spec = region_spec(manifest)
        if spec is None:
            raise BackendError(f"branch '{branch.name}' is a region branch but the manifest has no 'regions' section")
        return BatchProfile(*spec.tile_batch_range())

    def engine_for(self, branch, manifest, precision: Optional[str] = None) -> Path:
        """Path of the cached engine for a branch, building it from the branch ONNX when allowed.

        The ONNX is not re-hashed here: load_manifest checked it, and the engine cache key is the
        digest of the bytes the builder reads.
        """
        if self.builder is None:
            raise BackendError(f"branch '{branch.name}': this TensorRT backend has no engine builder; open it with "
                               f"dynmm_edge.models.open_backend('trt') or pass "
                               f"builder=dynmm_edge.export.trt_build.build_engine")
        precision = precision or self.precision or branch.precision
        variant_precision = precision if precision in getattr(branch, "variants", {}) else branch.precision
        onnx_path = manifest.file_path(branch, variant_precision)
        if not onnx_path.is_file():
            raise BackendError(f"branch '{branch.name}': ONNX file {onnx_path} does not exist")
        return self.builder(onnx_path, precision, trt_module=self.trt, workspace_mb=self.workspace_mb,
                            profile=self._profile_for(branch, manifest), timing_cache_path=self.timing_cache_path,
                            cache_dir=self.cache_dir or manifest.folder / "trt_engines", branch=branch.name,
                            gpu=self.device.describe(), log_severity=self.log_severity, allow_build=self.build)

    def open(self, branch, manifest, precision: Optional[str] = None) -> TensorRTRunner:
        path = self.engine_for(branch, manifest, precision)
        engine = load_engine(path, trt_module=self.trt, runtime=self.runtime, gpu=self.device.describe())
        runner = TensorRTRunner(branch.name, engine, self.device, path, self.trt)
        want_in = {t.name for t in branch.inputs}
        want_out = {t.name for t in branch.outputs}
        if set(runner.inputs) != want_in or not want_out <= set(runner.outputs):
            raise BackendError(f"branch '{branch.name}': engine {path.name} has inputs {sorted(runner.inputs)} and "
                               f"outputs {sorted(runner.outputs)}, manifest says {sorted(want_in)} / {sorted(want_out)}")
        self.engines[branch.name] = path
        return runner

    def upload(self, array: np.ndarray) -> DeviceArray:
        return self.device.upload(np.asarray(array))

    def download(self, x) -> np.ndarray:
        if isinstance(x, DeviceArray):
            return x.download()
        return np.asarray(x)

    def zeros(self, shape, dtype: str = "float32") -> DeviceArray:
        return self.device.zeros(tuple(shape), np.dtype(dtype))

    def synchronize(self) -> None:
        self.device.synchronize()

    def close(self) -> None:
        """Destroy the CUDA stream (and context) once; the runtime and engines go with the backend."""
        if not self._closed:
            self._closed = True
            self._runtime = None
            self.device.close()

    def describe(self) -> Dict[str, Any]:
        info = self.device.describe()
        return {"backend": self.name, "tensorrt": str(getattr(self.trt, "__version__", "?")),
                "device": self.device.kind, "gpu": info["name"], "compute_capability": info["compute_capability"],
                "engines": {k: str(v) for k, v in self.engines.items()}}
