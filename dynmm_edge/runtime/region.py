"""Region mode in the runtime: region policies and the tile execution of one frame (numpy + any backend).

Per frame: region gate (or RGB-only entropy) -> policy -> tile mask -> dense depth stem -> for each
tile stage: gather active windows (runtime.tiles), run the tile-batch engine, scatter -> region trunk
with the sparse depth maps and the mask. With halo 0 the stage outputs feed the next stage directly
(the windows are the tiles); only the trunk's inputs are scattered.

On ORT CPU the gather/scatter runs on host numpy. On the PyTorch backend (CPU or CUDA) the same index
arithmetic slices the tensors where they live, so no feature map crosses to the host (only the tile
mask, the gate's logits and the labels do). The TensorRT backend's buffers still go through the host
(docs/REGIONS.md).
"""
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DynMMError
from dynmm_edge.runtime.policy import GatePolicy
from dynmm_edge.tiles import (TileGrid, bucket_for, gather, scatter, select_tiles, tile_entropy, top_share,
                              zeros_like_map)

REGION_KINDS = {"region": "gate", "region-share": "share", "region-entropy": "entropy"}


class RegionPolicy(GatePolicy):
    """region:T (learned gate, keep sigmoid > T), region-share:F (top F of tiles by the gate),
    region-entropy:F (top F by RGB-only prediction entropy; training-free, costs an RGB-only pass)."""

    def __init__(self, kind: str, value: float, reuse: float = 0.0, max_age: int = 30):
        if kind not in REGION_KINDS.values():
            raise DynMMError(f"region policy kind {kind!r} unknown")
        label = "threshold" if kind == "gate" else "tile share"
        value = float(value)
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            raise DynMMError(f"policy {self._spec(kind, value)}: {label} must be in [0, 1], got {value:g}")
        reuse = float(reuse)
        if not 0.0 <= reuse < float("inf"):
            raise DynMMError(f"policy {self._spec(kind, value)}: reuse must be a depth change >= 0, got {reuse:g}")
        if int(max_age) < 1:
            raise DynMMError(f"policy {self._spec(kind, value)}: max_age must be >= 1 frame, got {max_age}")
        self.kind, self.value, self.reuse, self.max_age = kind, value, reuse, int(max_age)

    @staticmethod
    def _spec(kind, value):
        prefix = {v: k for k, v in REGION_KINDS.items()}[kind]
        return f"{prefix}:{value:g}"

    @property
    def name(self):
        return self._spec(self.kind, self.value) + (f",reuse={self.reuse:g}" if self.reuse else "")

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
    """'region:0.5', 'region-share:0.3', ... with optional ',reuse=TAU[,max_age=N]' (temporal tile reuse)."""
    name, _, arg = spec.strip().partition(":")
    if name not in REGION_KINDS:
        raise DynMMError(f"unknown region policy {spec!r}; use region:THRESHOLD, region-share:F or region-entropy:F")
    value, *options = arg.split(",")
    try:
        value = float(value)
    except ValueError:
        raise DynMMError(f"policy {spec!r}: expected a number in [0, 1] after ':'") from None
    kw = {}
    for opt in options:
        key, eq, text = opt.partition("=")
        if key.strip() not in ("reuse", "max_age") or not eq:
            raise DynMMError(f"policy {spec!r}: unknown option {opt!r}; region options are reuse=TAU and max_age=N")
        try:
            kw[key.strip()] = float(text) if key.strip() == "reuse" else int(text)
        except ValueError:
            raise DynMMError(f"policy {spec!r}: {key.strip()} needs a number, got {text!r}") from None
    return RegionPolicy(REGION_KINDS[name], value, **kw)


