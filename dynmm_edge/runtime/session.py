"""Session: executes a model folder's branch graph for one frame, running only the chosen path.

preprocess -> (stem) -> gate -> policy -> depth segments of that path -> trunk -> Result.
Skipped depth features are zero buffers bound once at start-up, and each path's depth_present
vector is uploaded once, so a skipped segment costs nothing per frame.
"""
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from dynmm_edge.errors import DynMMError, ManifestError
from dynmm_edge.manifest import PRECISIONS, Manifest, load_manifest, parse_precision_spec, sha256_file
from dynmm_edge.runtime.policy import GatePolicy, make_policy
from dynmm_edge.types import Frame, Result

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_MODEL = ASSETS / "demo_model"  # trained by scripts/train_demo.sh; model.pt is its checkpoint


def parse_precision(spec: Union[str, Mapping[str, str], None], manifest: Manifest) -> Dict[str, str]:
    """Branch -> precision: the manifest's choice, overridden by a spec such as 'fp16' (every branch)
    or 'gate=fp16,depth=int8,trunk=fp16' (kinds, branch names or 'all'; later entries win)."""
    out = {b.name: b.precision for b in manifest.branches}
    if isinstance(spec, Mapping):
        spec = ",".join(f"{k}={v}" for k, v in spec.items())
    if spec and "=" not in spec and spec.strip().lower() in PRECISIONS:
        spec = f"all={spec.strip()}"
    out.update(parse_precision_spec(spec, manifest))
    return out


def make_backend(name: str = "ort", **opts):
    """Backend registry: 'ort', 'torch', 'trt'."""
    if name == "ort":
        from dynmm_edge.backends.ort import OrtBackend
        return OrtBackend(**opts)
    if name == "torch":
        from dynmm_edge.backends.torch_backend import TorchBackend
        return TorchBackend(**opts)
    if name == "trt":
        from dynmm_edge.backends.tensorrt import TensorRTBackend
        return TensorRTBackend(**opts)
    raise DynMMError(f"unknown backend {name!r}; choose ort, torch or trt")


