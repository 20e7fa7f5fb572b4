"""Session: executes a model folder's branch graph for one frame, running only the chosen path.

preprocess -> (stem) -> gate -> policy -> depth segments of that path -> trunk -> Result.
Skipped depth features are zero buffers bound once at start-up, and each path's depth_present
vector is uploaded once, so a skipped segment costs nothing per frame. What each path runs is the
ExecutionPlan (runtime/plan.py), decided from the manifest alone. The Session owns its backend:
close() deactivates the runners and closes the backend. Model resolution (folder / checkpoint /
preset / demo) is dynmm_edge.models, above the runtime and export.
"""
import time
from collections import Counter
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from dynmm_edge.errors import DynMMError
from dynmm_edge.manifest import Manifest, parse_precision
from dynmm_edge.runtime.plan import ExecutionPlan
from dynmm_edge.runtime.policy import GatePolicy, is_region_policy, make_policy
from dynmm_edge.types import Frame, Result


class Session:
    """Runs a model folder on one backend, which it then owns. Use as a context manager or call close().

    labels_at: 'frame' (default) returns Result.labels at the frame's resolution, 'model' at the
    model's input size. A frame without depth (depth=None) runs the cheapest path (RGB-only).
    """

    labels_at = "frame"

    def __init__(self, manifest: Manifest, backend, *, precision=None,
                 policy: Union[str, GatePolicy, None] = None, sync_timing: bool = True):
        from dynmm_edge.data.preprocess import PreprocessConfig
        self.manifest, self.backend, self.sync_timing = manifest, backend, sync_timing
        self.runners, self.region = {}, None
        try:
            self.precisions = parse_precision(precision, manifest)
            self.preprocess_cfg = PreprocessConfig.from_dict(manifest.preprocess)
            self.plan = plan = ExecutionPlan.from_manifest(manifest)
            self.depth_cost = [plan.paths[k].depth_fraction for k in manifest.path_values]
            self.policy = self._bind_policy(policy)
            for b in manifest.branches:
                r = backend.open(b, manifest, self.precisions[b.name])
                r.activate()
                self.runners[b.name] = r
            self.gate_branch, self.gate_output = plan.gate_branch, plan.gate_output
            self.present_name, self.pre_gate = plan.present_input, list(plan.pre_gate)
            self.zero_feeds = {n: backend.zeros(spec.concrete(1), spec.dtype) for n, spec in plan.zero_specs.items()}
            self.present = {k: backend.upload(p.present_vector()) for k, p in plan.paths.items()}
            self.zero_for_path = {k: {n: self.zero_feeds[n] for n in p.zero_inputs} for k, p in plan.paths.items()}
            if plan.region is not None:  # region mode sits beside the gate paths (docs/REGIONS.md)
                from dynmm_edge.runtime.region import RegionExecutor
                self.region = RegionExecutor(self, plan.region)
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
        if is_region_policy(policy) and self.plan.region is None:
            raise DynMMError(f"policy {policy.name}: model '{self.manifest.name}' has no region gate (no 'regions' "
                             f"in its manifest); train one with `dynmm-edge train --stage region --init-from "
                             f"CKPT` and export it")
        return policy

    def set_policy(self, policy) -> None:
        self.policy = self._bind_policy(policy)
        if self.region is not None:
            self.region.reset()  # reused tiles belong to the previous policy's decisions

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
                    return_logits: bool = False, uploaded: Optional[Dict[str, Any]] = None
                    ) -> Tuple[Dict[str, np.ndarray], int, Dict[str, float], Any]:
        """Run preprocessed inputs; path None lets the policy decide (fixed policies skip the gate).
        `uploaded` ({'rgb', 'depth'} already on the backend) saves uploading them again."""
        times: Dict[str, float] = {}
        t_start = time.perf_counter()
        feeds: Dict[str, Any] = (dict(uploaded) if uploaded is not None else
                                 {"rgb": self.backend.upload(rgb), "depth": self.backend.upload(depth)})
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
        from dynmm_edge.runtime.postprocess import labels_for
        if frame.depth is None and path is None:  # no depth stream: never run depth segments on nothing
            path = min(self.manifest.path_values)
        t0 = time.perf_counter()
        rgb, depth = preprocess(frame.rgb, frame.depth, frame.depth_scale_m, self.preprocess_cfg,
                                frame_id=frame.frame_id)
        t_pre = (time.perf_counter() - t0) * 1e3
        if path is None and is_region_policy(self.policy):
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
        result = Result(frame_id=frame.frame_id, labels=labels_for(outputs["labels"][0], frame, self.labels_at),
                        path=int(path), times_ms=times,
                        branches_run=tuple(ran), gate_probs=probs,
                        depth_macs=self.manifest.depth_macs(path),
                        depth_fraction=self.depth_cost[self.manifest.path_values.index(path)], frame=frame)
        if return_logits:
            result.logits = outputs["logits"]
        self.frames += 1
        self.policy.observe(result)
        return result

    __call__ = infer

    def run_region(self, rgb: np.ndarray, depth: np.ndarray, mask=None, return_logits: bool = True):
        """Region mode on preprocessed inputs: (outputs, times, branches run, tile mask); mask None = policy."""
        if self.region is None:
            raise DynMMError(f"model '{self.manifest.name}' has no region gate (no 'regions' in its manifest)")
        return self.region.run(self.policy, rgb, depth, mask, return_logits)

    def _infer_region(self, frame, rgb, depth, t0, t_pre, return_logits) -> Result:
        """A region-mode Result: labels as labels_at says; tile_mask [rows, cols] spans the whole frame at
        any label resolution (tile r, c covers the same fraction of the camera image as of the input)."""
        from dynmm_edge.runtime.postprocess import labels_for
        outputs, times, ran, mask = self.run_region(rgb, depth, return_logits=return_logits)
        times["preprocess"] = t_pre
        times["total"] = (time.perf_counter() - t0) * 1e3
        spec = self.plan.region.spec
        macs = spec.depth_macs(int(mask.sum()))
        result = Result(frame_id=frame.frame_id, labels=labels_for(outputs["labels"][0], frame, self.labels_at),
                        path=self.manifest.full_path,
                        times_ms=times, branches_run=tuple(ran), depth_macs=macs,
                        depth_fraction=macs / max(float(spec.macs["full_depth_macs"]), 1.0), frame=frame,
                        tile_mask=mask, tile_size=spec.tile,
                        tile_reused=self.region.last_reused if getattr(self.policy, "reuse", 0.0) else None)
        if return_logits:
            result.logits = outputs["logits"]
        self.frames += 1
        self.policy.observe(result)
        return result

    def close(self) -> None:
        """Deactivate every runner, drop the bound buffers, then close the backend (idempotent)."""
        try:
            for r in getattr(self, "runners", {}).values():
                r.deactivate()
        finally:
            self.runners, self.zero_feeds, self.present, self.zero_for_path = {}, {}, {}, {}
            self.region = None
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self) -> Dict[str, Any]:
        return {"model": self.manifest.name, "folder": str(self.manifest.folder), "policy": self.policy.describe(),
                "precision": self.precisions, **self.backend.describe()}
