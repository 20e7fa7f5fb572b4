"""Bench report plot: PNG from the JSON (matplotlib, imported lazily)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import List, Mapping

import numpy as np

from dynmm_edge import _lazy
from dynmm_edge.atomic import atomic_path
from dynmm_edge.bench.markdown import _ordered_modes, machine_text
from dynmm_edge.bench.schema import NO_METER, _is_num, _num

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


