"""dynmm_edge: dynamic multimodal fusion (DynMM) for RGB-D segmentation on edge GPUs.

The runtime imports with numpy alone; torch, onnxruntime, TensorRT, pyrealsense2 and OpenCV are
imported lazily by the pieces that need them.
"""
from dynmm_edge._version import __version__  # noqa: F401

from dynmm_edge.errors import (  # noqa: F401
    DynMMError, ManifestError, DataError, MissingDependency, BackendError, CheckpointError,
)
from dynmm_edge.types import Frame, Result  # noqa: F401


LOAD_OPTIONS = ("precision", "policy", "threads", "device", "fp16", "cuda_graphs", "labels_at", "sync_timing",
                "progress")
_BACKEND_OPTIONS = {"threads": ("ort", "torch"), "device": ("torch",), "fp16": ("torch",), "cuda_graphs": ("torch",)}


def load(model="demo", backend="ort", **options):
    """Open a model as a runtime Session (use it as a context manager).

    model: a model folder, a checkpoint file (ours, ESANet, DynMM; exported into a cache on first
    use, needs torch), a preset name or "demo" (the shipped demo model).
    backend: "ort" (ONNX Runtime, default), "torch" or "trt" (TensorRT).
    Keyword options:
      precision   "fp32" | "fp16" | "int8" or per kind/branch, e.g. "gate=fp16,depth=int8" (default: the
                  model folder's)
      policy      gate policy: "argmax", "bias:B", "hysteresis:M", "fixed:full|rgb|N", "budget:F",
                  "budget-ms:MS" (default: the model's, argmax for a trained gate); for a model with a
                  region gate also "region:T", "region-share:F", "region-entropy:F", each with an optional
                  ",reuse=TAU" (docs/REGIONS.md)
      threads     CPU threads (ort, torch)
      device      torch device, e.g. "cuda" (torch; default "cpu")
      fp16        run in half precision (torch on CUDA)
      cuda_graphs capture each branch as a CUDA graph (torch on CUDA)
      labels_at   "frame" (default: Result.labels at the camera frame's resolution, nearest upsampling)
                  or "model" (the model's input size)
      sync_timing synchronise the device after each branch so times_ms are per branch (default True)
      progress    callable(str) for messages while a checkpoint is exported
    An unknown option raises DynMMError naming the known ones.
    """
    unknown = sorted(set(options) - set(LOAD_OPTIONS))
    if unknown:
        raise DynMMError(f"dynmm_edge.load: unknown option(s) {', '.join(unknown)}; known: {', '.join(LOAD_OPTIONS)}")
    backend_opts = {}
    for key, backends in _BACKEND_OPTIONS.items():
        value = options.pop(key, None)
        if value in (None, False):
            continue
        if backend not in backends:
            raise DynMMError(f"dynmm_edge.load: {key}= applies to backend {' or '.join(backends)}, not {backend!r}")
        backend_opts[key] = value
    labels_at = options.pop("labels_at", "frame")
    from dynmm_edge.runtime.postprocess import LABELS_AT
    if labels_at not in LABELS_AT:
        raise DynMMError(f"dynmm_edge.load: labels_at={labels_at!r}; choose 'frame' or 'model'")
    from dynmm_edge.models import open_session
    session = open_session(model, backend=backend, backend_opts=backend_opts, **options)
    session.labels_at = labels_at
    return session


def open_source(uri, **kwargs):
    """Open a FrameSource from a URI (realsense://, file.db3, a directory, synthetic://)."""
    from dynmm_edge.io.sources import open_source as _open
    return _open(uri, **kwargs)
