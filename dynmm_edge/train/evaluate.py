"""Evaluation of a DynMM model with the eager torch model and TRUE skipping, judged against the
static front.

Every frame is run on every path (depth stages >= k never executed for path k) and its confusion
matrix kept per path; the gate's logits are kept too. Everything else is arithmetic on those
records (`build_report`): the static front (each fixed path; time-sharing two paths gives the line
between them), the gate's own choice ('dynamic' = argmax), the bias sweep and the per-kind
breakdown. 'rgb_only' / 'full_depth' are the cheapest / largest path.

mIoU is a fraction in [0, 1]; classes absent from both prediction and ground truth (union 0) are
excluded from the mean; label 255 is ignored. JSON keys are documented in docs/TRAINING.md.

Bias (same rule as `run --policy bias:B` and `bench --bias B`, dynmm_edge.runtime.policy):
path = argmax_k log softmax(gate)_k + B * depth_cost_k; B > 0 = more depth, in nats per unit of
depth cost (fraction of full-depth MACs).
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion
from dynmm_edge.runtime.policy import biased_scores

MODES = ("dynamic", "rgb_only", "full_depth")


# ----------------------------------------------------------------------------- model helpers
def gate_logits_for(model, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Gate logits [B, len(paths)] for either gate kind (the stem gate needs the stage-0 features)."""
    return model.gate_forward(rgb, depth)[0]


def depth_macs_per_path(model) -> List[float]:
    """Depth-encoder MACs of each path in model.paths order (from dynmm_edge.model.costs)."""
    from dynmm_edge.model import costs

    raw = costs.depth_path_macs(model)
    return [float(raw[k]) for k in model.paths]


@torch.no_grad()
def _predict_paths(model, rgb, depth, paths_idx: torch.Tensor) -> torch.Tensor:
    """Run each group of samples with its own path (true skipping) -> predictions [B,H,W]."""
    out = torch.empty((rgb.shape[0],) + tuple(rgb.shape[2:]), dtype=torch.long)
    for pi in paths_idx.unique().tolist():
        sel = (paths_idx == pi).nonzero().flatten()
        logits = model(rgb[sel], depth[sel], path=int(model.paths[pi]))
        out[sel] = logits.argmax(1)
    return out


# ----------------------------------------------------------------------------- records
@dataclass
class EvalRecords:
    """Per frame: gate logits [N, P], confusion of every path [N, P, C, C], kind [N]."""
    logits: np.ndarray
    confusion: np.ndarray
    kinds: List[str]


@torch.no_grad()
def collect(model, dataset, batch_size: int = 8, progress: bool = False) -> EvalRecords:
    """Run every frame on every path (true skipping) and keep per-frame, per-path confusion matrices."""
    model.eval()
    nc, n_paths, n = int(model.config.num_classes), len(model.paths), len(dataset)
    logits = np.zeros((n, n_paths), np.float32)
    conf = np.zeros((n, n_paths, nc, nc), np.int64)
    kinds: List[str] = []
    it = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="eval", leave=False)
    for start in it:
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        rgb = torch.stack([x["rgb"] for x in items])
        depth = torch.stack([x["depth"] for x in items])
        labels = torch.stack([x["labels"] for x in items]).numpy()
        kinds += [str(x["kind"]) for x in items]
        logits[start:start + len(items)] = gate_logits_for(model, rgb, depth).float().numpy()
        for pi in range(n_paths):
            pred = _predict_paths(model, rgb, depth, torch.full((len(items),), pi, dtype=torch.long)).numpy()
            for b in range(len(items)):
                conf[start + b, pi] = confusion_matrix(pred[b], labels[b], nc)
    return EvalRecords(logits, conf, kinds)


