"""Evaluation of a DynMM model with the eager torch model and TRUE skipping.

For the dynamic mode each frame's path comes from the gate (argmax of logits + optional bias);
frames are grouped by path and run with model.forward(rgb, depth, path=k), so depth stages >= k are
never executed. Static modes: 'rgb_only' = the cheapest path, 'full_depth' = the largest path.

mIoU is a fraction in [0, 1]; classes absent from both prediction and ground truth (union 0) are
excluded from the mean; label 255 is ignored. JSON keys are documented in docs/TRAINING.md.

Bias sweep: gate logits + bias * (k - mean(k)) over path index k; a positive bias favours deeper
(more depth) paths, a negative one favours cheaper paths, 0 is the trained gate.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch

from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion
MODES = ("dynamic", "rgb_only", "full_depth")


# ----------------------------------------------------------------------------- model helpers
def gate_logits_for(model, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Gate logits [B, len(paths)] for either gate kind (the stem gate needs the stage-0 features)."""
    return model.gate_forward(rgb, depth)[0]


def path_bias(paths: Sequence[int], bias: float) -> torch.Tensor:
    """bias * (path index - mean index): one scalar moves the gate along the cost axis."""
    idx = torch.arange(len(paths), dtype=torch.float32)
    return float(bias) * (idx - idx.mean())


def depth_macs_per_path(model) -> List[float]:
    """Depth-encoder MACs of each path in model.paths order (from dynmm_edge.model.costs)."""
    from dynmm_edge.model import costs

    raw = costs.depth_path_macs(model)
    return [float(raw[k]) for k in model.paths]


# ----------------------------------------------------------------------------- metrics
# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def _predict_paths(model, rgb, depth, paths_idx: torch.Tensor) -> torch.Tensor:
    """Run each group of samples with its own path (true skipping) -> predictions [B,H,W]."""
    out = torch.empty((rgb.shape[0],) + tuple(rgb.shape[2:]), dtype=torch.long)
    for pi in paths_idx.unique().tolist():
        sel = (paths_idx == pi).nonzero().flatten()
        logits = model(rgb[sel], depth[sel], path=int(model.paths[pi]))
        out[sel] = logits.argmax(1)
    return out


