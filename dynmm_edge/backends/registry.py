"""The one backend registry: name -> factory. Imports each backend lazily (numpy-only runtime)."""
from typing import Callable, Dict

from dynmm_edge.errors import DynMMError


def _ort(**opts):
    from dynmm_edge.backends.ort import OrtBackend
    return OrtBackend(**opts)


def _torch(**opts):
    from dynmm_edge.backends.torch_backend import TorchBackend
    return TorchBackend(**opts)


def _trt(**opts):
    from dynmm_edge.backends.tensorrt import TensorRTBackend
    return TensorRTBackend(**opts)


BACKENDS: Dict[str, Callable] = {"ort": _ort, "torch": _torch, "trt": _trt}


def make_backend(name: str = "ort", **opts):
    """Backend registry: 'ort', 'torch', 'trt'. A TensorRT backend made here builds engines only
    when given `builder=` (dynmm_edge.models.open_backend passes the exporter's)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise DynMMError(f"unknown backend {name!r}; choose {', '.join(BACKENDS)}") from None
    return factory(**opts)
