"""Choosing calibration frames: spread over depth ranges and gate paths, not the first N.

The first N frames of a recording are usually one viewpoint at one distance; INT8 ranges fitted to
them clip the rest. Frames are stratified by the median valid depth (histogram bins over the pool)
and, optionally, by the FP32 gate's path, then drawn round-robin from the strata.
For a URI the source is read twice (statistics, then the chosen frames) so memory stays bounded;
live sources and plain iterables are read once into memory, up to `pool` frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DataError

STRATEGIES = ("diverse", "first")
MIN_FRAMES = 8


@dataclass(frozen=True)
class FrameInfo:
    """What selection knows about one scanned frame (index = position in the stream)."""
    index: int
    frame_id: object
    median_depth_m: float  # 0.0 when the frame has no valid depth pixel
    valid_fraction: float
    path: Optional[int] = None


@dataclass(frozen=True)
class Selection:
    frames: Tuple[object, ...]
    indices: Tuple[int, ...]
    infos: Tuple[FrameInfo, ...]  # every scanned frame
    scanned: int
    source: str
    strata: int


def source_name(source) -> str:
    if isinstance(source, str):
        return source
    n = len(source) if hasattr(source, "__len__") else "?"
    return f"<{type(source).__name__} of {n} frames>"


def check_frame(frame, name: str) -> None:
    """RGB-D frames only, rgb and depth of the same size (preprocess resizes both to the model size)."""
    fid = getattr(frame, "frame_id", "?")
    if getattr(frame, "depth", None) is None:
        raise DataError(f"{name}: frame {fid} has no depth stream; INT8 calibration needs RGB-D frames")
    rgb, depth = frame.rgb, frame.depth
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or not isinstance(depth, np.ndarray) or depth.ndim != 2:
        raise DataError(f"{name}: frame {fid} must have rgb HxWx3 and depth HxW, got "
                        f"{getattr(rgb, 'shape', None)} and {getattr(depth, 'shape', None)}")
    if rgb.shape[:2] != depth.shape:
        raise DataError(f"{name}: frame {fid}: rgb is {rgb.shape[1]}x{rgb.shape[0]} but depth is "
                        f"{depth.shape[1]}x{depth.shape[0]}; align depth to colour before calibrating")


def frame_info(frame, index: int, gate_fn: Optional[Callable] = None) -> FrameInfo:
    d = frame.depth.astype(np.float64) * float(frame.depth_scale_m)
    valid = np.isfinite(d) & (d > 0)
    frac = float(valid.mean()) if valid.size else 0.0
    med = float(np.median(d[valid])) if valid.any() else 0.0
    path = int(gate_fn(frame)) if gate_fn is not None else None
    return FrameInfo(index, frame.frame_id, med, frac, path)


def _open(uri: str):
    from dynmm_edge.io.sources import open_source
    return open_source(uri)


def _scan(frames: Iterable, name: str, limit: Optional[int], keep: bool, gate_fn):
    infos, kept = [], []
    it = iter(frames)
    if limit is not None:
        it = islice(it, limit)
    for i, frame in enumerate(it):
        check_frame(frame, name)
        infos.append(frame_info(frame, i, gate_fn))
        if keep:
            kept.append(frame)
    return infos, kept


def stratify(infos: Sequence[FrameInfo], depth_bins: int = 8) -> dict:
    """(depth bin, gate path) -> [frame indices]; frames without valid depth get bin -1."""
    meds = np.array([f.median_depth_m for f in infos], np.float64)
    ok = meds > 0
    edges = None
    if ok.any():
        lo, hi = float(meds[ok].min()), float(meds[ok].max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, depth_bins + 1)
    strata: dict = {}
    for f in infos:
        if f.median_depth_m > 0 and edges is not None:
            b = int(np.clip(np.searchsorted(edges, f.median_depth_m, side="right") - 1, 0, depth_bins - 1))
        else:
            b = -1
        strata.setdefault((b, -1 if f.path is None else f.path), []).append(f.index)
    return strata


def pick_diverse(infos: Sequence[FrameInfo], n: int, seed: int = 0, depth_bins: int = 8) -> Tuple[List[int], int]:
    """Round-robin over strata (random order inside each): equal share per stratum, capped by its size."""
    rng = np.random.default_rng(seed)
    strata = stratify(infos, depth_bins)
    queues = []
    for key in sorted(strata):
        idx = list(strata[key])
        rng.shuffle(idx)
        queues.append(idx)
    chosen: List[int] = []
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop())
    return sorted(chosen), len(strata)


def choose_frames(source, n: int, strategy: str = "diverse", seed: int = 0, *, pool: Optional[int] = None,
                  gate_fn: Optional[Callable] = None, min_frames: int = MIN_FRAMES, depth_bins: int = 8) -> Selection:
    """Select `n` calibration frames from a URI (open_source) or an iterable of Frames.

    pool: how many frames to scan (None: the whole source; a live source defaults to 4*n).
    Raises DataError naming the source when it has fewer than max(n, min_frames) frames, a frame
    has no depth, or a frame's rgb and depth sizes disagree.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown frame selection strategy {strategy!r}; use one of {STRATEGIES}")
    name = source_name(source)
    need = max(int(n), int(min_frames))
    if strategy == "first":
        pool = need  # enough to report "too few" correctly, no more
        gate_fn = None
    if isinstance(source, str):
        src = _open(source)
        live = bool(getattr(src, "live", False))
        limit = pool if pool is not None else (4 * n if live else None)
        try:
            infos, kept = _scan(src, name, limit, keep=live or strategy == "first", gate_fn=gate_fn)
        finally:
            if hasattr(src, "close"):
                src.close()
    else:
        live = True  # an iterable may be a one-shot generator: keep what we scan
        infos, kept = _scan(source, name, pool, keep=True, gate_fn=gate_fn)
    if len(infos) < need:
        raise DataError(f"{name}: only {len(infos)} usable frame(s), calibration needs at least {need} "
                        f"(requested {n}, minimum {min_frames})")
    if strategy == "first":
        indices, nstrata = list(range(n)), 1
    else:
        indices, nstrata = pick_diverse(infos, n, seed, depth_bins)
    if kept:
        frames = [kept[i] for i in indices]
    else:  # second pass over the re-opened URI: only the chosen frames are kept
        frames = collect_indices(source, indices)
    return Selection(tuple(frames), tuple(indices), tuple(infos), len(infos), name, nstrata)


