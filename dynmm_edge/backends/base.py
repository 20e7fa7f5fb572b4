"""The backend seam: a Backend opens one Runner per branch; tensors travel by name.

Like Polygraphy's runners, a Runner is a context manager (activate / infer / deactivate) and
subclasses fill only the *_impl hooks. Arrays are backend-native (numpy for ONNX Runtime CPU,
torch tensors for PyTorch, device buffers for TensorRT), so branches chain without host copies;
Backend.download() is the one place data comes back to the host.
"""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from dynmm_edge.errors import BackendError

DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8, "bool": np.bool_}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (-1 for a dynamic dimension) and dtype name of one branch input or output."""
    name: str
    shape: Tuple[int, ...]
    dtype: str = "float32"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorSpec":
        return cls(str(d["name"]), tuple(int(s) for s in d["shape"]), str(d.get("dtype", "float32")))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def concrete(self, batch: int = 1) -> Tuple[int, ...]:
        """The shape with dynamic dimensions (-1) set to `batch`."""
        return tuple(batch if s < 0 else s for s in self.shape)

    @property
    def np_dtype(self):
        return DTYPES[self.dtype]


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
    """Creates runners for manifest branches and moves arrays between host and device."""
    name = "base"

    def open(self, branch, model_dir) -> Runner:
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

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.name}
