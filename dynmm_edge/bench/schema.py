"""Bench report schema: building the JSON (written first) and validating it.

Bench report: the JSON schema (written first), then Markdown, PNG and run-to-run comparison from it.

Schema 'dynmm-edge/bench', schema_version 1 (also in docs/BENCH_JSON.md). Keys are stable; a key
whose value cannot be measured holds null, never 0 (0 J would claim "free", null says "unknown").

{
  "schema": "dynmm-edge/bench", "schema_version": 1,
  "model": {...},                  # free-form: name, input size, paths, branch MACs (from the manifest)
  "backend": str, "precision": str,
  "included": {"preprocess": bool, "transfers": bool, "argmax": bool, "text": str},
                                   # what one e2e latency sample covers, in words too
  "environment": {...},            # dynmm_edge.bench.env.environment()
  "frames": int, "warmup": int, "fps_pacing": float | null,   # null = run as fast as possible
  "input": {"source": str, "source_defaulted": bool, "seed": int | null, "frames": int, "command": str},
                                   # what was measured (added by `dynmm-edge bench`; optional)
  "modes": {                       # 'full_depth', 'rgb_only', 'dynamic', optional 'dynamic_bias_<x>'
    "<mode>": {
      "e2e_ms": STATS,             # STATS = {mean, p50, p90, p95, p99, min, max, std, n} (bench.stats)
      "branches": {"<branch>": {"ms": STATS, "calls": int}},
      "path_histogram": {"<k>": count},   # k = number of depth stages run; counts sum to e2e_ms.n
      "depth_macs_mean": float | null, "total_macs_mean": float | null,
      "e2e_samples_ms": [float, ...]      # optional, per-frame samples for distribution plots
    }
  },
  "savings": {"ideal": f, "realized": f, "ratio": f},
      # ideal = 1 - dynamic total MACs / static total MACs; realized = 1 - dynamic e2e mean / static
      # e2e mean; ratio = realized / ideal (share of the MAC saving that became wall-clock saving)
  "overhead": {"gate_ms": f, "dispatch_ms": f, "gate_share": f},
      # gate_share = (gate_ms + dispatch_ms) / static e2e mean
  "throughput": {"serial_fps": f, "pipelined_fps": f},
  "energy": {"meter": describe() | null, "note": str,
             "<mode>": {"j_per_frame": f | null, "mean_power_w": f | null}}
}
Static = 'full_depth', dynamic = 'dynamic' unless the helpers are told otherwise.
"""
from __future__ import annotations

import json
import math
import re
from typing import List, Mapping, Optional, Sequence

import numpy as np

from dynmm_edge.bench.stats import STAT_KEYS, summarize

SCHEMA = "dynmm-edge/bench"
SCHEMA_VERSION = 1
STATIC_MODE = "full_depth"
DYNAMIC_MODE = "dynamic"
MODE_ORDER = ("full_depth", "rgb_only", "dynamic")
_MODE_RE = re.compile(r"^(full_depth|rgb_only|dynamic|dynamic_bias_[A-Za-z0-9_.+-]+)$")
TOP_KEYS = ("schema", "schema_version", "model", "backend", "precision", "included", "environment", "frames",
            "warmup", "fps_pacing", "modes", "savings", "overhead", "throughput", "energy")
NO_METER = "no power meter"


# ----------------------------------------------------------------------------------------- builders
def mode_entry(e2e_ms: Sequence[float], branch_ms: Optional[Mapping[str, Sequence[float]]] = None,
               path_counts: Optional[Mapping] = None, depth_macs_mean: Optional[float] = None,
               total_macs_mean: Optional[float] = None, keep_samples: bool = False) -> dict:
    """One modes.<mode> entry from raw per-frame samples (branch calls = number of samples)."""
    entry = {
        "e2e_ms": summarize(e2e_ms, "e2e_ms"),
        "branches": {b: {"ms": summarize(s, f"branch {b}"), "calls": len(s)} for b, s in (branch_ms or {}).items()},
        "path_histogram": {str(int(k)): int(v) for k, v in sorted((path_counts or {}).items(), key=lambda kv: int(kv[0]))},
        "depth_macs_mean": _num(depth_macs_mean),
        "total_macs_mean": _num(total_macs_mean),
    }
    if keep_samples:
        entry["e2e_samples_ms"] = [float(x) for x in e2e_ms]
    return entry


