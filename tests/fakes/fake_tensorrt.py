"""A fake `tensorrt` module whose API surface follows TensorRT 8.5, 10 or 11.

Why: TensorRT cannot be installed on the CI machines, yet the SDK must drive three API generations
that differ in what EXISTS (EXPLICIT_BATCH only up to 10, STRONGLY_TYPED from 10, BuilderFlag.FP16/INT8
and IInt8EntropyCalibrator2 gone in 11, execute_async_v2/build_engine/max_workspace_size gone in 10).
Attributes are present or absent per version, so code that touches a removed API fails here exactly as
it would on the real thing. The "engine" is the ONNX bytes plus build metadata; execution reads the
inputs from raw pointers (host-memory DeviceArrays), runs onnxruntime, and writes outputs to pointers,
so outputs are real numbers and pointer plumbing is exercised. Everything the builder was asked to do
is recorded in `trt._state` for assertions.
"""
from __future__ import annotations

import ctypes
import enum
import hashlib
import json
import struct
import types

import numpy as np

MAGIC = b"FAKETRT1"
UNSUPPORTED_OPS = frozenset({"NonZero", "Unique"})  # ops this fake parser refuses, to test error paths


def _vtuple(version):
    return tuple(int(p) for p in version.split(".")[:3])


def make_fake_trt(version: str = "10.3.0"):
    """Build a fresh module-like namespace for `version` ('8.5.3', '10.3.0', '11.4.0', ...)."""
    import onnx
    import onnxruntime as ort

    major = _vtuple(version)[0]
    trt = types.ModuleType(f"fake_tensorrt_{version.replace('.', '_')}")
    trt.__version__ = version
    state = {"networks": [], "configs": [], "builds": 0, "parses": 0, "deserialized": 0, "executions": 0,
             "log": []}
    trt._state = state

    # ---- enums ------------------------------------------------------------------------------
    class DataType(enum.IntEnum):
        FLOAT = 0
        HALF = 1
        INT8 = 2
        INT32 = 3
        BOOL = 4
        UINT8 = 5
        if major >= 10:
            INT64 = 8

    np_of = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
             DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8}
    if major >= 10:
        np_of[DataType.INT64] = np.int64
    ort_types = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF,
                 "tensor(int8)": DataType.INT8, "tensor(int32)": DataType.INT32,
                 "tensor(bool)": DataType.BOOL, "tensor(uint8)": DataType.UINT8}
    if major >= 10:
        ort_types["tensor(int64)"] = DataType.INT64

    def nptype(dt):
        return np_of[DataType(dt)]

    class TensorIOMode(enum.IntEnum):
        NONE = 0
        INPUT = 1
        OUTPUT = 2

    if major < 10:
        class NetworkDefinitionCreationFlag(enum.IntEnum):
            EXPLICIT_BATCH = 0
            EXPLICIT_PRECISION = 1
    elif major == 10:
        class NetworkDefinitionCreationFlag(enum.IntEnum):
            EXPLICIT_BATCH = 0  # deprecated, ignored
            STRONGLY_TYPED = 1
    else:
        class NetworkDefinitionCreationFlag(enum.IntEnum):
            STRONGLY_TYPED = 0  # deprecated, always on

    flag_names = ["TF32", "REFIT", "DEBUG", "GPU_FALLBACK", "SPARSE_WEIGHTS"]
    if major < 11:
        flag_names += ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    BuilderFlag = enum.IntEnum("BuilderFlag", flag_names)

    class MemoryPoolType(enum.IntEnum):
        WORKSPACE = 0
        DLA_MANAGED_SRAM = 1

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        pass

    ILogger.Severity = Severity

    class Logger(ILogger):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity.INTERNAL_ERROR, Severity.ERROR,
                                                         Severity.WARNING, Severity.INFO, Severity.VERBOSE)

        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg):
            state["log"].append((int(severity), msg))

    def _log(logger, severity, msg):
        (logger.log if logger is not None else lambda s, m: state["log"].append((int(s), m)))(severity, msg)

    # ---- memory helpers --------------------------------------------------------------------
    class IHostMemory:
        def __init__(self, data: bytes):
            self._data = bytes(data)
            self.nbytes = len(self._data)

        def __bytes__(self):
            return self._data

        def __len__(self):
            return self.nbytes

    def _read_ptr(ptr, shape, dtype):
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raw = (ctypes.c_char * max(n, 1)).from_address(int(ptr))
        return np.frombuffer(bytes(raw)[:n], dtype=dtype).reshape(shape).copy()

    def _write_ptr(ptr, array):
        array = np.ascontiguousarray(array)
        ctypes.memmove(int(ptr), array.ctypes.data, array.nbytes)

    # ---- network + parser ------------------------------------------------------------------
    class ITensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    def _dims(ort_shape):
        return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in ort_shape)

    class INetworkDefinition:
        def __init__(self, flags):
            self.flags = flags
            self.onnx_bytes = None
            self._inputs, self._outputs = [], []
            self.has_qdq = False

        num_inputs = property(lambda self: len(self._inputs))
        num_outputs = property(lambda self: len(self._outputs))

        def get_input(self, index):
            return self._inputs[index]

        def get_output(self, i):
            return self._outputs[i]

    class ErrorCode(enum.IntEnum):
        SUCCESS = 0
        INTERNAL_ERROR = 1
        INVALID_GRAPH = 5
        INVALID_NODE = 6
        UNSUPPORTED_NODE = 8
        MODEL_DESERIALIZE_FAILED = 3

    class ParserError:
        def __init__(self, code, desc, node=-1, node_name="", node_op=""):
            self._code, self._desc, self._node, self._name, self._op = code, desc, node, node_name, node_op

        def code(self):
            return self._code

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def file(self):
            return "ModelImporter.cpp"

        def line(self):
            return 0

        def func(self):
            return "parseGraph"

        if major >= 10:
            def node_name(self):
                return self._name

            def node_operator(self):
                return self._op

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger, self._errors = network, logger, []

        num_errors = property(lambda self: len(self._errors))

        def get_error(self, index):
            return self._errors[index]

        def clear_errors(self):
            self._errors = []

        def parse(self, model, path=None):
            state["parses"] += 1
            data = bytes(model)
            if major < 10 and not (self.network.flags >> int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH)) & 1:
                self._errors.append(ParserError(ErrorCode.INVALID_GRAPH,
                                                "ONNX models require an explicit batch network (EXPLICIT_BATCH)"))
                return False
            try:
                proto = onnx.load_model_from_string(data)
            except Exception as exc:  # noqa: BLE001
                self._errors.append(ParserError(ErrorCode.MODEL_DESERIALIZE_FAILED, f"failed to parse ONNX: {exc}"))
                return False
            for i, node in enumerate(proto.graph.node):
                if node.op_type in UNSUPPORTED_OPS:
                    self._errors.append(ParserError(ErrorCode.UNSUPPORTED_NODE,
                                                    f"No importer registered for op: {node.op_type}", i,
                                                    node.name, node.op_type))
            if self._errors:
                return False
            try:
                sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001
                self._errors.append(ParserError(ErrorCode.INVALID_GRAPH, str(exc)))
                return False
            net = self.network
            net.onnx_bytes = data
            net.has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
            net._inputs = [ITensor(a.name, _dims(a.shape), ort_types[a.type]) for a in sess.get_inputs()]
            net._outputs = [ITensor(a.name, _dims(a.shape), ort_types[a.type]) for a in sess.get_outputs()]
            return True

    # ---- builder ---------------------------------------------------------------------------
    class IOptimizationProfile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's keyword names
            mn, op, mx = tuple(min), tuple(opt), tuple(max)
            if not (len(mn) == len(op) == len(mx)) or any(a > b or b > c for a, b, c in zip(mn, op, mx)):
                raise ValueError(f"invalid profile for {input}: {mn} {op} {mx}")
            self.shapes[input] = (mn, op, mx)

        def get_shape(self, name):
            return list(self.shapes[name])

    class ITimingCache:
        def __init__(self, entries):
            self.entries = dict(entries)

        def serialize(self):
            return IHostMemory(json.dumps({"trt": version, "entries": self.entries}).encode())

        def combine(self, other, ignore_mismatch):
            self.entries.update(other.entries)
            return True

        def reset(self):
            self.entries.clear()
            return True

    config_fields = {"flags", "pool_limits", "profiles", "timing_cache"}
    if major < 11:
        config_fields |= {"int8_calibrator", "calibration_profile"}
    if major < 10:
        config_fields |= {"max_workspace_size"}

    class IBuilderConfig:
        def __setattr__(self, name, value):  # like pybind11: an attribute this version lacks cannot be set
            if name not in config_fields:
                raise AttributeError(f"'tensorrt.IBuilderConfig' object has no attribute '{name}' (TensorRT {version})")
            object.__setattr__(self, name, value)

        def __init__(self):
            self.flags = set()
            self.pool_limits = {}
            self.profiles = []
            self.timing_cache = None
            if major < 11:
                self.int8_calibrator = None
                self.calibration_profile = None
            if major < 10:
                self.max_workspace_size = 0
            state["configs"].append(self)

        def set_flag(self, flag):
            self.flags.add(BuilderFlag(flag))

        def clear_flag(self, flag):
            self.flags.discard(BuilderFlag(flag))

        def get_flag(self, flag):
            return BuilderFlag(flag) in self.flags

        def set_memory_pool_limit(self, pool, pool_size):
            self.pool_limits[MemoryPoolType(pool)] = int(pool_size)

        def get_memory_pool_limit(self, pool):
            return self.pool_limits.get(MemoryPoolType(pool), 0)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        if major < 11:
            def set_calibration_profile(self, profile):
                self.calibration_profile = profile

            def get_calibration_profile(self):
                return self.calibration_profile

        def create_timing_cache(self, serialized_timing_cache):
            data = bytes(serialized_timing_cache)
            if not data:
                return ITimingCache({})
            blob = json.loads(data.decode())
            if blob.get("trt") != version:
                _log(None, Severity.WARNING, f"timing cache from TensorRT {blob.get('trt')} ignored")
                return ITimingCache({})
            return ITimingCache(blob["entries"])

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if major < 11:
        class CalibrationAlgoType(enum.IntEnum):
            LEGACY_CALIBRATION = 0
            ENTROPY_CALIBRATION = 1
            ENTROPY_CALIBRATION_2 = 2
            MINMAX_CALIBRATION = 3

        class IInt8Calibrator:
            def __init__(self):
                self._base_initialised = True

        class IInt8EntropyCalibrator2(IInt8Calibrator):
            def get_algorithm(self):
                return CalibrationAlgoType.ENTROPY_CALIBRATION_2

        trt.CalibrationAlgoType = CalibrationAlgoType
        trt.IInt8Calibrator = IInt8Calibrator
        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    def _version_int():
        a, b, c = _vtuple(version)
        return a * 10000 + b * 100 + c if a >= 10 else a * 1000 + b * 100 + c

    def _calibrate(network, config, logger):
        """Entropy calibration stand-in: amax/127 of every network input over all batches."""
        calib = config.int8_calibrator
        if not getattr(calib, "_base_initialised", False):
            raise TypeError("calibrator did not call IInt8EntropyCalibrator2.__init__")
        header = f"TRT-{_version_int()}-EntropyCalibration2"
        cached = calib.read_calibration_cache()
        if cached:
            if bytes(cached).decode().splitlines()[0] == header:
                state["calibration"] = "from-cache"
                return True
            _log(logger, Severity.WARNING, "calibration cache header mismatch; recalibrating")
        names = [network.get_input(i).name for i in range(network.num_inputs)]
        bs = calib.get_batch_size()
        amax = {n: 0.0 for n in names}
        batches = 0
        while True:
            ptrs = calib.get_batch(names)
            if ptrs is None:
                break
            batches += 1
            for name, ptr in zip(names, ptrs):
                t = network.get_input(names.index(name))
                shape = (bs,) + tuple(t.shape[1:])
                amax[name] = max(amax[name], float(np.abs(_read_ptr(ptr, shape, nptype(t.dtype))).max()))
        if batches == 0:
            _log(logger, Severity.ERROR, "calibrator returned no batches")
            return False
        lines = [header] + [f"{n}: {struct.pack('>f', a / 127.0).hex()}" for n, a in amax.items()]
        calib.write_calibration_cache(IHostMemory(("\n".join(lines) + "\n").encode()))
        state["calibration"] = f"{batches} batches"
        return True

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        if major < 11:
            platform_has_fast_fp16 = True
            platform_has_fast_int8 = True

        def create_network(self, flags=0):
            known = 0
            for f in NetworkDefinitionCreationFlag:
                known |= 1 << int(f)
            if flags & ~known:
                raise TypeError(f"unknown network creation flags {flags:#x} for TensorRT {version}")
            net = INetworkDefinition(int(flags))
            state["networks"].append(net)
            return net

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            state["builds"] += 1
            err = self._check(network, config)
            if err:
                _log(self.logger, Severity.ERROR, err)
                return None
            strongly = major >= 11 or (major == 10 and network.flags >> 1 & 1)
            entry = hashlib.sha256(network.onnx_bytes).hexdigest()[:16]
            if config.timing_cache is not None:
                state["timing_cache_hit"] = entry in config.timing_cache.entries
                config.timing_cache.entries[entry] = "tactics"
            meta = {"version": version, "flags": sorted(f.name for f in config.flags),
                    "strongly_typed": bool(strongly), "network_flags": network.flags,
                    "workspace": config.pool_limits.get(MemoryPoolType.WORKSPACE, 0),
                    "profiles": [{k: [list(s) for s in v] for k, v in p.shapes.items()} for p in config.profiles],
                    "has_qdq": network.has_qdq}
            head = json.dumps(meta).encode()
            return IHostMemory(MAGIC + struct.pack("<I", len(head)) + head + network.onnx_bytes)

        def _check(self, network, config):
            if network.onnx_bytes is None:
                return "network is empty (nothing parsed)"
            strongly = major == 10 and network.flags >> int(NetworkDefinitionCreationFlag.STRONGLY_TYPED) & 1
            names = {f.name for f in config.flags}
            if (strongly or major >= 11) and names & {"FP16", "INT8"}:
                return "precision builder flags are not allowed on a strongly typed network"
            if network.has_qdq and major < 11 and not strongly and "INT8" not in names:
                return "network has Q/DQ layers but BuilderFlag.INT8 is not set"
            dynamic = [t for t in network._inputs if -1 in t.shape]
            if dynamic:
                if not config.profiles:
                    return f"input {dynamic[0].name} has dynamic shape {dynamic[0].shape} but no optimization profile"
                for t in dynamic:
                    if t.name not in config.profiles[0].shapes:
                        return f"optimization profile misses dynamic input {t.name}"
            if "INT8" in names and not network.has_qdq:
                if config.int8_calibrator is None:
                    return "INT8 without Q/DQ needs a calibrator"
                if not _calibrate(network, config, self.logger):
                    return "calibration failed"
            return None

        if major < 10:
            def build_engine(self, network, config):
                data = self.build_serialized_network(network, config)
                return None if data is None else Runtime(self.logger).deserialize_cuda_engine(bytes(data))

    # ---- runtime ---------------------------------------------------------------------------
    class ICudaEngine:
        def __init__(self, meta, onnx_bytes):
            self.meta = meta
            self._onnx = onnx_bytes
            self._sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self._io = ([(a.name, TensorIOMode.INPUT, _dims(a.shape), ort_types[a.type]) for a in self._sess.get_inputs()]
                        + [(a.name, TensorIOMode.OUTPUT, _dims(a.shape), ort_types[a.type])
                           for a in self._sess.get_outputs()])
            self._by_name = {t[0]: t for t in self._io}
            prof = meta["profiles"][0] if meta["profiles"] else {}
            self._profile = {k: tuple(tuple(s) for s in v) for k, v in prof.items()}

        num_io_tensors = property(lambda self: len(self._io))

        def _t(self, name):
            if name not in self._by_name:
                raise KeyError(f"no tensor named {name}")  # real TRT logs and returns invalid values
            return self._by_name[name]

        def get_tensor_name(self, index):
            return self._io[index][0]

        def get_tensor_mode(self, name):
            return self._t(name)[1] if name in self._by_name else TensorIOMode.NONE

        def get_tensor_shape(self, name):
            return self._t(name)[2]

        def get_tensor_dtype(self, name):
            return self._t(name)[3]

        def get_tensor_profile_shape(self, name, profile_index):
            return [list(s) for s in self._profile[name]]

        def create_execution_context(self):
            return IExecutionContext(self)

        def serialize(self):
            head = json.dumps(self.meta).encode()
            return IHostMemory(MAGIC + struct.pack("<I", len(head)) + head + self._onnx)

        if major < 10:
            num_bindings = property(lambda self: len(self._io))

            def get_binding_name(self, i):
                return self._io[i][0]

            def binding_is_input(self, i):
                return self._io[i][1] == TensorIOMode.INPUT

            def get_binding_index(self, name):
                return next((i for i, t in enumerate(self._io) if t[0] == name), -1)

    class IExecutionContext:
        def __init__(self, engine):
            self.engine = engine
            self._shapes = {}
            self._addr = {}
            self._out_shape_cache = {}

        def set_input_shape(self, name, shape):
            e = self.engine
            if e.get_tensor_mode(name) != TensorIOMode.INPUT:
                return False
            shape = tuple(int(s) for s in shape)
            static = e.get_tensor_shape(name)
            if len(shape) != len(static) or any(d != -1 and s != d for s, d in zip(shape, static)):
                return False
            if name in e._profile:
                mn, _, mx = e._profile[name]
                if any(s < a or s > b for s, a, b in zip(shape, mn, mx)):
                    return False
            elif -1 in static:
                return False
            self._shapes[name] = shape
            return True

        def _input_shapes(self):
            e = self.engine
            out = {}
            for name, mode, static, _ in e._io:
                if mode == TensorIOMode.INPUT:
                    out[name] = self._shapes.get(name, static if -1 not in static else None)
            return out

        def get_tensor_shape(self, name):
            e = self.engine
            mode = e.get_tensor_mode(name)
            ins = self._input_shapes()
            if mode == TensorIOMode.INPUT:
                return ins[name] if ins[name] is not None else e.get_tensor_shape(name)
            if any(s is None for s in ins.values()):
                return e.get_tensor_shape(name)
            key = tuple(sorted(ins.items()))
            if key not in self._out_shape_cache:  # shape inference by running once on zeros
                feeds = {n: np.zeros(s, nptype(e.get_tensor_dtype(n))) for n, s in ins.items()}
                outs = e._sess.run(None, feeds)
                self._out_shape_cache[key] = {o.name: tuple(v.shape) for o, v in zip(e._sess.get_outputs(), outs)}
            return self._out_shape_cache[key][name]

        def set_tensor_address(self, name, memory):
            if self.engine.get_tensor_mode(name) == TensorIOMode.NONE:
                return False
            self._addr[name] = int(memory)
            return True

        def get_tensor_address(self, name):
            return self._addr.get(name, 0)

        @property
        def all_input_dimensions_specified(self):
            return all(s is not None for s in self._input_shapes().values())

        def execute_async_v3(self, stream_handle):
            e = self.engine
            ins = self._input_shapes()
            if any(s is None for s in ins.values()):
                return False
            if any(self._addr.get(name, 0) == 0 for name, *_ in e._io):
                return False
            feeds = {n: _read_ptr(self._addr[n], s, nptype(e.get_tensor_dtype(n))) for n, s in ins.items()}
            outs = e._sess.run(None, feeds)
            for o, v in zip(e._sess.get_outputs(), outs):
                _write_ptr(self._addr[o.name], v.astype(nptype(e.get_tensor_dtype(o.name)), copy=False))
            state["executions"] += 1
            return True

        if major < 10:
            def execute_async_v2(self, bindings, stream_handle):
                raise NotImplementedError("binding-index execution is not modelled by this fake")

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine):
            data = bytes(serialized_engine)
            try:
                if not data.startswith(MAGIC):
                    raise ValueError("bad magic")
                (n,) = struct.unpack("<I", data[8:12])
                meta = json.loads(data[12:12 + n].decode())
                if meta["version"] != version:
                    raise ValueError(f"engine built by {meta['version']}, runtime is {version}")
                engine = ICudaEngine(meta, data[12 + n:])
            except Exception as exc:  # noqa: BLE001 - real TensorRT logs and returns None
                _log(self.logger, Severity.ERROR, f"deserialize_cuda_engine failed: {exc}")
                return None
            state["deserialized"] += 1
            return engine

    for name, obj in dict(DataType=DataType, TensorIOMode=TensorIOMode, nptype=nptype,
                          NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag, BuilderFlag=BuilderFlag,
                          MemoryPoolType=MemoryPoolType, ILogger=ILogger, Logger=Logger, IHostMemory=IHostMemory,
                          ITensor=ITensor, INetworkDefinition=INetworkDefinition, ErrorCode=ErrorCode,
                          ParserError=ParserError, OnnxParser=OnnxParser, IOptimizationProfile=IOptimizationProfile,
                          ITimingCache=ITimingCache, IBuilderConfig=IBuilderConfig, Builder=Builder,
                          ICudaEngine=ICudaEngine, IExecutionContext=IExecutionContext, Runtime=Runtime).items():
        setattr(trt, name, obj)
    return trt