# ----------------------------------------------------------------------------- the static front
def front_points(costs: Sequence[float], mious: Sequence[float]) -> List[tuple]:
    """Upper concave hull of the static paths' (cost, mIoU): the best any time-sharing of two
    static paths reaches. Sorted by cost."""
    pts = sorted(zip(map(float, costs), map(float, mious)))
    best: Dict[float, float] = {}
    for c, m in pts:
        best[c] = max(best.get(c, -1.0), m)
    hull: List[tuple] = []
    for p in sorted(best.items()):
        if hull and p[1] <= hull[-1][1]:
            continue  # costs more and is not better: dominated
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def front_miou(points: Sequence[tuple], cost: float) -> float:
    """mIoU of the static front at `cost` (linear between hull points; flat beyond the last one)."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return float(np.interp(cost, xs, ys))


# ----------------------------------------------------------------------------- the report
def _mode_entry(cm, mean_macs: float, full_macs: float, class_names, front=None) -> dict:
    r = metrics_from_confusion(cm, class_names)
    out = {"miou": r["miou"], "pixel_acc": r["pixel_acc"], "depth_macs_mean": float(mean_macs),
           "depth_macs_fraction": float(mean_macs) / full_macs, "per_class_iou": r["per_class_iou"]}
    if front is not None:
        out["front_miou"] = front_miou(front, out["depth_macs_fraction"])
        out["front_delta"] = out["miou"] - out["front_miou"]
    return out


def _chosen_entry(conf, choice, macs, full_macs, paths, class_names, front) -> dict:
    cm = conf[np.arange(len(choice)), choice].sum(0) if len(choice) else np.zeros(conf.shape[2:], np.int64)
    counts = np.bincount(choice, minlength=len(paths))
    mean = float(np.dot(counts, macs) / max(len(choice), 1))
    e = _mode_entry(cm, mean, full_macs, class_names, front)
    e["path_histogram"] = {str(p): int(c) for p, c in zip(paths, counts.tolist())}
    return e


def _section(conf, logits, macs, full_macs, paths, class_names) -> dict:
    """static, front and modes for one set of frames (all, or one kind)."""
    n_paths = len(paths)
    static = {}
    for k, p in enumerate(paths):
        static[str(p)] = _mode_entry(conf[:, k].sum(0), macs[k], full_macs, class_names)
    front = front_points([s["depth_macs_fraction"] for s in static.values()], [s["miou"] for s in static.values()])
    modes = {"dynamic": _chosen_entry(conf, logits.argmax(1), macs, full_macs, paths, class_names, front),
             "rgb_only": static[str(paths[0])], "full_depth": static[str(paths[n_paths - 1])]}
    return {"static": static, "front": [{"depth_macs_fraction": c, "miou": v} for c, v in front], "modes": modes}


def build_report(rec: EvalRecords, paths: Sequence[int], macs: Sequence[float], class_names: Sequence[str],
                 biases: Sequence[float] = ()) -> Dict[str, object]:
    """THE report (one place): static front, modes (dynamic + rgb_only/full_depth, each placed against
    the front), per kind, bias sweep. Region mode is added by train.region_eval.add_region_report."""
    paths, macs = list(paths), np.asarray(macs, np.float64)
    full_macs = float(macs.max()) if macs.max() > 0 else 1.0
    cost = macs / full_macs
    conf, logits = rec.confusion, rec.logits
    report: Dict[str, object] = {"frames": int(len(rec.kinds)), "num_classes": int(conf.shape[-1]), "paths": paths,
                                 "depth_macs_per_path": macs.tolist(), "depth_cost_per_path": cost.tolist(),
                                 "bias_unit": "nats per unit depth cost; > 0 = more depth"}
    report.update(_section(conf, logits, macs, full_macs, paths, class_names))
    kinds = np.asarray(rec.kinds)
    report["by_kind"] = {}
    for k in sorted(set(rec.kinds)):
        sel = kinds == k
        sec = _section(conf[sel], logits[sel], macs, full_macs, paths, class_names)
        report["by_kind"][k] = dict(sec["modes"], frames=int(sel.sum()),
                                    static={p: {"miou": s["miou"]} for p, s in sec["static"].items()})
    if biases:
        front = [(p["depth_macs_fraction"], p["miou"]) for p in report["front"]]
        report["sweep"] = []
        for b in biases:
            choice = biased_scores(logits, cost, b).argmax(1)
            e = _chosen_entry(conf, choice, macs, full_macs, paths, class_names, front)
            report["sweep"].append({"bias": float(b), **{k: e[k] for k in (
                "depth_macs_mean", "depth_macs_fraction", "miou", "front_delta", "path_histogram")}})
    return report


@torch.no_grad()
def evaluate(model, dataset, class_names: Sequence[str], batch_size: int = 8,
             biases: Sequence[float] = (), progress: bool = False) -> Dict[str, object]:
    """Evaluate every static path, the gate (dynamic) and optional biases on a dataset.

    Returns the report dict (see build_report and docs/TRAINING.md)."""
    rec = collect(model, dataset, batch_size, progress)
    return build_report(rec, model.paths, depth_macs_per_path(model), class_names, [float(b) for b in biases])


def plot_sweep(report: Dict[str, object], png_path) -> None:
    """mIoU vs mean depth GMACs: the static front, the gate's bias sweep, the modes (matplotlib Agg)."""
    from dynmm_edge._lazy import require

    mpl = require("matplotlib", "the sweep plot")
    mpl.use("Agg")
    plt = require("matplotlib.pyplot", "the sweep plot")
    from dynmm_edge.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 4))
    full = max(report["depth_macs_per_path"]) / 1e9
    front = report.get("front") or []
    if front:
        ax.plot([p["depth_macs_fraction"] * full for p in front], [100 * p["miou"] for p in front], "k--",
                lw=1, label="static front (time-sharing)")
    for p, s in (report.get("static") or {}).items():
        ax.plot([s["depth_macs_mean"] / 1e9], [100 * s["miou"]], "ko", ms=4)
        ax.annotate(f"path {p}", (s["depth_macs_mean"] / 1e9, 100 * s["miou"]), fontsize=6, xytext=(2, -8),
                    textcoords="offset points")
    sweep = report.get("sweep") or []
    if sweep:
        pts = sorted(sweep, key=lambda s: s["depth_macs_mean"])
        ax.plot([p["depth_macs_mean"] / 1e9 for p in pts], [100 * p["miou"] for p in pts], "o-",
                label="gate + bias B (nats per unit depth cost)")
        for p in pts:
            ax.annotate(f"{p['bias']:+g}", (p["depth_macs_mean"] / 1e9, 100 * p["miou"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    for mode, m in report["modes"].items():
        if mode not in ("rgb_only", "full_depth"):
            ax.plot([m["depth_macs_mean"] / 1e9], [100 * m["miou"]], "*", markersize=11, label=mode)
    ax.set_xlabel("mean depth-encoder GMACs per frame")
    ax.set_ylabel("mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