def energy_entry(joules: Optional[float], frames: int, seconds: Optional[float] = None) -> dict:
    """{j_per_frame, mean_power_w}: nulls when there was no meter (joules None) or nothing ran."""
    jpf = joules / frames if joules is not None and frames > 0 else None
    watts = joules / seconds if joules is not None and seconds else None
    return {"j_per_frame": _num(jpf), "mean_power_w": _num(watts)}


def _mean(modes: Mapping, mode: str, *keys) -> Optional[float]:
    cur = modes.get(mode)
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return _num(cur)


def derive_savings(modes: Mapping, static: str = STATIC_MODE, dynamic: str = DYNAMIC_MODE) -> dict:
    """{ideal, realized, ratio} from the static and dynamic mode entries (nulls where a term is missing)."""
    s_macs, d_macs = _mean(modes, static, "total_macs_mean"), _mean(modes, dynamic, "total_macs_mean")
    s_ms, d_ms = _mean(modes, static, "e2e_ms", "mean"), _mean(modes, dynamic, "e2e_ms", "mean")
    ideal = 1.0 - d_macs / s_macs if s_macs and d_macs is not None else None
    realized = 1.0 - d_ms / s_ms if s_ms and d_ms is not None else None
    ratio = realized / ideal if realized is not None and ideal else None
    return {"ideal": ideal, "realized": realized, "ratio": ratio}


def derive_overhead(modes: Mapping, static: str = STATIC_MODE, dynamic: str = DYNAMIC_MODE,
                    gate_branch: str = "gate", gate_ms: Optional[float] = None,
                    dispatch_ms: Optional[float] = None) -> dict:
    """{gate_ms, dispatch_ms, gate_share}; gate_ms defaults to the dynamic mode's gate branch mean."""
    if gate_ms is None:
        gate_ms = _mean(modes, dynamic, "branches", gate_branch, "ms", "mean")
    s_ms = _mean(modes, static, "e2e_ms", "mean")
    share = None
    if gate_ms is not None and s_ms:
        share = (gate_ms + (dispatch_ms or 0.0)) / s_ms
    return {"gate_ms": _num(gate_ms), "dispatch_ms": _num(dispatch_ms), "gate_share": share}


def make_report(*, model: dict, backend: str, precision: str, included: dict, frames: int, warmup: int,
                modes: dict, fps_pacing: Optional[float] = None, environment: Optional[dict] = None,
                throughput: Optional[dict] = None, energy: Optional[dict] = None,
                dispatch_ms: Optional[float] = None, static: str = STATIC_MODE, dynamic: str = DYNAMIC_MODE) -> dict:
    """Assemble a schema-v1 report; savings and overhead are derived here so every run uses one formula."""
    if environment is None:
        from dynmm_edge.bench.env import environment as _env

        environment = _env()
    energy = dict(energy) if energy else {"meter": None}
    energy.setdefault("meter", None)
    energy.setdefault("note", NO_METER if energy["meter"] is None else "")
    for m in modes:
        energy.setdefault(m, {"j_per_frame": None, "mean_power_w": None})
    thr = {"serial_fps": None, "pipelined_fps": None}
    thr.update(throughput or {})
    return _jsonable({
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "model": model, "backend": backend,
        "precision": precision, "included": included, "environment": environment, "frames": int(frames),
        "warmup": int(warmup), "fps_pacing": fps_pacing, "modes": modes,
        "savings": derive_savings(modes, static, dynamic),
        "overhead": derive_overhead(modes, static, dynamic, dispatch_ms=dispatch_ms),
        "throughput": thr, "energy": energy,
    })


