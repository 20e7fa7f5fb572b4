"""dynmm_edge: dynamic multimodal fusion (DynMM) for RGB-D segmentation on edge GPUs.

The runtime imports with numpy alone; torch, onnxruntime, TensorRT, pyrealsense2 and OpenCV are
imported lazily by the pieces that need them.
"""
from dynmm_edge._version import __version__  # noqa: F401

from dynmm_edge.errors import (  # noqa: F401
    DynMMError, ManifestError, DataError, MissingDependency, BackendError, CheckpointError,
)
from dynmm_edge.types import Frame, Result  # noqa: F401


def load(model="demo", backend="ort", **kwargs):
    """Open a model (folder, checkpoint file or 'demo') as a runtime Session."""
    from dynmm_edge.models import open_session
    return open_session(model, backend=backend, **kwargs)


def open_source(uri, **kwargs):
    """Open a FrameSource from a URI (realsense://, file.db3, a directory, synthetic://)."""
    from dynmm_edge.io.sources import open_source as _open
    return _open(uri, **kwargs)
