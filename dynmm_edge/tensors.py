"""Tensor specs and precision names shared by the manifest, the backends and export.

They sit below both so the manifest (the export <-> runtime contract) and every backend can name
tensors without importing each other.
"""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

import numpy as np

DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8, "bool": np.bool_}
PRECISIONS = ("fp32", "fp16", "int8")  # the one list: manifest variants, precision specs, engine builds


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