# ------------------------------------------------------------------------------------------ checks
def _num(x) -> Optional[float]:
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_stats(st, where: str, problems: List[str]) -> None:
    if not isinstance(st, Mapping):
        problems.append(f"{where}: expected a stats dict, got {type(st).__name__}")
        return
    missing = [k for k in STAT_KEYS if k not in st]
    if missing:
        problems.append(f"{where}: missing stats keys {missing}")
        return
    n = st["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        problems.append(f"{where}.n: expected a non-negative int, got {n!r}")
        return
    vals = [st[k] for k in STAT_KEYS[:-1]]
    if n == 0:
        if any(v is not None for v in vals):
            problems.append(f"{where}: n=0 but statistics are not null")
        return
    bad = [k for k in STAT_KEYS[:-1] if not _is_num(st[k])]
    if bad:
        problems.append(f"{where}: non-numeric {bad}")
        return
    chain = [st["min"], st["p50"], st["p90"], st["p95"], st["p99"], st["max"]]
    if any(a > b + 1e-9 for a, b in zip(chain, chain[1:])):
        problems.append(f"{where}: percentiles not ordered min<=p50<=p90<=p95<=p99<=max: {chain}")
    if not st["min"] - 1e-9 <= st["mean"] <= st["max"] + 1e-9:
        problems.append(f"{where}: mean {st['mean']} outside [min, max]")
    if st["min"] < 0 or st["std"] < 0:
        problems.append(f"{where}: negative time or std")


def _check_opt_nums(d, keys, where: str, problems: List[str]) -> None:
    if not isinstance(d, Mapping):
        problems.append(f"{where}: expected a dict, got {type(d).__name__}")
        return
    for k in keys:
        if k not in d:
            problems.append(f"{where}.{k}: missing")
        elif d[k] is not None and not _is_num(d[k]):
            problems.append(f"{where}.{k}: expected a number or null, got {d[k]!r}")


def _check_top(report: Mapping, p: List[str]) -> None:
    """Top-level keys, schema id and the scalar fields."""
    missing = [k for k in TOP_KEYS if k not in report]
    if missing:
        p.append(f"report: missing top-level keys {missing}")
    if report.get("schema") != SCHEMA:
        p.append(f"schema: expected {SCHEMA!r}, got {report.get('schema')!r}")
    if report.get("schema_version") != SCHEMA_VERSION:
        p.append(f"schema_version: expected {SCHEMA_VERSION}, got {report.get('schema_version')!r}")
    for k in ("model", "environment"):
        if k in report and not isinstance(report[k], Mapping):
            p.append(f"{k}: expected a dict")
    for k in ("backend", "precision"):
        if k in report and not isinstance(report[k], str):
            p.append(f"{k}: expected a string")
    inc = report.get("included")
    if isinstance(inc, Mapping):
        for k in ("preprocess", "transfers", "argmax"):
            if not isinstance(inc.get(k), bool):
                p.append(f"included.{k}: expected a bool, got {inc.get(k)!r}")
        if not isinstance(inc.get("text"), str) or not inc.get("text"):
            p.append("included.text: expected a non-empty description of what a latency sample covers")
    elif "included" in report:
        p.append("included: expected a dict")
    for k in ("frames", "warmup"):
        v = report.get(k)
        if k in report and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            p.append(f"{k}: expected a non-negative int, got {v!r}")
    if report.get("fps_pacing") is not None and not (_is_num(report["fps_pacing"]) and report["fps_pacing"] > 0):
        p.append(f"fps_pacing: expected a positive number or null, got {report['fps_pacing']!r}")


def _check_mode(name: str, m, p: List[str]) -> None:
    """One entry of report['modes']."""
    w = f"modes.{name}"
    if not _MODE_RE.match(str(name)):
        p.append(f"{w}: unknown mode name (full_depth, rgb_only, dynamic, dynamic_bias_<x>)")
    if not isinstance(m, Mapping):
        p.append(f"{w}: expected a dict")
        return
    _check_stats(m.get("e2e_ms"), f"{w}.e2e_ms", p)
    br = m.get("branches")
    if not isinstance(br, Mapping):
        p.append(f"{w}.branches: expected a dict")
    else:
        for b, e in br.items():
            if not isinstance(e, Mapping):
                p.append(f"{w}.branches.{b}: expected a dict")
                continue
            _check_stats(e.get("ms"), f"{w}.branches.{b}.ms", p)
            c = e.get("calls")
            if not isinstance(c, int) or isinstance(c, bool) or c < 0:
                p.append(f"{w}.branches.{b}.calls: expected a non-negative int, got {c!r}")
    hist = m.get("path_histogram")
    if not isinstance(hist, Mapping):
        p.append(f"{w}.path_histogram: expected a dict")
    else:
        if any(not str(k).isdigit() or not isinstance(v, int) or v < 0 for k, v in hist.items()):
            p.append(f"{w}.path_histogram: keys must be path ints as strings, values counts")
        else:
            n = (m.get("e2e_ms") or {}).get("n")
            if hist and isinstance(n, int) and sum(hist.values()) != n:
                p.append(f"{w}.path_histogram: counts sum to {sum(hist.values())}, e2e_ms.n is {n}")
    for k in ("depth_macs_mean", "total_macs_mean"):
        v = m.get(k)
        if k not in m:
            p.append(f"{w}.{k}: missing")
        elif v is not None and not (_is_num(v) and v >= 0):
            p.append(f"{w}.{k}: expected a non-negative number or null, got {v!r}")
    s = m.get("e2e_samples_ms")
    if s is not None and (not isinstance(s, list) or not all(_is_num(x) for x in s)):
        p.append(f"{w}.e2e_samples_ms: expected a list of numbers")


def _check_energy(en, modes: Mapping, p: List[str]) -> None:
    """report['energy']: no meter means null values, never numbers."""
    if not isinstance(en, Mapping):
        p.append("energy: expected a dict")
    else:
        if "meter" not in en:
            p.append("energy.meter: missing (null when there is no meter)")
        elif en["meter"] is not None and not isinstance(en["meter"], Mapping):
            p.append("energy.meter: expected meter.describe() dict or null")
        if not isinstance(en.get("note"), str):
            p.append("energy.note: expected a string")
        for name in modes:
            e = en.get(name)
            if e is None:
                continue
            _check_opt_nums(e, ("j_per_frame", "mean_power_w"), f"energy.{name}", p)
            if en.get("meter") is None and isinstance(e, Mapping) and any(e.get(k) is not None for k in e):
                p.append(f"energy.{name}: values present but energy.meter is null (no meter = null, not numbers)")


def validate(report) -> List[str]:
    """Problems with a report (empty list = valid schema v1 report)."""
    if not isinstance(report, Mapping):
        return [f"report: expected a dict, got {type(report).__name__}"]
    p: List[str] = []
    _check_top(report, p)
    modes = report.get("modes")
    if not isinstance(modes, Mapping) or not modes:
        p.append("modes: expected a non-empty dict")
        modes = {}
    for name, m in modes.items():
        _check_mode(str(name), m, p)
    _check_opt_nums(report.get("savings"), ("ideal", "realized", "ratio"), "savings", p)
    sv = report.get("savings")
    if isinstance(sv, Mapping) and _is_num(sv.get("ideal")) and sv["ideal"] > 1:
        p.append(f"savings.ideal: {sv['ideal']} > 1 is impossible")
    _check_opt_nums(report.get("overhead"), ("gate_ms", "dispatch_ms", "gate_share"), "overhead", p)
    _check_opt_nums(report.get("throughput"), ("serial_fps", "pipelined_fps"), "throughput", p)
    _check_energy(report.get("energy"), modes, p)
    try:
        json.dumps(_jsonable(report), allow_nan=False)
    except (TypeError, ValueError) as exc:
        p.append(f"report: not JSON-serialisable: {exc}")
    return p


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x