def collect_indices(uri: str, indices: Sequence[int]) -> list:
    want = set(indices)
    last = max(want)
    out = []
    src = _open(uri)
    try:
        for i, frame in enumerate(src):
            if i in want:
                out.append(frame)
            if i >= last:
                break
    finally:
        if hasattr(src, "close"):
            src.close()
    if len(out) != len(want):
        raise DataError(f"{uri}: delivered {len(out)} of the {len(want)} chosen frames on the second read "
                        f"(the source changed between reads?)")
    return out


def select_frames(source, n: int, strategy: str = "diverse", seed: int = 0, **kwargs) -> list:
    """The chosen Frames only (see choose_frames for the options and errors)."""
    return list(choose_frames(source, n, strategy, seed, **kwargs).frames)


def held_out_frames(source, count: int, exclude: Sequence[int] = (), pool: Optional[int] = None) -> list:
    """Up to `count` frames of `source` whose stream positions are not in `exclude` (for evaluation)."""
    skip = set(exclude)
    name = source_name(source)
    src = _open(source) if isinstance(source, str) else source
    out = []
    try:
        for i, frame in enumerate(src):
            if pool is not None and i >= pool:
                break
            if i in skip:
                continue
            check_frame(frame, name)
            out.append(frame)
            if len(out) >= count:
                break
    finally:
        if isinstance(source, str) and hasattr(src, "close"):
            src.close()
    return out
