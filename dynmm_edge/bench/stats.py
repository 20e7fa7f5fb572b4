"""Latency statistics with one definition everywhere, so numbers from different runs compare.

Percentiles use numpy's linear interpolation (the default 'linear' method, same as trtexec-style
p50/p90/p95/p99 tables); std is the population std (ddof=0) of the samples.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np

from dynmm_edge.errors import DataError

STAT_KEYS = ("mean", "p50", "p90", "p95", "p99", "min", "max", "std", "n")


def summarize(samples_ms: Iterable[float], name: str = "samples") -> Dict[str, Optional[float]]:
    """{mean, p50, p90, p95, p99, min, max, std, n}; n=0 gives None for every statistic.

    Raises DataError on NaN/inf samples (a broken timer must not average into a report).
    """
    a = np.asarray(list(samples_ms) if not isinstance(samples_ms, np.ndarray) else samples_ms, dtype=np.float64).ravel()
    if a.size == 0:
        out: Dict[str, Optional[float]] = {k: None for k in STAT_KEYS}
        out["n"] = 0
        return out
    if not np.all(np.isfinite(a)):
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise DataError(f"{name}: non-finite latency sample at index {bad} ({a[bad]})")
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return {
        "mean": float(a.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(a.min()),
        "max": float(a.max()),
        "std": float(a.std()),
        "n": int(a.size),
    }
