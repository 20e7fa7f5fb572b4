"""Pick a power meter: discover('auto') tries INA3221 sysfs, tegrastats, NVML, RAPL in that order.

Order = closest to the energy a user pays for on that platform: Jetson module input rails first
(sysfs is cheaper and finer than tegrastats), then a discrete GPU's board power, then CPU packages.
Returns None when nothing is available (reports then say "no power meter"); an explicitly requested
kind that is unavailable raises DataError with the probe's reason, so a bench run never silently
reports a different meter than the one asked for.
"""
from __future__ import annotations

from typing import Dict, Tuple

from dynmm_edge.errors import DataError
from dynmm_edge.power.ina3221 import Ina3221Meter
from dynmm_edge.power.nvml import NvmlMeter
from dynmm_edge.power.rapl import RaplMeter
from dynmm_edge.power.tegrastats import TegrastatsMeter

METERS = {
    "ina3221": Ina3221Meter,
    "tegrastats": TegrastatsMeter,
    "nvml": NvmlMeter,
    "rapl": RaplMeter,
}
AUTO_ORDER = ("ina3221", "tegrastats", "nvml", "rapl")
KINDS = ("auto", "none") + AUTO_ORDER


def _per_kind_opts(opts: dict) -> Dict[str, dict]:
    unknown = [k for k in opts if k not in METERS]
    if unknown:
        raise DataError(f"discover('auto') takes per-meter option dicts keyed by {list(METERS)}; unknown keys {unknown}")
    bad = [k for k, v in opts.items() if v is not None and not isinstance(v, dict)]
    if bad:
        raise DataError(f"discover('auto') options for {bad} must be dicts, e.g. ina3221={{'root': ...}}")
    return {k: dict(opts.get(k) or {}) for k in METERS}


def probe_all(**opts) -> Dict[str, Tuple[bool, str]]:
    """kind -> (available, reason) for every meter; opts as for discover('auto'). Goes into report notes."""
    per = _per_kind_opts(opts)
    out = {}
    for kind in AUTO_ORDER:
        try:
            out[kind] = METERS[kind].probe(**per[kind])
        except Exception as exc:  # a probe must never break a bench run
            out[kind] = (False, f"probe failed: {type(exc).__name__}: {exc}")
    return out


def discover(kind: str = "auto", **opts):
    """Return an open meter (caller closes it) or None.

    kind='none' -> None. kind='auto' -> the first available of AUTO_ORDER, opts keyed per kind
    (discover('auto', rapl={'root': ...})); an available meter that still fails to open is skipped.
    An explicit kind -> that meter with opts passed to its constructor, or DataError naming why not.
    """
    if kind in (None, "none"):
        return None
    if kind == "auto":
        per = _per_kind_opts(opts)
        for name in AUTO_ORDER:
            cls = METERS[name]
            try:
                ok, _reason = cls.probe(**per[name])
            except Exception:
                ok = False
            if not ok:
                continue
            try:
                return cls(**per[name])
            except DataError:
                continue
        return None
    if kind not in METERS:
        raise DataError(f"unknown power meter kind {kind!r}; choose one of {list(KINDS)}")
    cls = METERS[kind]
    probe_opts = {k: v for k, v in opts.items() if k in ("root", "binary", "index")}
    ok, reason = cls.probe(**probe_opts)
    if not ok:
        raise DataError(f"power meter {kind!r} is not available: {reason}")
    try:
        return cls(**opts)
    except TypeError as exc:
        raise DataError(f"bad options for power meter {kind!r}: {exc}") from exc
