"""Region mode in the runtime: region policies and the tile execution of one frame (numpy + any backend).

Per frame: region gate (or RGB-only entropy) -> policy -> tile mask -> dense depth stem -> for each
tile stage: gather active windows (runtime.tiles), run the tile-batch engine, scatter -> region trunk
with the sparse depth maps and the mask. With halo 0 the stage outputs feed the next stage directly
(the windows are the tiles); only the trunk's inputs are scattered.

On ORT CPU the gather/scatter runs on host numpy. On GPU backends the same index arithmetic belongs
on the device (docs/REGIONS.md: one index tensor upload per frame, gather/scatter kernels or
in-engine Gather/ScatterND); the feature maps must not round-trip through the host.
"""
import time
from typing import Dict, Optional, Tuple

import numpy as np

from dynmm_edge.errors import DynMMError
from dynmm_edge.runtime.policy import GatePolicy
from dynmm_edge.tiles import TileGrid, bucket_for, gather, scatter, tile_entropy, top_share

REGION_KINDS = {"region": "gate", "region-share": "share", "region-entropy": "entropy"}


class RegionPolicy(GatePolicy):
    """region:T (learned gate, keep sigmoid > T), region-share:F (top F of tiles by the gate),
    region-entropy:F (top F by RGB-only prediction entropy; training-free, costs an RGB-only pass)."""

    def __init__(self, kind: str, value: float):
        if kind not in REGION_KINDS.values():
            raise DynMMError(f"region policy kind {kind!r} unknown")
        label = "threshold" if kind == "gate" else "tile share"
        value = float(value)
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            raise DynMMError(f"policy {self._spec(kind, value)}: {label} must be in [0, 1], got {value:g}")
        self.kind, self.value = kind, value

    @staticmethod
    def _spec(kind, value):
        prefix = {v: k for k, v in REGION_KINDS.items()}[kind]
        return f"{prefix}:{value:g}"

    @property
    def name(self):
        return self._spec(self.kind, self.value)

    @property
    def needs_gate(self) -> bool:
        return False  # the frame gate is not used in region mode

    @property
    def needs_region_gate(self) -> bool:
        return self.kind != "entropy"

    def decide(self, logits):
        return max(self.paths)

    def tiles(self, scores: np.ndarray) -> np.ndarray:
        """bool [rows, cols] mask from region-gate logits or entropy scores."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.kind == "gate":
            return 1.0 / (1.0 + np.exp(-scores)) > self.value
        return top_share(scores, self.value)


def make_region_policy(spec: str) -> RegionPolicy:
    name, _, arg = spec.strip().partition(":")
    if name not in REGION_KINDS:
        raise DynMMError(f"unknown region policy {spec!r}; use region:THRESHOLD, region-share:F or region-entropy:F")
    try:
        value = float(arg)
    except ValueError:
        raise DynMMError(f"policy {spec!r}: expected a number in [0, 1] after ':'") from None
    return RegionPolicy(REGION_KINDS[name], value)


class RegionExecutor:
    """Runs region mode for a Session (its runners, backend and timing) from the plan's RegionPlan.

    The per-stage zero features (a stage no tile ran through) are bound on the backend once, here."""

    def __init__(self, session, plan):
        self.s, self.plan, self.spec = session, plan, plan.spec
        m = session.manifest
        self.grid = TileGrid(self.spec.tile, m.height, m.width)
        self.zero_feeds = {n: session.backend.zeros(t.concrete(1), t.dtype) for n, t in plan.zero_features.items()}
        self.static_shapes = bool(getattr(session.backend, "static_shapes", False))

    def scores(self, policy: RegionPolicy, feeds, rgb, depth, times, ran) -> np.ndarray:
        s, spec = self.s, self.spec
        if policy.needs_region_gate:
            out = s._run(spec.gate_branch, {"rgb": feeds["rgb"], "depth": feeds["depth"]}, times)
            ran.append(spec.gate_branch)
            return s.backend.download(out[spec.gate_output]).reshape(self.grid.rows, self.grid.cols)
        outputs, _, t, (r, _) = s.run_tensors(rgb, depth, path=s.manifest.rgb_only_path, return_logits=True,
                                              uploaded={"rgb": feeds["rgb"], "depth": feeds["depth"]})
        times.update({f"entropy/{k}": v for k, v in t.items() if k in r})
        ran.extend(f"entropy/{n}" for n in r)
        logits = outputs["logits"][0].astype(np.float64)
        e = np.exp(logits - logits.max(axis=0, keepdims=True))
        return tile_entropy(e / e.sum(axis=0, keepdims=True), self.grid)

    def run_stages(self, d0: np.ndarray, ids: np.ndarray, times, ran) -> Dict[str, np.ndarray]:
        """Host feature maps of the stages that ran (none when no tile is active)."""
        s, g = self.s, self.grid
        feats, x, windows = {}, d0, None
        if len(ids) == 0:
            return feats
        for st in self.spec.stages:
            win = windows if (windows is not None and st.halo == 0) else gather(x, g, ids, st.in_stride, st.halo)
            n = len(win)
            if self.static_shapes:  # engines built for a few batch sizes: pad up to the bucket
                b = bucket_for(n, self.spec.buckets)
                if b > n:
                    win = np.concatenate([win, np.zeros((b - n,) + win.shape[1:], win.dtype)])
            y = s.backend.download(s._run(st.branch, {st.input: s.backend.upload(np.ascontiguousarray(win))},
                                          times)[st.output])[:n]
            ran.append(st.branch)
            x = scatter(y, g, ids, st.in_stride, st.out_stride, st.halo)
            feats[st.feature] = x
            windows = y if st.halo == 0 else None
        return feats

    def run(self, policy: RegionPolicy, rgb: np.ndarray, depth: np.ndarray, mask: Optional[np.ndarray] = None,
            return_logits: bool = True) -> Tuple[Dict[str, np.ndarray], Dict[str, float], list, np.ndarray]:
        """(outputs {'labels'[, 'logits']}, times, branches run, bool tile mask)."""
        s, spec = self.s, self.spec
        times: Dict[str, float] = {}
        ran: list = []
        t_start = time.perf_counter()
        feeds = {"rgb": s.backend.upload(rgb), "depth": s.backend.upload(depth)}
        if mask is None:
            scores = self.scores(policy, feeds, rgb, depth, times, ran)
            t0 = time.perf_counter()
            mask = policy.tiles(scores)
            times["policy"] = (time.perf_counter() - t0) * 1e3
        mask = np.asarray(mask, dtype=bool).reshape(self.grid.rows, self.grid.cols)
        stem_in = {t.name: feeds[t.name] for t in s.manifest.branch(spec.stem_branch).inputs}
        d0_dev = s._run(spec.stem_branch, stem_in, times)[spec.stem_output]
        d0 = s.backend.download(d0_dev)  # tiles are gathered on the host
        ran.append(spec.stem_branch)
        t0 = time.perf_counter()
        feats = self.run_stages(d0, self.grid.ids_of(mask), times, ran)
        trunk = {"rgb": feeds["rgb"], spec.stem_output: d0_dev,
                 spec.mask_input: s.backend.upload(mask[None].astype(np.float32)), **self.zero_feeds}
        trunk.update({k: s.backend.upload(v) for k, v in feats.items()})
        out = s._run(spec.trunk_branch, trunk, times)
        ran.append(spec.trunk_branch)
        outputs = {"labels": s.backend.download(out["labels"])}
        if return_logits:
            outputs["logits"] = s.backend.download(out["logits"])
        times["infer_total"] = (time.perf_counter() - t_start) * 1e3
        times["tiles_total"] = (time.perf_counter() - t0) * 1e3
        return outputs, times, ran, mask
