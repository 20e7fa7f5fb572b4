"""ONNX Runtime backend: CPU by default, CUDA / TensorRT execution providers when present."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.backends.base import Backend, Runner
from dynmm_edge.errors import BackendError


class OrtRunner(Runner):
    def __init__(self, branch, path: Path, providers: Sequence[str], threads: Optional[int]):
        super().__init__(branch.name, {t.name: t for t in branch.inputs}, {t.name: t for t in branch.outputs})
        self.path, self.providers, self.threads = Path(path), list(providers), threads
        self.branch = branch
        self.session = None

    def activate_impl(self) -> None:
        ort = require("onnxruntime", "the ONNX Runtime backend")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=self.providers)
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise BackendError(f"branch '{self.name}': ONNX Runtime cannot load {self.path}: {exc}") from None
        names = {i.name for i in self.session.get_inputs()}
        if names != set(self.inputs):
            raise BackendError(f"branch '{self.name}': {self.path.name} has inputs {sorted(names)}, "
                               f"manifest says {sorted(self.inputs)}")
        from dynmm_edge.manifest import check_io_shapes
        problems = check_io_shapes(self.branch, {i.name: i.shape for i in self.session.get_inputs()})
        if problems:  # fail at load, not on the first frame
            raise BackendError(f"branch '{self.name}': {self.path.name}: " + "; ".join(problems))
        self._out_names = [o.name for o in self.session.get_outputs()]

    def deactivate_impl(self) -> None:
        self.session = None

    def infer_impl(self, feeds: Dict[str, Any]) -> Dict[str, Any]:
        outs = self.session.run(self._out_names, feeds)
        return dict(zip(self._out_names, outs))


class OrtBackend(Backend):
    """Runs branch ONNX files; arrays are host numpy arrays (CPU EP)."""
    name = "ort"

    def __init__(self, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
        ort = require("onnxruntime", "the ONNX Runtime backend")
        available = ort.get_available_providers()
        if providers is None:
            providers = ["CPUExecutionProvider"]
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendError(f"ONNX Runtime execution provider(s) {missing} not available here; "
                               f"available: {available}")
        self.providers, self.threads, self.version = list(providers), threads, ort.__version__

    def open(self, branch, manifest, precision: str) -> OrtRunner:
        return OrtRunner(branch, manifest.file_path(branch, precision), self.providers, self.threads)

    def upload(self, array: np.ndarray):
        return np.ascontiguousarray(array)

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.name, "onnxruntime": self.version, "providers": self.providers,
                "threads": self.threads}
