"""RunSummary keeps constant memory on any run length and still reports the median latency."""
from types import SimpleNamespace

import numpy as np

from dynmm_edge.runtime.summary import RunSummary


def _result(ms):
    return SimpleNamespace(path=1, branches_run=("gate", "trunk"), depth_macs=0.0, times_ms={"total": ms},
                           frame=None, labels=None)


def test_latency_stats_constant_memory_and_accurate():
    s = RunSummary(paths=(0, 1), full_depth_macs=1.0, num_classes=2)
    vals = np.random.default_rng(1).lognormal(2.0, 0.7, 20001)
    sizes = set()
    for v in vals:
        s.add(_result(float(v)))
        sizes.add(s.total_ms_hist.nbytes)
    d = s.to_dict()
    assert len(sizes) == 1  # nothing grows per frame
    assert abs(d["latency_ms_p50"] / np.median(vals) - 1) < 0.005
    assert abs(d["latency_ms_mean"] / vals.mean() - 1) < 1e-9
    assert d["frames"] == 20001


def test_latency_extremes_land_in_edge_bins():
    s = RunSummary(paths=(0,), full_depth_macs=1.0, num_classes=2)
    for ms in (0.0, float("nan"), 5e6):
        s.add(_result(ms))
    assert s.total_ms_hist[0] == 2 and s.total_ms_hist[-1] == 1