class TileCache:
    """Temporal tile reuse (BlockCopy-style): the last computed depth features of each tile, and the depth
    the tile had then (its signature: the tile's depth average-pooled by 8).

    Per frame, a tile whose depth moved by at most `tau` (mean |change| of its signature, in preprocessed
    depth units) since its features were computed, and whose features are younger than `max_age` frames,
    REUSES them instead of running: a tile the policy keeps skips its depth stages, and a tile the policy
    skips fuses its old features instead of nothing. Exact for halo-free tiles (a tile's features depend
    on its own window only), so the executor refuses it for halo tiles.
    """

    def __init__(self, grid: TileGrid, tau: float, max_age: int):
        self.grid, self.tau, self.max_age = grid, float(tau), int(max_age)
        self.valid = np.zeros((grid.rows, grid.cols), bool)
        self.age = np.zeros((grid.rows, grid.cols), np.int64)
        self.sig = None
        self.maps: Dict[str, np.ndarray] = {}

    def signature(self, depth: np.ndarray) -> np.ndarray:
        g, k = self.grid, 8
        d = np.asarray(depth, np.float32).reshape(g.rows, g.tile // k, k, g.cols, g.tile // k, k)
        return d.mean(axis=(2, 5)).transpose(0, 2, 1, 3)  # [rows, cols, tile/8, tile/8]

    def plan(self, keep: np.ndarray, sig: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(compute, reuse) bool [rows, cols] masks for this frame's kept tiles `keep`."""
        fresh = self.valid & (self.age < self.max_age)
        if self.sig is not None:
            fresh &= np.abs(sig - self.sig).mean(axis=(2, 3)) <= self.tau
        return keep & ~fresh, fresh

    def update(self, feats: Dict[str, np.ndarray], names: Sequence[str], compute: np.ndarray,
               reuse: np.ndarray, sig: np.ndarray) -> Dict[str, np.ndarray]:
        """Fill the reused tiles of this frame's maps from the cache, store the computed ones; returns the maps
        the trunk gets (a stage no tile ran or reused through stays absent: the bound zeros stand in)."""
        g = self.grid
        out = {}
        for name in names:
            cur, old = feats.get(name), self.maps.get(name)
            if cur is None and (old is None or not reuse.any()):
                continue
            cur = zeros_like_map(old, old.shape) if cur is None else cur
            old = zeros_like_map(cur, cur.shape) if old is None else old
            out[name] = select_tiles(reuse, g, old, cur)
            self.maps[name] = select_tiles(compute, g, cur, old)
        if self.sig is None:
            self.sig = sig.copy()
        self.sig[compute] = sig[compute]
        self.valid |= compute
        self.age += 1
        self.age[compute] = 0
        return out


class RegionExecutor:
    """Runs region mode for a Session (its runners, backend and timing) from the plan's RegionPlan.

    The per-stage zero features (a stage no tile ran through) are bound on the backend once, here."""

    def __init__(self, session, plan):
        self.s, self.plan, self.spec = session, plan, plan.spec
        m = session.manifest
        self.grid = TileGrid(self.spec.tile, m.height, m.width)
        self.zero_feeds = {n: session.backend.zeros(t.concrete(1), t.dtype) for n, t in plan.zero_features.items()}
        self.static_shapes = bool(getattr(session.backend, "static_shapes", False))
        # a backend whose arrays are torch tensors (CPU or CUDA) gathers and scatters them where they are;
        # the others (ORT: host arrays) go through numpy on the host
        self.on_device = bool(getattr(session.backend, "tiles_on_device", False))
        self.cache: Optional[TileCache] = None
        self.last_reused = np.zeros((self.grid.rows, self.grid.cols), bool)  # the last frame's reused tiles

    def reset(self) -> None:
        """Forget reused tiles (a new sequence, or a new policy)."""
        self.cache = None

    def _cache_for(self, policy) -> Optional[TileCache]:
        if not getattr(policy, "reuse", 0.0):  # bench and selftest run explicit masks under any policy
            return None
        if any(st.halo for st in self.spec.stages):
            raise DynMMError(f"policy {policy.name}: tile reuse needs halo-free tiles (this model's tile stages "
                             f"have halos {[st.halo for st in self.spec.stages]})")
        c = self.cache
        if c is None or (c.tau, c.max_age) != (policy.reuse, policy.max_age):
            self.cache = c = TileCache(self.grid, policy.reuse, policy.max_age)
        return c

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

    def run_stages(self, d0, ids: np.ndarray, times, ran) -> Dict[str, object]:
        """Feature maps of the stages that ran (none when no tile is active): host arrays, or device tensors
        when the backend's arrays are tensors (then no feature map crosses to the host)."""
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
                    padded = zeros_like_map(win, (b,) + tuple(win.shape[1:]))
                    padded[:n] = win
                    win = padded
            feed = win if self.on_device else s.backend.upload(np.ascontiguousarray(win))
            y = s._run(st.branch, {st.input: feed}, times)[st.output]
            y = (y if self.on_device else s.backend.download(y))[:n]
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
        cache, reused = self._cache_for(policy), np.zeros_like(mask)
        if cache is not None:
            sig = cache.signature(depth)
            mask, reused = cache.plan(mask, sig)
        stem_in = {t.name: feeds[t.name] for t in s.manifest.branch(spec.stem_branch).inputs}
        d0_dev = s._run(spec.stem_branch, stem_in, times)[spec.stem_output]
        d0 = d0_dev if self.on_device else s.backend.download(d0_dev)  # gathered where the arrays live
        ran.append(spec.stem_branch)
        t0 = time.perf_counter()
        feats = self.run_stages(d0, self.grid.ids_of(mask), times, ran)
        if cache is not None:
            feats = cache.update(feats, [st.feature for st in spec.stages], mask, reused, sig)
        fused = mask | reused  # the trunk's masked SE pools over every tile that carries features
        trunk = {"rgb": feeds["rgb"], spec.stem_output: d0_dev,
                 spec.mask_input: s.backend.upload(fused[None].astype(np.float32)), **self.zero_feeds}
        trunk.update({k: v if self.on_device else s.backend.upload(v) for k, v in feats.items()})
        out = s._run(spec.trunk_branch, trunk, times)
        ran.append(spec.trunk_branch)
        outputs = {"labels": s.backend.download(out["labels"])}
        if return_logits:
            outputs["logits"] = s.backend.download(out["logits"])
        times["infer_total"] = (time.perf_counter() - t_start) * 1e3
        times["tiles_total"] = (time.perf_counter() - t0) * 1e3
        self.last_reused = reused
        return outputs, times, ran, mask
