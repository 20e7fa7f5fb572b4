"""PyTorch backend: runs the branch modules of the checkpoint stored in the model folder.

CPU or CUDA; FP16 on CUDA; optional CUDA-graph capture per branch (static shapes, inputs copied
into captured buffers) which removes kernel-launch overhead for small branches.
"""
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from dynmm_edge._lazy import require
from dynmm_edge.backends.base import Backend, Runner
from dynmm_edge.errors import BackendError, ManifestError


class TorchRunner(Runner):
    def __init__(self, branch, module, device, dtype, cuda_graph: bool):
        super().__init__(branch.name, {t.name: t for t in branch.inputs}, {t.name: t for t in branch.outputs})
        self.module, self.device, self.dtype, self.cuda_graph = module, device, dtype, cuda_graph
        self._order = [t.name for t in branch.inputs]
        self._out_order = [t.name for t in branch.outputs]
        self._graph = None

    def _call(self, args):
        out = self.module(*args)
        return out if isinstance(out, tuple) else (out,)

    def _cast(self, x):
        return x.to(self.dtype) if x.is_floating_point() else x

    def activate_impl(self) -> None:
        torch = require("torch")
        if not self.cuda_graph:
            return
        # capture once with static buffers; later calls copy inputs in and replay
        self._static_in = [torch.zeros(t.concrete(1), device=self.device, dtype=self.dtype)
                           for t in self.inputs.values()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(3):
                self._call(self._static_in)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.no_grad():
            self._static_out = self._call(self._static_in)

    def deactivate_impl(self) -> None:
        self._graph = None

    def infer_impl(self, feeds: Dict[str, Any]) -> Dict[str, Any]:
        torch = require("torch")
        args = [self._cast(feeds[n]) for n in self._order]
        if self._graph is not None:
            for buf, a in zip(self._static_in, args):
                buf.copy_(a)
            self._graph.replay()
            outs = self._static_out
        else:
            with torch.no_grad():
                outs = self._call(args)
        return dict(zip(self._out_order, outs))


class TorchBackend(Backend):
    """Branch modules rebuilt from the folder's checkpoint; arrays are torch tensors on `device`."""
    name = "torch"
    tiles_on_device = True  # region mode gathers/scatters tiles on these tensors (no host round trip)

    def __init__(self, device: str = "cpu", fp16: bool = False, cuda_graphs: bool = False,
                 threads: Optional[int] = None):
        torch = require("torch", "the PyTorch backend")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("PyTorch backend: CUDA requested but torch.cuda.is_available() is False")
        if (fp16 or cuda_graphs) and not device.startswith("cuda"):
            raise BackendError("PyTorch backend: fp16 and CUDA graphs need device='cuda'")
        if threads:
            torch.set_num_threads(int(threads))
        self.torch, self.device, self.fp16, self.cuda_graphs = torch, torch.device(device), fp16, cuda_graphs
        self.dtype = torch.float16 if fp16 else torch.float32
        self._modules = {}

    def _branch_modules(self, manifest):
        """Branch modules cut from the checkpoint the manifest names, loaded once per model folder."""
        key = str(Path(manifest.folder).resolve())
        if key not in self._modules:
            from dynmm_edge.manifest import safe_join
            from dynmm_edge.model.checkpoints import load_checkpoint
            from dynmm_edge.model.split import split_model
            ck = manifest.extra.get("checkpoint")
            if not ck:
                raise ManifestError(f"{manifest.folder}: manifest has no 'checkpoint' entry; the PyTorch backend "
                                    f"needs one")
            path = safe_join(Path(manifest.folder), ck["file"], "checkpoint")
            # load_manifest verified its sha256 when present; an ONNX-only folder may lack it
            if not path.is_file():
                raise ManifestError(f"{manifest.folder}: checkpoint {ck['file']} is missing; the PyTorch backend "
                                    f"needs it")
            net, _ = load_checkpoint(path)
            net = net.eval().to(self.device, self.dtype)
            branches, _, _ = split_model(net)
            self._modules[key] = {b.name: b.module for b in branches}
            if getattr(net, "region", None) is not None:  # region branches (docs/REGIONS.md)
                from dynmm_edge.model.region_split import region_branch_defs
                self._modules[key].update({d[0]: d[1].eval() for d in region_branch_defs(net)})
        return self._modules[key]

    def open(self, branch, manifest, precision: str) -> TorchRunner:
        modules = self._branch_modules(manifest)
        if branch.name not in modules:
            raise BackendError(f"PyTorch backend: the checkpoint has no branch '{branch.name}'")
        return TorchRunner(branch, modules[branch.name], self.device, self.dtype, self.cuda_graphs)

    def upload(self, array: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)
        return t.to(self.dtype) if t.is_floating_point() else t

    def download(self, x) -> np.ndarray:
        if x.is_floating_point():
            x = x.float()
        return x.cpu().numpy()

    def zeros(self, shape, dtype: str = "float32"):
        dt = self.dtype if dtype.startswith("float") else getattr(self.torch, dtype)
        return self.torch.zeros(tuple(shape), device=self.device, dtype=dt)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def close(self) -> None:
        """Drop the loaded branch modules (and with them their device memory)."""
        self._modules.clear()

    def describe(self) -> Dict[str, Any]:
        d = {"backend": self.name, "torch": self.torch.__version__, "device": str(self.device),
             "fp16": self.fp16, "cuda_graphs": self.cuda_graphs}
        if self.device.type == "cuda":
            d["gpu"] = self.torch.cuda.get_device_name(self.device)
        return d
