"""Device buffers and one CUDA stream per backend, over cuda-python, pycuda, torch or host memory.

Why several: JetPack images ship different CUDA Python stacks (NVIDIA's samples moved from pycuda to
cuda-python; torch is often present anyway). All of them reduce to the same four operations
(malloc, copy in, copy out, synchronise), so the TensorRT runner only ever sees a DeviceArray with
shape, dtype and a raw pointer. "host" keeps buffers in ordinary host memory behind real pointers: it
is never chosen automatically and exists so fakes and tests exercise the pointer plumbing without a GPU.
"""
from __future__ import annotations

import ctypes
from typing import Tuple

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.errors import BackendError, MissingDependency

DEVICE_KINDS = ("cuda-python", "pycuda", "torch", "host")
AUTO_ORDER = ("cuda-python", "pycuda", "torch")


class DeviceArray:
    """A typed view of device memory: shape, dtype, raw pointer. Copies happen only when asked."""

    __slots__ = ("shape", "dtype", "ptr", "nbytes", "device", "_handle")

    def __init__(self, device, shape, dtype, ptr: int, nbytes: int, handle):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ptr = int(ptr)
        self.nbytes = int(nbytes)
        self.device = device
        self._handle = handle  # keeps the allocation alive

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def upload(self, array) -> "DeviceArray":
        """Copy a host array of the same shape and dtype into this buffer (stream-ordered)."""
        array = np.asarray(array)
        if array.shape != self.shape or array.dtype != self.dtype:
            raise BackendError(f"cannot upload {array.dtype}{list(array.shape)} into a device buffer of "
                               f"{self.dtype}{list(self.shape)}")
        self.device._h2d(self, np.ascontiguousarray(array))
        return self

    def download(self) -> np.ndarray:
        """Copy to a new host array; synchronises the stream so the values are final."""
        out = np.empty(self.shape, self.dtype)
        if out.nbytes:
            self.device._d2h(out, self)
        self.device.synchronize()
        return out

    def free(self) -> None:
        if self._handle is not None:
            self.device._free(self)
            self._handle = None
            self.ptr = 0

    def __repr__(self):
        return f"DeviceArray({self.dtype}{list(self.shape)}, ptr=0x{self.ptr:x}, {self.device.kind})"


