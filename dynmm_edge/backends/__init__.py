"""Backends: ONNX Runtime, PyTorch and TensorRT behind one seam (base.py) and one registry."""
from dynmm_edge.backends.registry import BACKENDS, make_backend  # noqa: F401