class Session:
    """Runs a model folder on one backend. Use as a context manager or call close()."""

    def __init__(self, manifest: Manifest, backend, *, precision=None,
                 policy: Union[str, GatePolicy, None] = None, sync_timing: bool = True):
        from dynmm_edge.data.preprocess import PreprocessConfig
        self.manifest, self.backend, self.sync_timing = manifest, backend, sync_timing
        self.precisions = parse_precision(precision, manifest)
        self.preprocess_cfg = PreprocessConfig.from_dict(manifest.preprocess)
        full = max(manifest.depth_macs(manifest.full_path), 1.0)
        self.depth_cost = [manifest.depth_macs(p) / full for p in manifest.path_values]
        self.policy = self._bind_policy(policy)
        self.runners = {}
        try:
            for b in manifest.branches:
                r = backend.open(b, manifest.folder, self.precisions[b.name])
                r.activate()
                self.runners[b.name] = r
            gate = manifest.gate
            self.gate_branch = gate["branch"]
            self.gate_output = gate.get("output", "gate_logits")
            trunk_inputs = {t.name: t for b in manifest.branches for t in b.inputs}
            self.zero_feeds = {name: backend.zeros(trunk_inputs[name].concrete(1), trunk_inputs[name].dtype)
                               for name in gate.get("zero_inputs", {})}
            self.present_name = gate.get("present_input")
            n_present = trunk_inputs[self.present_name].shape[0] if self.present_name else 0
            self.present = {}
            self.zero_for_path = {}
            for k, seq in manifest.paths.items():
                produced = {t.name for s in seq for t in manifest.branch(s).outputs}
                vec = np.zeros(n_present, np.float32)
                for name, idx in gate.get("zero_inputs", {}).items():
                    if name in produced:
                        vec[idx] = 1.0
                self.present[k] = backend.upload(vec)
                self.zero_for_path[k] = {n: z for n, z in self.zero_feeds.items() if n not in produced}
            # the branches every path runs up to and including the gate (raw: [gate]; stem: [stem, gate])
            first = manifest.paths[manifest.full_path]
            self.pre_gate = first[:first.index(self.gate_branch) + 1]
        except BaseException:
            self.close()
            raise
        self.calls = Counter()
        self.frames = 0

    def _bind_policy(self, policy):
        if policy is None:
            policy = self.manifest.gate.get("default_policy", "argmax")
        if isinstance(policy, str):
            policy = make_policy(policy)
        policy = policy.bind(self.manifest.path_values, self.depth_cost)
        self.region = None
        if getattr(policy, "needs_region_gate", None) is not None:  # a region policy
            from dynmm_edge.manifest import region_spec
            spec = region_spec(self.manifest)
            if spec is None:
                raise DynMMError(f"policy {policy.name}: model '{self.manifest.name}' has no region gate (no 'regions' "
                                 f"in its manifest); train one with `dynmm-edge train --stage region --init-from "
                                 f"CKPT` and export it")
            self.region_spec = spec
        return policy

    def set_policy(self, policy) -> None:
        self.policy = self._bind_policy(policy)

    # ------------------------------------------------------------------------------------------
    def _run(self, name, feeds, times):
        t0 = time.perf_counter()
        out = self.runners[name].infer(feeds)
        if self.sync_timing:
            self.backend.synchronize()
        times[name] = (time.perf_counter() - t0) * 1e3
        self.calls[name] += 1
        return out

    def run_tensors(self, rgb: np.ndarray, depth: np.ndarray, path: Optional[int] = None,
                    return_logits: bool = False) -> Tuple[Dict[str, np.ndarray], int, Dict[str, float], Any]:
        """Run preprocessed inputs; path None lets the policy decide (fixed policies skip the gate)."""
        times: Dict[str, float] = {}
        t_start = time.perf_counter()
        feeds: Dict[str, Any] = {"rgb": self.backend.upload(rgb), "depth": self.backend.upload(depth)}
        gate_logits = None
        ran = []
        if path is None and not self.policy.needs_gate:
            path = self.policy.decide(None)
        if path is None:
            for name in self.pre_gate:
                feeds.update(self._run(name, feeds, times))
                ran.append(name)
            t0 = time.perf_counter()
            gate_logits = self.backend.download(feeds[self.gate_output]).reshape(-1)
            path = self.policy.decide(gate_logits)
            times["policy"] = (time.perf_counter() - t0) * 1e3
        elif path not in self.manifest.paths:
            raise DynMMError(f"path {path} is not one of this model's paths {self.manifest.path_values}")
        feeds.update(self.zero_for_path[path])
        if self.present_name:
            feeds[self.present_name] = self.present[path]
        for name in self.manifest.paths[path]:
            if name in ran or (name == self.gate_branch and gate_logits is None):
                continue
            feeds.update(self._run(name, feeds, times))
            ran.append(name)
        outputs = {"labels": self.backend.download(feeds["labels"])}
        if return_logits:
            outputs["logits"] = self.backend.download(feeds["logits"])
        times["infer_total"] = (time.perf_counter() - t_start) * 1e3
        return outputs, path, times, (ran, gate_logits)

    def infer(self, frame: Frame, path: Optional[int] = None, return_logits: bool = False) -> Result:
        from dynmm_edge.data.preprocess import preprocess
        t0 = time.perf_counter()
        rgb, depth = preprocess(frame.rgb, frame.depth, frame.depth_scale_m, self.preprocess_cfg,
                                frame_id=frame.frame_id)
        t_pre = (time.perf_counter() - t0) * 1e3
        if path is None and getattr(self.policy, "needs_region_gate", None) is not None:
            return self._infer_region(frame, rgb, depth, t0, t_pre, return_logits)
        outputs, path, times, (ran, gate_logits) = self.run_tensors(rgb, depth, path, return_logits)
        times["preprocess"] = t_pre
        times["total"] = (time.perf_counter() - t0) * 1e3
        branch_sum = sum(times[n] for n in ran)
        times["dispatch"] = max(times["infer_total"] - branch_sum - times.get("policy", 0.0), 0.0)
        probs = None
        if gate_logits is not None:
            e = np.exp(gate_logits - gate_logits.max())
            probs = e / e.sum()
        result = Result(frame_id=frame.frame_id, labels=outputs["labels"][0], path=int(path), times_ms=times,
                        branches_run=tuple(ran), gate_probs=probs,
                        depth_macs=self.manifest.depth_macs(path),
                        depth_fraction=self.depth_cost[self.manifest.path_values.index(path)], frame=frame)
        if return_logits:
            result.logits = outputs["logits"]
        self.frames += 1
        self.policy.observe(result)
        return result

    __call__ = infer

    def run_region(self, rgb: np.ndarray, depth: np.ndarray, mask=None):
        """Region mode on preprocessed inputs: (outputs, times, branches run, tile mask); mask None = policy."""
        if getattr(self, "region", None) is None:
            from dynmm_edge.manifest import region_spec
            from dynmm_edge.runtime.region import RegionExecutor
            spec = region_spec(self.manifest)
            if spec is None:
                raise DynMMError(f"model '{self.manifest.name}' has no region gate (no 'regions' in its manifest)")
            self.region = RegionExecutor(self, spec)
        return self.region.run(self.policy, rgb, depth, mask)

    def _infer_region(self, frame, rgb, depth, t0, t_pre, return_logits) -> Result:
        outputs, times, ran, mask = self.run_region(rgb, depth)
        times["preprocess"] = t_pre
        times["total"] = (time.perf_counter() - t0) * 1e3
        spec = self.region_spec
        macs = spec.depth_macs(int(mask.sum()))
        result = Result(frame_id=frame.frame_id, labels=outputs["labels"][0], path=self.manifest.full_path,
                        times_ms=times, branches_run=tuple(ran), depth_macs=macs,
                        depth_fraction=macs / max(float(spec.macs["full_depth_macs"]), 1.0), frame=frame,
                        tile_mask=mask, tile_size=spec.tile)
        if return_logits:
            result.logits = outputs["logits"]
        self.frames += 1
        self.policy.observe(result)
        return result

    def close(self) -> None:
        for r in getattr(self, "runners", {}).values():
            r.deactivate()
        self.runners = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self) -> Dict[str, Any]:
        return {"model": self.manifest.name, "folder": str(self.manifest.folder), "policy": self.policy.describe(),
                "precision": self.precisions, **self.backend.describe()}