class Device:
    """One device context plus one stream, shared by every branch of a backend."""

    kind = "abstract"

    def __init__(self):
        self.allocations = 0  # counted so tests can check that buffers are reused

    # -- public -------------------------------------------------------------------------------
    def alloc(self, shape, dtype) -> DeviceArray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        ptr, handle = self._malloc(max(nbytes, 1))  # zero-size tensors still need a valid address
        self.allocations += 1
        return DeviceArray(self, shape, dtype, ptr, nbytes, handle)

    def upload(self, array) -> DeviceArray:
        array = np.ascontiguousarray(array)
        buf = self.alloc(array.shape, array.dtype)
        if array.nbytes:
            self._h2d(buf, array)
        return buf

    def download(self, buf: DeviceArray) -> np.ndarray:
        if not isinstance(buf, DeviceArray):
            raise BackendError(f"download expects a DeviceArray, got {type(buf).__name__}")
        return buf.download()

    def zeros(self, shape, dtype) -> DeviceArray:
        buf = self.alloc(shape, dtype)
        if buf.nbytes:
            self._memset0(buf)
        return buf

    @property
    def stream_handle(self) -> int:
        """The raw cudaStream_t as an int, as TensorRT's execute_async_v3 wants it."""
        raise NotImplementedError

    def synchronize(self) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        """{'name', 'compute_capability'}: what engine caches are keyed by."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- hooks --------------------------------------------------------------------------------
    def _malloc(self, nbytes: int):
        raise NotImplementedError

    def _free(self, buf: DeviceArray) -> None:
        raise NotImplementedError

    def _h2d(self, buf: DeviceArray, host: np.ndarray) -> None:
        raise NotImplementedError

    def _d2h(self, host: np.ndarray, buf: DeviceArray) -> None:
        raise NotImplementedError

    def _memset0(self, buf: DeviceArray) -> None:
        raise NotImplementedError


class HostDevice(Device):
    """Host memory behind real pointers; synchronous. For fakes and tests, never auto-selected."""

    kind = "host"

    def _malloc(self, nbytes):
        block = np.empty(nbytes, np.uint8)
        return block.ctypes.data, block

    def _free(self, buf):
        pass  # numpy owns the block; dropping the handle frees it

    def _h2d(self, buf, host):
        ctypes.memmove(buf.ptr, host.ctypes.data, host.nbytes)

    def _d2h(self, host, buf):
        ctypes.memmove(host.ctypes.data, buf.ptr, host.nbytes)

    def _memset0(self, buf):
        ctypes.memset(buf.ptr, 0, buf.nbytes)

    @property
    def stream_handle(self):
        return 0

    def synchronize(self):
        pass

    def describe(self):
        return {"name": "host-memory (no GPU)", "compute_capability": "0.0"}


def _import_cudart():
    """cuda-python moved its runtime bindings to cuda.bindings.runtime (12.6+); older: cuda.cudart."""
    try:
        return require("cuda.bindings.runtime", "CUDA device buffers")
    except MissingDependency:
        return require("cuda.cudart", "CUDA device buffers")


class CudaPythonDevice(Device):
    """cuda-python runtime API (NVIDIA's current sample stack)."""

    kind = "cuda-python"

    def __init__(self, device_index: int = 0):
        super().__init__()
        self._rt = _import_cudart()
        count = self._call("cudaGetDeviceCount")
        if not count:
            raise BackendError("cuda-python found no CUDA device")
        self._call("cudaSetDevice", device_index)
        self._index = device_index
        self._stream = self._call("cudaStreamCreate")

    def _call(self, fn, *args):
        result = getattr(self._rt, fn)(*args)
        err, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            raise BackendError(f"CUDA {fn} failed: {getattr(err, 'name', err)} (code {int(err)})")
        return rest[0] if len(rest) == 1 else (rest or None)

    def _malloc(self, nbytes):
        ptr = int(self._call("cudaMalloc", nbytes))
        return ptr, ptr

    def _free(self, buf):
        self._call("cudaFree", buf.ptr)

    def _h2d(self, buf, host):
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", buf.ptr, host.ctypes.data, host.nbytes, kind, self._stream)

    def _d2h(self, host, buf):
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", host.ctypes.data, buf.ptr, host.nbytes, kind, self._stream)

    def _memset0(self, buf):
        self._call("cudaMemsetAsync", buf.ptr, 0, buf.nbytes, self._stream)

    @property
    def stream_handle(self):
        return int(self._stream)

    def synchronize(self):
        self._call("cudaStreamSynchronize", self._stream)

    def describe(self):
        prop = self._call("cudaGetDeviceProperties", self._index)
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return {"name": name, "compute_capability": f"{prop.major}.{prop.minor}"}

    def close(self):
        if self._stream is not None:
            self._call("cudaStreamDestroy", self._stream)
            self._stream = None


class PyCudaDevice(Device):
    """pycuda (JetPack 5 era samples); pycuda.autoinit makes the context on device 0."""

    kind = "pycuda"

    def __init__(self):
        super().__init__()
        require("pycuda.autoinit", "CUDA device buffers")
        self._drv = require("pycuda.driver", "CUDA device buffers")
        self._stream = self._drv.Stream()

    def _malloc(self, nbytes):
        alloc = self._drv.mem_alloc(nbytes)
        return int(alloc), alloc

    def _free(self, buf):
        buf._handle.free()

    def _h2d(self, buf, host):
        self._drv.memcpy_htod_async(buf.ptr, host, self._stream)

    def _d2h(self, host, buf):
        self._drv.memcpy_dtoh_async(host, buf.ptr, self._stream)

    def _memset0(self, buf):
        self._drv.memset_d8_async(buf.ptr, 0, buf.nbytes, self._stream)

    @property
    def stream_handle(self):
        return int(self._stream.handle)

    def synchronize(self):
        self._stream.synchronize()

    def describe(self):
        dev = self._drv.Context.get_device()
        major, minor = dev.compute_capability()
        return {"name": dev.name(), "compute_capability": f"{major}.{minor}"}


class TorchDevice(Device):
    """torch.cuda memory and a dedicated torch stream (handy when torch is already loaded)."""

    kind = "torch"

    def __init__(self, device_index: int = 0):
        super().__init__()
        self._torch = require("torch", "CUDA device buffers")
        if not self._torch.cuda.is_available():
            raise BackendError("torch reports no CUDA device")
        self._dev = self._torch.device("cuda", device_index)
        self._stream = self._torch.cuda.Stream(device=self._dev)

    def _malloc(self, nbytes):
        t = self._torch.empty(nbytes, dtype=self._torch.uint8, device=self._dev)
        return t.data_ptr(), t

    def _free(self, buf):
        pass  # the caching allocator reclaims it when the tensor handle is dropped

    def _h2d(self, buf, host):
        src = self._torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self._torch.cuda.stream(self._stream):
            buf._handle[: host.nbytes].copy_(src, non_blocking=True)

    def _d2h(self, host, buf):
        with self._torch.cuda.stream(self._stream):
            data = buf._handle[: host.nbytes].cpu()
        host.reshape(-1).view(np.uint8)[:] = data.numpy()

    def _memset0(self, buf):
        with self._torch.cuda.stream(self._stream):
            buf._handle.zero_()

    @property
    def stream_handle(self):
        return int(self._stream.cuda_stream)

    def synchronize(self):
        self._stream.synchronize()

    def describe(self):
        major, minor = self._torch.cuda.get_device_capability(self._dev)
        return {"name": self._torch.cuda.get_device_name(self._dev), "compute_capability": f"{major}.{minor}"}


_FACTORIES = {"cuda-python": CudaPythonDevice, "pycuda": PyCudaDevice, "torch": TorchDevice, "host": HostDevice}


def open_device(kind: str = "auto") -> Device:
    """Open a device by kind; 'auto' tries cuda-python, pycuda, torch and reports why each failed."""
    if isinstance(kind, Device):
        return kind
    if kind != "auto":
        if kind not in _FACTORIES:
            raise BackendError(f"unknown device kind {kind!r}; choose one of {('auto',) + DEVICE_KINDS}")
        return _FACTORIES[kind]()
    reasons = []
    for name in AUTO_ORDER:
        try:
            return _FACTORIES[name]()
        except Exception as exc:  # noqa: BLE001 - a failed import or driver call: try the next stack
            reasons.append(f"{name}: {exc}")
    raise BackendError("no CUDA device could be opened: " + "; ".join(reasons))


def cuda_available() -> Tuple[bool, str]:
    """(True, 'GPU name') when some CUDA stack sees a device; else (False, why), never raising."""
    try:
        dev = open_device("auto")
    except Exception as exc:  # noqa: BLE001
        return False, str(exc)
    try:
        info = dev.describe()
        return True, f"{info['name']} (sm {info['compute_capability']}) via {dev.kind}"
    except Exception as exc:  # noqa: BLE001
        return False, f"{dev.kind} opened but could not describe the device: {exc}"
    finally:
        dev.close()
