"""Bench report rendering as text: Markdown tables, the machine line, run-to-run comparison."""
from __future__ import annotations

from typing import Iterable, List, Mapping, Sequence

from dynmm_edge.bench.schema import MODE_ORDER, NO_METER, _num

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