def make_tiny_onnx(path, kind: str = "conv", seed: int = 0, in_name: str = "x", out_name: str = "y",
                   channels=(2, 3), size: int = 8, dynamic_batch: bool = True):
    """Write a tiny ONNX test graph: 'conv' (Conv3x3+Relu), 'qdq' (the same, explicitly quantised),
    'unsupported' (contains NonZero, which the fake parser refuses). Returns the path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    cin, cout = channels
    w = (rng.standard_normal((cout, cin, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    batch = "N" if dynamic_batch else 1
    x = helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [batch, cin, size, size])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, cout, size, size])
    inits = [numpy_helper.from_array(b, "b")]
    nodes = []
    conv_in, w_name = in_name, "w"
    if kind == "qdq":
        w_scale = np.float32(np.abs(w).max() / 127.0)
        wq = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        inits += [numpy_helper.from_array(wq, "w_q"), numpy_helper.from_array(np.array(w_scale, np.float32), "w_s"),
                  numpy_helper.from_array(np.array(0, np.int8), "zp"),
                  numpy_helper.from_array(np.array(4.0 / 127.0, np.float32), "x_s")]
        nodes += [helper.make_node("QuantizeLinear", [in_name, "x_s", "zp"], ["xq"], name="q_x"),
                  helper.make_node("DequantizeLinear", ["xq", "x_s", "zp"], ["xdq"], name="dq_x"),
                  helper.make_node("DequantizeLinear", ["w_q", "w_s", "zp"], ["w_dq"], name="dq_w")]
        conv_in, w_name = "xdq", "w_dq"
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes += [helper.make_node("Conv", [conv_in, w_name, "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
              helper.make_node("Relu", ["c"], [out_name], name="relu")]
    if kind == "unsupported":
        nodes.append(helper.make_node("NonZero", [out_name], ["nz"], name="find_nonzero"))
        y_nz = helper.make_tensor_value_info("nz", TensorProto.INT64, [2, None])
        graph = helper.make_graph(nodes, "tiny", [x], [y, y_nz], inits)
    else:
        graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
