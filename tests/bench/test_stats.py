import numpy as np
import pytest

from dynmm_edge.bench.stats import STAT_KEYS, summarize
from dynmm_edge.errors import DataError


def test_matches_numpy_linear_percentiles():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 3.0, size=137)
    s = summarize(x)
    assert tuple(s) == STAT_KEYS
    for k, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert s[k] == pytest.approx(np.percentile(x, q, method="linear"))
    assert s["mean"] == pytest.approx(x.mean()) and s["std"] == pytest.approx(x.std())
    assert s["min"] == x.min() and s["max"] == x.max() and s["n"] == 137
    assert all(type(v) is float for k, v in s.items() if k != "n") and type(s["n"]) is int


def test_small_known_values():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["p50"] == 2.5 and s["p90"] == pytest.approx(3.7) and s["mean"] == 2.5


def test_empty_and_nonfinite():
    s = summarize([])
    assert s["n"] == 0 and s["mean"] is None and s["p99"] is None
    with pytest.raises(DataError, match="gate.*index 1"):
        summarize([1.0, float("nan")], name="gate")
