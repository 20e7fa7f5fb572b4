"""TensorRT's legacy INT8 calibration cache (text) and an IInt8EntropyCalibrator2 adapter.

Why keep the legacy path: JetPack 5 (TensorRT 8.5) and 6 (10.3) still build implicit-INT8 engines
from a calibration cache, and a cache lets a second build skip calibration. The format is a header
"TRT-<version int>-<algorithm>" then one "tensor: <8 hex digits>" line per tensor, the hex being the
big-endian bit pattern of the float32 scale (e.g. 1/127 -> 3c010204); dynamic range = scale * 127.
TensorRT 11 removed implicit calibration: there only explicit Q/DQ ONNX works, and this module says so.
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Dict, Iterable, Mapping, Tuple

import numpy as np

from dynmm_edge.atomic import write_bytes
from dynmm_edge.errors import BackendError, DataError

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
INT8_MAX = 127.0
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8}$")


def trt_version_int(version: str) -> int:
    """'8.5.2' -> 8502 and '10.3.0' -> 100300: NV_TENSORRT_VERSION changed its layout at 10.0."""
    parts = str(version).split(".")
    try:
        major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    except ValueError:
        raise DataError(f"TensorRT version {version!r} is not of the form MAJOR.MINOR.PATCH") from None
    if major >= 10:
        if minor > 99 or patch > 99:
            raise DataError(f"TensorRT version {version!r} does not fit the MAJOR*10000+MINOR*100+PATCH layout")
        return major * 10000 + minor * 100 + patch
    if minor > 9 or patch > 99:
        raise DataError(f"TensorRT version {version!r} does not fit the MAJOR*1000+MINOR*100+PATCH layout")
    return major * 1000 + minor * 100 + patch


def trt_version_str(value: int) -> str:
    """Inverse of trt_version_int: 8502 -> '8.5.2', 100300 -> '10.3.0'."""
    value = int(value)
    if value >= 100000:
        return f"{value // 10000}.{value // 100 % 100}.{value % 100}"
    if value >= 1000:
        return f"{value // 1000}.{value // 100 % 10}.{value % 100}"
    raise DataError(f"{value} is not a TensorRT version number")


def encode_scale(scale: float) -> str:
    """float32 scale -> 8 lowercase hex digits of its big-endian bit pattern."""
    return struct.pack(">f", float(np.float32(scale))).hex()


def decode_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def format_cache(scales: Mapping[str, float], trt_version: str = "8.5.2",
                 algorithm: str = "EntropyCalibration2") -> str:
    """The cache text; scales must be finite and >= 0, names free of newlines."""
    if algorithm not in ALGORITHMS:
        raise DataError(f"unknown calibration algorithm {algorithm!r}; choose one of {ALGORITHMS}")
    lines = [f"TRT-{trt_version_int(trt_version)}-{algorithm}"]
    for name, scale in scales.items():
        if not name or "\n" in name or "\r" in name:
            raise DataError(f"calibration tensor name {name!r} cannot be written to a cache line")
        s = float(np.float32(scale))
        if not math.isfinite(s) or s < 0:
            raise DataError(f"calibration scale for tensor '{name}' is {scale}: must be finite and >= 0")
        lines.append(f"{name}: {encode_scale(s)}")
    return "\n".join(lines) + "\n"


def write_cache(path, scales: Mapping[str, float], trt_version: str = "8.5.2",
                algorithm: str = "EntropyCalibration2") -> Path:
    """Write the legacy cache atomically (a half-written cache would silently mis-scale an engine)."""
    return write_bytes(path, format_cache(scales, trt_version, algorithm).encode("utf-8"))


def parse_cache(text: str, source: str = "<calibration cache>") -> Tuple[int, str, Dict[str, float]]:
    """(version_int, algorithm, scales) from cache text; every error names the source and line."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{source}: empty calibration cache (expected a 'TRT-<version>-<algorithm>' header)")
    m = _HEADER.match(lines[0].strip())
    if not m:
        raise DataError(f"{source}: line 1 {lines[0][:60]!r} is not a 'TRT-<version>-<algorithm>' header")
    version, algorithm = int(m.group(1)), m.group(2)
    if algorithm not in ALGORITHMS:
        raise DataError(f"{source}: unknown calibration algorithm {algorithm!r} in the header")
    scales: Dict[str, float] = {}
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, hexval = line.rpartition(": ")  # names may contain spaces and colons, the value never
        hexval = hexval.strip()
        if not sep or not name:
            raise DataError(f"{source}: line {i} {line[:60]!r} is not 'tensor_name: <8 hex digits>'")
        if not _HEX.match(hexval):
            raise DataError(f"{source}: line {i}: scale {hexval!r} of tensor '{name}' is not 8 hex digits")
        if name in scales:
            raise DataError(f"{source}: line {i}: tensor '{name}' appears twice")
        scale = decode_scale(hexval)
        if not math.isfinite(scale) or scale < 0:
            raise DataError(f"{source}: line {i}: scale of tensor '{name}' decodes to {scale}")
        scales[name] = scale
    return version, algorithm, scales