@torch.no_grad()
def evaluate(model, dataset, class_names: Sequence[str], batch_size: int = 8,
             biases: Sequence[float] = (), progress: bool = False) -> Dict[str, object]:
    """Evaluate dynamic / rgb_only / full_depth (and optional gate biases) on a dataset.

    Returns the report dict (see docs/TRAINING.md). biases -> report['sweep'] list of
    {bias, depth_macs_mean, depth_macs_fraction, miou, path_histogram}.
    """
    model.eval()
    paths = list(model.paths)
    nc = int(model.config.num_classes)
    macs = depth_macs_per_path(model)
    full_macs = max(macs) if max(macs) > 0 else 1.0
    static = {"rgb_only": 0, "full_depth": len(paths) - 1}
    bias_list = [float(b) for b in biases]
    cms = {m: np.zeros((nc, nc), np.int64) for m in MODES}
    cms_kind: Dict[str, Dict[str, np.ndarray]] = {}
    hist = np.zeros(len(paths), np.int64)
    hist_kind: Dict[str, np.ndarray] = {}
    sweep_cm = {b: np.zeros((nc, nc), np.int64) for b in bias_list}
    sweep_hist = {b: np.zeros(len(paths), np.int64) for b in bias_list}
    n = len(dataset)
    it = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="eval", leave=False)
    for start in it:
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        rgb = torch.stack([x["rgb"] for x in items])
        depth = torch.stack([x["depth"] for x in items])
        labels = torch.stack([x["labels"] for x in items]).numpy()
        kinds = [x["kind"] for x in items]
        glog = gate_logits_for(model, rgb, depth).float()
        chosen = glog.argmax(1)
        preds = {"dynamic": _predict_paths(model, rgb, depth, chosen)}
        for mode, pi in static.items():
            preds[mode] = _predict_paths(model, rgb, depth, torch.full_like(chosen, pi))
        for b in range(len(items)):
            kind = kinds[b]
            hist[int(chosen[b])] += 1
            hist_kind.setdefault(kind, np.zeros(len(paths), np.int64))[int(chosen[b])] += 1
            ck = cms_kind.setdefault(kind, {m: np.zeros((nc, nc), np.int64) for m in MODES})
            for mode in MODES:
                cm = confusion_matrix(preds[mode][b].numpy(), labels[b], nc)
                cms[mode] += cm
                ck[mode] += cm
        for bias in bias_list:
            if bias == 0.0:
                sel = chosen
                pred = preds["dynamic"]
            else:
                sel = (glog + path_bias(paths, bias)).argmax(1)
                pred = _predict_paths(model, rgb, depth, sel)
            for b in range(len(items)):
                sweep_hist[bias][int(sel[b])] += 1
                sweep_cm[bias] += confusion_matrix(pred[b].numpy(), labels[b], nc)

    def mode_report(cm, path_counts):
        r = metrics_from_confusion(cm, class_names)
        total = max(int(path_counts.sum()), 1)
        mean_macs = float(sum(c * m for c, m in zip(path_counts.tolist(), macs)) / total)
        return {"miou": r["miou"], "pixel_acc": r["pixel_acc"], "depth_macs_mean": mean_macs,
                "depth_macs_fraction": mean_macs / full_macs, "per_class_iou": r["per_class_iou"]}

    def static_counts(pi, total):
        c = np.zeros(len(paths), np.int64)
        c[pi] = total
        return c

    def modes_for(cm_by_mode, h):
        out = {"dynamic": mode_report(cm_by_mode["dynamic"], h)}
        out["dynamic"]["path_histogram"] = {str(p): int(c) for p, c in zip(paths, h.tolist())}
        for mode, pi in static.items():
            out[mode] = mode_report(cm_by_mode[mode], static_counts(pi, int(h.sum())))
        return out

    report = {
        "frames": n,
        "num_classes": nc,
        "paths": paths,
        "depth_macs_per_path": macs,
        "modes": modes_for(cms, hist),
        "by_kind": {k: dict(modes_for(cms_kind[k], hist_kind[k]), frames=int(hist_kind[k].sum()))
                    for k in sorted(cms_kind)},
    }
    if bias_list:
        report["sweep"] = []
        for bias in bias_list:
            r = mode_report(sweep_cm[bias], sweep_hist[bias])
            report["sweep"].append({"bias": bias, "depth_macs_mean": r["depth_macs_mean"],
                                    "depth_macs_fraction": r["depth_macs_fraction"], "miou": r["miou"],
                                    "path_histogram": {str(p): int(c) for p, c in
                                                       zip(paths, sweep_hist[bias].tolist())}})
    return report


def plot_sweep(report: Dict[str, object], png_path) -> None:
    """mIoU vs mean depth GMACs: the gate's bias sweep as a line, static modes as points (matplotlib Agg)."""
    from dynmm_edge._lazy import require

    mpl = require("matplotlib", "the sweep plot")
    mpl.use("Agg")
    plt = require("matplotlib.pyplot", "the sweep plot")
    from dynmm_edge.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 4))
    sweep = report.get("sweep") or []
    if sweep:
        pts = sorted(sweep, key=lambda s: s["depth_macs_mean"])
        ax.plot([p["depth_macs_mean"] / 1e9 for p in pts], [100 * p["miou"] for p in pts], "o-",
                label="dynamic (gate bias sweep)")
        for p in pts:
            ax.annotate(f"{p['bias']:+g}", (p["depth_macs_mean"] / 1e9, 100 * p["miou"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    modes = report["modes"]
    for mode, marker in (("rgb_only", "s"), ("full_depth", "D"), ("dynamic", "*")):
        m = modes[mode]
        ax.plot([m["depth_macs_mean"] / 1e9], [100 * m["miou"]], marker, markersize=9, label=mode)
    ax.set_xlabel("mean depth-encoder GMACs per frame")
    ax.set_ylabel("mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
