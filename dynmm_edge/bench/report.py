"""Bench report: the JSON schema (written first), then Markdown, PNG and run-to-run comparison from it.

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
                                   # what was measured (written by `dynmm-edge bench`)
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

import io
import json
import math
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from dynmm_edge import _lazy
from dynmm_edge.atomic import atomic_path, write_json, write_text
from dynmm_edge.bench.stats import STAT_KEYS, summarize
from dynmm_edge.errors import DataError

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


def validate(report) -> List[str]:
    """Problems with a report (empty list = valid schema v1 report)."""
    p: List[str] = []
    if not isinstance(report, Mapping):
        return [f"report: expected a dict, got {type(report).__name__}"]
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
    modes = report.get("modes")
    if not isinstance(modes, Mapping) or not modes:
        p.append("modes: expected a non-empty dict")
        modes = {}
    for name, m in modes.items():
        w = f"modes.{name}"
        if not _MODE_RE.match(str(name)):
            p.append(f"{w}: unknown mode name (full_depth, rgb_only, dynamic, dynamic_bias_<x>)")
        if not isinstance(m, Mapping):
            p.append(f"{w}: expected a dict")
            continue
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
    _check_opt_nums(report.get("savings"), ("ideal", "realized", "ratio"), "savings", p)
    sv = report.get("savings")
    if isinstance(sv, Mapping) and _is_num(sv.get("ideal")) and sv["ideal"] > 1:
        p.append(f"savings.ideal: {sv['ideal']} > 1 is impossible")
    _check_opt_nums(report.get("overhead"), ("gate_ms", "dispatch_ms", "gate_share"), "overhead", p)
    _check_opt_nums(report.get("throughput"), ("serial_fps", "pipelined_fps"), "throughput", p)
    en = report.get("energy")
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
    try:
        json.dumps(_jsonable(report), allow_nan=False)
    except (TypeError, ValueError) as exc:
        p.append(f"report: not JSON-serialisable: {exc}")
    return p


# ------------------------------------------------------------------------------------------ render
def _f(x, nd: int = 2) -> str:
    x = _num(x)
    return "n/a" if x is None else f"{x:.{nd}f}"


def _pct(x) -> str:
    x = _num(x)
    return "n/a" if x is None else f"{100.0 * x:.1f}%"


def _g(x) -> str:
    x = _num(x)
    return "n/a" if x is None else f"{x / 1e9:.2f}"


def _ordered_modes(modes: Mapping) -> List[str]:
    first = [m for m in MODE_ORDER if m in modes]
    return first + sorted(m for m in modes if m not in first)


def machine_text(report: Mapping) -> str:
    env = report.get("environment") or {}
    parts = []
    for key in ("jetson_model", "gpu_name", "cpu_model"):
        if env.get(key):
            parts.append(str(env[key]))
    if env.get("cpu_cores"):
        parts.append(f"{env['cpu_cores']} cores")
    nvp = env.get("nvpmodel")
    if isinstance(nvp, Mapping) and nvp.get("name"):
        parts.append(f"nvpmodel {nvp['name']}")
    jc = env.get("jetson_clocks")
    if isinstance(jc, Mapping) and "pinned" in jc:
        parts.append("jetson_clocks on" if jc["pinned"] else "clocks not pinned")
    return ", ".join(parts) if parts else "unknown machine"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def to_markdown(report: Mapping) -> str:
    """Human-readable tables: latency per mode, per-branch p50, savings, energy."""
    modes = report.get("modes") or {}
    names = _ordered_modes(modes)
    model = report.get("model") or {}
    inc = report.get("included") or {}
    flags = ", ".join(f"{k} {'yes' if inc.get(k) else 'no'}" for k in ("preprocess", "transfers", "argmax"))
    pacing = report.get("fps_pacing")
    lines = [
        f"# DynMM edge benchmark: {model.get('name', 'model')}",
        "",
        f"- Machine: {machine_text(report)}",
        f"- Backend: {report.get('backend')}, precision {report.get('precision')}",
        f"- Frames: {report.get('frames')} measured after {report.get('warmup')} warm-up, "
        f"{'paced at ' + _f(pacing, 1) + ' FPS' if pacing else 'unpaced (as fast as possible)'}",
        f"- Timings include: {inc.get('text', 'not stated')} ({flags})",
        "",
        "## End-to-end latency (ms)",
        "",
    ]
    rows = []
    for m in names:
        st = modes[m].get("e2e_ms") or {}
        rows.append([m, st.get("n")] + [_f(st.get(k)) for k in ("mean", "p50", "p90", "p95", "p99", "min", "max", "std")]
                    + [_g(modes[m].get("depth_macs_mean")), _g(modes[m].get("total_macs_mean"))])
    lines += _table(["mode", "n", "mean", "p50", "p90", "p95", "p99", "min", "max", "std", "depth GMAC", "total GMAC"], rows)
    lines += ["", "## Paths chosen (depth stages run: frames)", ""]
    lines += _table(["mode", "histogram"], [[m, ", ".join(f"{k}: {v}" for k, v in (modes[m].get("path_histogram") or {}).items())
                                             or "n/a"] for m in names])
    branches: List[str] = []
    for m in names:
        for b in (modes[m].get("branches") or {}):
            if b not in branches:
                branches.append(b)
    lines += ["", "## Per-branch p50 latency (ms, calls)", ""]
    brow = []
    for b in branches:
        row = [b]
        for m in names:
            e = (modes[m].get("branches") or {}).get(b)
            row.append(f"{_f(e['ms'].get('p50'))} ({e.get('calls')})" if e else "-")
        brow.append(row)
    lines += _table(["branch"] + names, brow) if brow else ["No per-branch timings recorded."]
    sv, ov, th = report.get("savings") or {}, report.get("overhead") or {}, report.get("throughput") or {}
    lines += ["", "## Savings (dynamic vs full_depth)", ""]
    lines += _table(["ideal (MACs)", "realized (e2e mean)", "realized / ideal", "gate ms", "dispatch ms", "gate share"],
                    [[_pct(sv.get("ideal")), _pct(sv.get("realized")), _f(sv.get("ratio")), _f(ov.get("gate_ms"), 3),
                      _f(ov.get("dispatch_ms"), 3), _pct(ov.get("gate_share"))]])
    lines += ["", f"Throughput: serial {_f(th.get('serial_fps'), 1)} FPS, pipelined {_f(th.get('pipelined_fps'), 1)} FPS", ""]
    lines += ["## Energy", ""]
    en = report.get("energy") or {}
    meter = en.get("meter")
    if meter is None:
        lines.append(f"No power meter: energy not measured. {en.get('note') or ''}".rstrip())
    else:
        tot = meter.get("total") or {}
        lines.append(f"Meter: {meter.get('kind')} ({meter.get('source')}), total = "
                     f"{tot.get('rail') or tot.get('mode') or 'n/a'}, rails {meter.get('rails')}"
                     + (f". {en['note']}" if en.get("note") else ""))
        lines.append("")
        lines += _table(["mode", "J/frame", "mJ/frame", "mean W"],
                        [[m, _f((en.get(m) or {}).get("j_per_frame"), 4),
                          _f(None if (en.get(m) or {}).get("j_per_frame") is None else en[m]["j_per_frame"] * 1e3, 1),
                          _f((en.get(m) or {}).get("mean_power_w"), 2)] for m in names])
    return "\n".join(lines) + "\n"


def plot(report: Mapping, out_png) -> Path:
    """Latency distribution per mode, per-branch stacked mean time, energy per frame; PNG written atomically."""
    _lazy.require("matplotlib", "bench plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    modes = report.get("modes") or {}
    names = _ordered_modes(modes)
    fig = Figure(figsize=(15, 4.5))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    samples = [modes[m].get("e2e_samples_ms") for m in names]
    if names and all(s for s in samples):
        ax1.boxplot(samples, showfliers=True)
        ax1.set_xticks(range(1, len(names) + 1), names)
    else:  # no per-frame samples: draw the percentile ladder instead
        for i, m in enumerate(names):
            st = modes[m].get("e2e_ms") or {}
            ys = [st.get(k) for k in ("min", "p50", "p90", "p99", "max")]
            if all(_is_num(y) for y in ys):
                ax1.plot([i] * 5, ys, "o-", color="C0")
                ax1.plot([i], [st.get("mean")], "s", color="C1")
        ax1.set_xticks(range(len(names)), names)
    ax1.set_title("end-to-end latency per mode")
    ax1.set_ylabel("ms")
    branches: List[str] = []
    for m in names:
        for b in modes[m].get("branches") or {}:
            if b not in branches:
                branches.append(b)
    frames = {m: max(1, (modes[m].get("e2e_ms") or {}).get("n") or 1) for m in names}
    bottom = np.zeros(len(names))
    for j, b in enumerate(branches):
        # time per frame spent in branch b = mean per call * calls / frames (skipped branches count 0)
        vals = []
        for m in names:
            e = (modes[m].get("branches") or {}).get(b)
            mean = _num(e["ms"].get("mean")) if e else None
            vals.append(0.0 if mean is None else mean * e.get("calls", 0) / frames[m])
        ax2.bar(names, vals, bottom=bottom, label=b, color=f"C{j % 10}")
        bottom += np.asarray(vals)
    ax2.set_title("per-branch time per frame (mean)")
    ax2.set_ylabel("ms")
    if branches:
        ax2.legend(fontsize=7)
    en = report.get("energy") or {}
    jpf = [(en.get(m) or {}).get("j_per_frame") for m in names]
    if en.get("meter") is not None and any(_is_num(v) for v in jpf):
        ax3.bar(names, [v * 1e3 if _is_num(v) else 0.0 for v in jpf], color="C2")
        ax3.set_ylabel("mJ / frame")
        ax3.set_title(f"energy per frame ({(en['meter'] or {}).get('kind')})")
    else:
        ax3.text(0.5, 0.5, NO_METER, ha="center", va="center", transform=ax3.transAxes)
        ax3.set_title("energy per frame")
        ax3.set_xticks([])
        ax3.set_yticks([])
    fig.suptitle(f"{(report.get('model') or {}).get('name', 'model')} on {machine_text(report)} "
                 f"[{report.get('backend')}, {report.get('precision')}]", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    out = Path(out_png)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return out


def _ratio(a, b) -> str:
    a, b = _num(a), _num(b)
    return "n/a" if a is None or b is None or a == 0 else f"{b / a:.3f}x"


def _delta(a, b, nd=3) -> str:
    a, b = _num(a), _num(b)
    return "n/a" if a is None or b is None else f"{b - a:+.{nd}f}"


def compare(a: Mapping, b: Mapping) -> str:
    """Markdown table of B relative to A: e2e p50/mean per mode, savings, energy (ratio B/A and delta)."""
    lines = [f"A: {a.get('backend')}/{a.get('precision')} on {machine_text(a)}",
             f"B: {b.get('backend')}/{b.get('precision')} on {machine_text(b)}", ""]
    rows = []
    ma, mb = a.get("modes") or {}, b.get("modes") or {}
    for m in _ordered_modes({**ma, **mb}):
        for k in ("p50", "mean"):
            va = ((ma.get(m) or {}).get("e2e_ms") or {}).get(k)
            vb = ((mb.get(m) or {}).get("e2e_ms") or {}).get(k)
            rows.append([f"{m} e2e {k} ms", _f(va, 3), _f(vb, 3), _ratio(va, vb), _delta(va, vb)])
    for k in ("ideal", "realized", "ratio"):
        va, vb = (a.get("savings") or {}).get(k), (b.get("savings") or {}).get(k)
        rows.append([f"savings {k}", _f(va, 3), _f(vb, 3), _ratio(va, vb), _delta(va, vb)])
    ea, eb = a.get("energy") or {}, b.get("energy") or {}
    for m in _ordered_modes({**ma, **mb}):
        va, vb = (ea.get(m) or {}).get("j_per_frame"), (eb.get(m) or {}).get("j_per_frame")
        if va is None and vb is None:
            continue
        rows.append([f"{m} J/frame", _f(va, 4), _f(vb, 4), _ratio(va, vb), _delta(va, vb, 4)])
    if ea.get("meter") is None or eb.get("meter") is None:
        lines.append(f"Energy: {'A' if ea.get('meter') is None else 'B'} has {NO_METER}.")
        lines.append("")
    return "\n".join(lines + _table(["metric", "A", "B", "B/A", "B-A"], rows)) + "\n"


# ------------------------------------------------------------------------------------------- write
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


def write_report(report: Mapping, json_path, plot_png: bool = True, strict: bool = True) -> Dict[str, Optional[Path]]:
    """Write <name>.json (atomic), then <name>.md and <name>.png beside it; returns the paths.

    strict: refuse an invalid report (DataError listing the problems) before anything is written.
    The PNG is skipped (path None) when matplotlib is not installed; JSON and Markdown never need it.
    """
    report = _jsonable(report)
    problems = validate(report)
    if problems and strict:
        raise DataError(f"bench report for {json_path} is invalid: " + "; ".join(problems))
    json_path = Path(json_path)
    write_json(json_path, report)
    md = write_text(json_path.with_suffix(".md"), to_markdown(report))
    png = None
    if plot_png and _lazy.available("matplotlib"):
        png = plot(report, json_path.with_suffix(".png"))
    return {"json": json_path, "md": md, "png": png}


def load_report(path) -> dict:
    """Read a bench JSON and check its schema (DataError naming the file and the problems)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read bench report {path}: {exc}") from exc
    problems = validate(report)
    if problems:
        raise DataError(f"{path} is not a valid {SCHEMA} v{SCHEMA_VERSION} report: " + "; ".join(problems))
    return report
