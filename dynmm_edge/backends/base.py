"""The backend seam: a Backend opens one Runner per branch; tensors travel by name.

Like Polygraphy's runners, a Runner is a context manager (activate / infer / deactivate) and
subclasses fill only the *_impl hooks. Arrays are backend-native (numpy for ONNX Runtime CPU,
torch tensors for PyTorch, device buffers for TensorRT), so branches chain without host copies;
Backend.download() is the one place data comes back to the host.
"""
from typing import Any, Dict, Mapping

import numpy as np

from dynmm_edge.errors import BackendError
from dynmm_edge.tensors import DTYPES, TensorSpec  # noqa: F401 - TensorSpec re-exported for backends


class Runner:
    """Runs one branch. Use as a context manager; infer() takes and returns name -> array dicts."""

    def __init__(self, name: str, inputs: Mapping[str, TensorSpec], outputs: Mapping[str, TensorSpec]):
        self.name = name
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.is_active = False

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()
        return False

    def activate(self) -> None:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def infer(self, feeds: Mapping[str, Any]) -> Dict[str, Any]:
        if not self.is_active:
            raise BackendError(f"runner for branch '{self.name}' is not active: use it as a context manager")
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise BackendError(f"branch '{self.name}': missing input tensor(s) {missing}; got {sorted(feeds)}")
        return self.infer_impl({n: feeds[n] for n in self.inputs})

    # hooks -----------------------------------------------------------------------------------
    def activate_impl(self) -> None:  # pragma: no cover - trivial default
        pass

    def deactivate_impl(self) -> None:  # pragma: no cover - trivial default
        pass

    def infer_impl(self, feeds: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError


class Backend:
    """Creates runners for manifest branches and moves arrays between host and device.

    A Backend owns device resources (a CUDA stream, loaded modules): it is a context manager, and
    the Session that uses it closes it. close() is idempotent.
    """
    name = "base"

    def open(self, branch, manifest, precision: str) -> Runner:
        """A runner for `branch` of `manifest` (already validated, hashes checked) at `precision`."""
        raise NotImplementedError

    def upload(self, array: np.ndarray) -> Any:
        return array

    def download(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape, dtype: str = "float32") -> Any:
        return np.zeros(shape, DTYPES[dtype])

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.name}