# ---------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("DYNMM_EDGE_CACHE", Path.home() / ".cache" / "dynmm_edge"))


def resolve_model(model: Union[str, Path], progress=None) -> Path:
    """A model folder, a checkpoint file, a preset name or 'demo' -> a model folder.

    Checkpoints and presets are exported on the fly into a cache keyed by their hash (needs torch).
    """
    model = str(model)
    if model == "demo":
        if not (DEMO_MODEL / "manifest.json").is_file():
            raise DynMMError(f"the demo model is not shipped in this installation ({DEMO_MODEL})")
        return DEMO_MODEL
    p = Path(model)
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise ManifestError(f"{p} is a folder without manifest.json: export a model into it with `dynmm-edge export`")
        return p
    if p.is_file():
        key = sha256_file(p)[:16]
    else:
        from dynmm_edge.model.presets import PRESETS
        if model not in PRESETS:
            raise DynMMError(f"model {model!r} is not a model folder, a checkpoint file, 'demo' or a preset "
                             f"({', '.join(PRESETS)})")
        key = f"preset-{model}"
    out = cache_dir() / "models" / key
    if not (out / "manifest.json").is_file():
        from dynmm_edge.export.exporter import export_model
        export_model(model, out, force=True, progress=progress)
    return out


def open_session(model="demo", backend="ort", *, precision=None, policy=None, backend_opts=None,
                 sync_timing: bool = True, progress=None) -> Session:
    folder = resolve_model(model, progress=progress)
    manifest = load_manifest(folder)
    be = make_backend(backend, **(backend_opts or {})) if isinstance(backend, str) else backend
    return Session(manifest, be, precision=precision, policy=policy, sync_timing=sync_timing)
