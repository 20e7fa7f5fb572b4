"""Region break-even curve: realized vs ideal time saving against the active-tile share.

Modes, interleaved frame by frame in a shuffled order (one run, so drift and load hit all modes alike):
  full      the dense full-depth path (the reference)
  rgb       the RGB-only path (no depth at all): full - rgb = the depth time of a frame
  share:S   region mode with a fixed share S of tiles active (random tiles per frame, seeded)
ideal_saving(S)    = (ms_full - ms_rgb) / ms_full * (1 - region depth MACs(S) / full depth MACs)
                     (depth time shrinking exactly with depth MACs, halos and the dense stem counted)
realized_saving(S) = (ms_full - ms_region(S)) / ms_full
The break-even share is the largest S with realized_saving > 0.
"""
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

DEFAULT_SHARES = tuple(round(0.1 * k, 1) for k in range(1, 11))


def random_masks(grid_rows: int, grid_cols: int, share: float, frames: int, seed: int) -> List[np.ndarray]:
    """One bool [rows, cols] mask per frame with round(share x tiles) random tiles (at least one), seeded."""
    rng = np.random.default_rng(seed)
    n = grid_rows * grid_cols
    k = max(1, int(round(share * n)))
    out = []
    for _ in range(frames):
        m = np.zeros(n, bool)
        m[rng.permutation(n)[:k]] = True
        out.append(m.reshape(grid_rows, grid_cols))
    return out


def interleaved_p50(run: Callable, modes: Sequence, frames: int, repeats: int, warmup: int, seed: int,
                    timer: Callable[[], float] = time.perf_counter, sync: Callable[[], None] = None) -> Dict[str, float]:
    """Median ms per mode of run(mode, frame), every frame running every mode in a shuffled order (so drift
    and load hit all modes alike); `sync` (e.g. torch.cuda.synchronize) brackets each timed call."""
    sync = sync or (lambda: None)
    for mode in modes:
        for i in range(min(warmup, frames)):
            run(mode, i)
    times: Dict[object, List[float]] = {m: [] for m in modes}
    order_rng = np.random.default_rng(seed)
    for _ in range(repeats):
        for i in range(frames):
            for j in order_rng.permutation(len(modes)):
                sync()
                t0 = timer()
                run(modes[j], i)
                sync()
                times[modes[j]].append((timer() - t0) * 1e3)
    return {str(m): float(np.median(v)) for m, v in times.items()}


def savings_curve(p50: Dict[str, float], shares: Sequence[float], active_tiles: Dict[float, int],
                  macs_fraction: Callable[[int], float]) -> Dict[str, object]:
    """{'curve', 'depth_time_share', 'break_even_share'} from the medians of modes full, rgb and each share
    (definitions in the module docstring)."""
    full_ms, rgb_ms = p50["full"], p50["rgb"]
    depth_share = (full_ms - rgb_ms) / full_ms
    curve = []
    for s in shares:
        active = int(active_tiles[s])
        macs_frac = macs_fraction(active)
        ideal = depth_share * (1.0 - macs_frac)
        realized = (full_ms - p50[str(s)]) / full_ms
        curve.append({"active_share": float(s), "active_tiles": active, "ms_p50": p50[str(s)],
                      "depth_macs_fraction": macs_frac, "realized_saving": realized, "ideal_saving": ideal,
                      "realized_over_ideal": realized / ideal if ideal > 0 else None})
    positive = [c["active_share"] for c in curve if c["realized_saving"] > 0]
    return {"curve": curve, "depth_time_share": depth_share, "break_even_share": max(positive) if positive else 0.0}


def curve_lines(curve) -> List[str]:
    return [f"  share {c['active_share']:.1f}: {c['ms_p50']:7.2f} ms  realized {100 * c['realized_saving']:5.1f}%"
            f"  ideal {100 * c['ideal_saving']:5.1f}%" for c in curve]


def region_curve(session, frames: Sequence, shares: Sequence[float] = DEFAULT_SHARES, repeats: int = 3,
                 warmup: int = 2, seed: int = 0, clock: str = "wall") -> Dict[str, object]:
    """JSON-ready {'curve': [...], 'break_even_share', 'ms_p50': {...}, ...} for a Session with regions.

    clock 'wall': perf_counter; 'cpu': process CPU time (for a shared, oversubscribed machine, where
    wall-clock mostly measures other people's jobs; valid for single-threaded CPU backends only)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    timer = time.perf_counter if clock == "wall" else time.process_time
    from dynmm_edge.data.preprocess import preprocess
    from dynmm_edge.manifest import region_spec

    spec = region_spec(session.manifest)
    if spec is None:
        raise ValueError(f"model '{session.manifest.name}' has no region gate: no region curve")
    inputs = [preprocess(f.rgb, f.depth, f.depth_scale_m, session.preprocess_cfg, frame_id=f.frame_id) for f in frames]
    masks = {s: random_masks(spec.rows, spec.cols, s, len(inputs), seed) for s in shares}
    full, rgb_only = session.manifest.full_path, session.manifest.rgb_only_path

    def run(mode, i):
        rgb, depth = inputs[i]
        if mode == "full":
            session.run_tensors(rgb, depth, path=full)
        elif mode == "rgb":
            session.run_tensors(rgb, depth, path=rgb_only)
        else:
            session.run_region(rgb, depth, mask=masks[mode][i], return_logits=False)

    p50 = interleaved_p50(run, ["full", "rgb", *shares], len(inputs), repeats, warmup, seed + 1, timer)
    full_macs = float(spec.macs["full_depth_macs"])
    result = savings_curve(p50, shares, {s: int(masks[s][0].sum()) for s in shares},
                           lambda active: spec.depth_macs(active) / full_macs)
    return {"curve": result["curve"], "ms_p50": p50, "depth_time_share": result["depth_time_share"],
            "break_even_share": result["break_even_share"], "frames": len(inputs), "repeats": repeats,
            "tile": spec.tile, "tiles": spec.count, "halos": [st.halo for st in spec.stages],
            "interleaved": "per frame, modes in a shuffled order", "clock": clock}