def read_cache(path) -> Tuple[int, Dict[str, float]]:
    """(version_int, {tensor: scale}) from a cache file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"calibration cache {path} does not exist") from None
    except UnicodeDecodeError:
        raise DataError(f"calibration cache {path} is not text (binary or corrupt file)") from None
    version, _, scales = parse_cache(text, str(path))
    return version, scales


def dynamic_ranges(scales: Mapping[str, float]) -> Dict[str, float]:
    """Symmetric dynamic range per tensor (what ITensor.dynamic_range / set_dynamic_range takes)."""
    return {n: float(np.float32(s)) * INT8_MAX for n, s in scales.items()}


def scales_from_ranges(ranges: Mapping[str, float]) -> Dict[str, float]:
    """amax -> scale; the inverse of dynamic_ranges up to float32 rounding."""
    return {n: float(np.float32(float(a) / INT8_MAX)) for n, a in ranges.items()}


def make_entropy_calibrator(feeds_iter: Iterable[Mapping[str, np.ndarray]], batch_size: int, cache_path,
                            trt_module=None, device=None):
    """An IInt8EntropyCalibrator2 that feeds name -> array batches from `feeds_iter` via device memory.

    The class is created here, not at import, because its base class lives in the tensorrt module
    (real or fake). A cache written by another TensorRT version is ignored (recalibrate): caches do
    not transfer reliably across versions. Errors raised inside TensorRT's callbacks cannot cross
    its C++ boundary, so they are kept in `.error` and re-raised by the build.
    """
    from dynmm_edge._lazy import require
    from dynmm_edge.backends.cuda_buffers import open_device

    trt = trt_module if trt_module is not None else require("tensorrt", "INT8 calibration")
    version = str(getattr(trt, "__version__", "unknown"))
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise BackendError(f"TensorRT {version} removed implicit INT8 calibration (IInt8EntropyCalibrator2): "
                           f"quantise the ONNX with Q/DQ nodes (calibration/ Q/DQ export) and build that")
    if int(batch_size) < 1:
        raise BackendError(f"calibration batch size must be >= 1, got {batch_size}")
    dev = open_device(device if device is not None else "auto")
    cls = _entropy_calibrator_class(base)
    return cls(feeds_iter, batch_size, Path(cache_path), trt_version_int(version), dev)


def _entropy_calibrator_class(base):
    """The calibrator class on `base` (tensorrt's IInt8EntropyCalibrator2, real or fake)."""

    class EntropyCalibrator(base):
        """Uploads each batch once into buffers allocated on first use; reads/writes the cache."""

        def __init__(self, feeds_iter, batch_size, cache_path: Path, expected_version: int, device):
            base.__init__(self)  # the pybind base must be initialised explicitly
            self.batches = 0
            self.error = None
            self.cache_path = cache_path
            self._iter = iter(feeds_iter)
            self._buffers = {}
            self._batch_size = batch_size
            self._expected_version = expected_version
            self.device = device

        def get_batch_size(self):
            return int(self._batch_size)

        def get_batch(self, names, *unused):
            try:
                feeds = next(self._iter)
            except StopIteration:
                return None
            try:
                ptrs = [self._upload(name, feeds) for name in names]
                self.device.synchronize()
            except Exception as exc:  # noqa: BLE001 - must not cross TensorRT's C++ boundary
                self.error = exc
                return None
            self.batches += 1
            return ptrs

        def _upload(self, name, feeds):
            """Device pointer of tensor `name` of this batch, checked against the batch size."""
            if name not in feeds:
                raise BackendError(f"calibration batch {self.batches} has no tensor '{name}' "
                                   f"(it has {sorted(feeds)})")
            arr = np.ascontiguousarray(feeds[name])
            if arr.ndim == 0 or arr.shape[0] != int(self._batch_size):
                raise BackendError(f"calibration batch {self.batches}: tensor '{name}' has shape "
                                   f"{arr.shape}, expected batch dimension {self._batch_size}")
            buf = self._buffers.get(name)
            if buf is None or buf.shape != arr.shape or buf.dtype != arr.dtype:
                buf = self._buffers[name] = self.device.alloc(arr.shape, arr.dtype)
            buf.upload(arr)
            return buf.ptr

        def read_calibration_cache(self):
            if not self.cache_path.is_file():
                return None
            data = self.cache_path.read_bytes()
            try:
                ver, _, _ = parse_cache(data.decode("utf-8"), str(self.cache_path))
            except (DataError, UnicodeDecodeError) as exc:
                self.error = DataError(f"calibration cache {self.cache_path} is malformed: {exc}")
                return None
            if ver != self._expected_version:
                self.stale_cache_version = ver  # recalibrate rather than trust a foreign cache
                return None
            return data

        def write_calibration_cache(self, cache):
            write_bytes(self.cache_path, bytes(cache))

    return EntropyCalibrator
