"""Evaluation of region mode against the static front (every fixed path and time-sharing two of them).

Every number comes from the eager model with true skipping: static path k runs depth stages 0..k-1;
region mode runs the dense depth stem and the tile stages on the active tiles only
(dynmm_edge.model.region.region_forward). Depth MACs of region mode count the dense stem, the tile
stages over their whole windows (halos included), the SE of stages 1..4 and the region gate.

Policies evaluated (masks per frame):
  gate:T     learned region gate, keep tiles with sigmoid(logit) > T
  share:F    learned region gate, keep the top F of tiles per frame
  entropy:F  training-free: top F of tiles by RGB-only prediction entropy (costs an extra RGB-only
             trunk pass, reported as extra_trunk_macs; its depth MACs are the same as share:F)
  oracle:F   top F of tiles by true per-tile gain (needs labels; an upper bound, not a policy)

Region mode's own static choices are measured too (`region_static`): no tile active (the depth stem
only) and every tile active (region execution's full depth). The region trunk is a copy fine-tuned
for sparse depth, so these can differ from static paths 1 and 5; the front every region policy is
judged against is the hull of BOTH sets (dense paths and region none/all), so no gain from the
fine-tuning alone can pass for a gain from gating.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch

from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion
from dynmm_edge.model.region import region_costs, region_depth_macs, region_forward
from dynmm_edge.tiles import TileGrid, tile_entropy, top_share
from dynmm_edge.train.evaluate import front_miou, front_points

DEFAULT_POLICIES = ("gate:0.5", "share:0.2", "share:0.3", "share:0.4", "entropy:0.3", "entropy:0.4", "oracle:0.3")
REGION_STATIC = {"none": "share:0", "all": "share:1"}  # region execution with no / every tile active


def _masks(policy: str, net, grid: TileGrid, rgb, depth, labels, gate_logits, cache: Dict) -> np.ndarray:
    """Tile masks of one batch; `cache` keeps the batch's entropy maps and oracle gains, so policies
    of the same kind at several shares cost one extra forward pass, not one each."""
    kind, _, value = policy.partition(":")
    v = float(value)
    if kind == "gate":
        return (torch.sigmoid(gate_logits) > v).numpy()
    if kind == "share":
        scores = gate_logits.numpy()
    elif kind == "entropy":
        if "entropy" not in cache:
            probs = torch.softmax(net(rgb, depth, path=min(net.paths)), 1).numpy()
            cache["entropy"] = np.stack([tile_entropy(probs[i], grid) for i in range(len(probs))])
        scores = cache["entropy"]
    elif kind == "oracle":
        if "oracle" not in cache:
            from dynmm_edge.train.region import tile_gain
            cache["oracle"] = tile_gain(net, rgb, depth, labels).numpy()
        scores = cache["oracle"]
    else:
        raise ValueError(f"region policy {policy!r}: expected gate:T, share:F, entropy:F or oracle:F")
    return np.stack([top_share(scores[i], v) for i in range(len(scores))])


@torch.no_grad()
def evaluate_region(net, dataset, class_names: Sequence[str], policies: Sequence[str] = DEFAULT_POLICIES,
                    batch_size: int = 8, main_policy: str = "gate:0.5", static=None,
                    progress: bool = False) -> Dict[str, object]:
    """{'static': {path: {...}}, 'region': {policy: {...}}, 'costs': table, 'front': [[cost, miou]...]}.

    `static` (path -> {miou, depth_macs_fraction}) from an eval that already ran every path skips
    running them again here."""""
    from dynmm_edge.model import costs

    net.eval()
    nc = int(net.config.num_classes)
    grid = net.region.grid
    table = region_costs(net)
    full = float(table["full_depth_macs"])
    path_macs = costs.depth_path_macs(net)
    policies = list(dict.fromkeys([main_policy, *policies, *REGION_STATIC.values()]))
    cm_static = {k: np.zeros((nc, nc), np.int64) for k in net.paths}
    cm_region = {p: np.zeros((nc, nc), np.int64) for p in policies}
    macs_region = {p: [] for p in policies}
    share_region = {p: [] for p in policies}
    kind_cm: Dict[str, np.ndarray] = {}  # the main policy per kind of frame: where does it spend?
    kind_macs: Dict[str, List[float]] = {}
    starts = range(0, len(dataset), batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f"region eval ({len(policies)} policies)", leave=False)
    for start in starts:
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        rgb = torch.stack([x["rgb"] for x in items])
        depth = torch.stack([x["depth"] for x in items])
        labels = torch.stack([x["labels"] for x in items])
        lab = labels.numpy()
        for k in (net.paths if static is None else ()):
            pred = net(rgb, depth, path=k).argmax(1).numpy()
            for b in range(len(items)):
                cm_static[k] += confusion_matrix(pred[b], lab[b], nc)
        gate_logits = net.region.gate(rgb, depth)
        cache: Dict = {}
        for p in policies:
            masks = _masks(p, net, grid, rgb, depth, labels, gate_logits, cache)
            pred = region_forward(net, rgb, depth, torch.from_numpy(masks.astype(np.float32))).argmax(1).numpy()
            for b in range(len(items)):
                cm_region[p] += confusion_matrix(pred[b], lab[b], nc)
                active = int(masks[b].sum())
                gate = 0 if p in REGION_STATIC.values() else table["gate_macs"]  # fixed choices need no gate
                macs_region[p].append(region_depth_macs(table, active) + gate)
                share_region[p].append(active / grid.count)
                if p == main_policy:
                    kind = items[b].get("kind", "all")
                    kind_cm[kind] = kind_cm.get(kind, 0) + confusion_matrix(pred[b], lab[b], nc)
                    kind_macs.setdefault(kind, []).append(macs_region[p][-1])
    if static is None:
        static = {}
        for k in net.paths:
            r = metrics_from_confusion(cm_static[k], class_names)
            static[str(k)] = {"miou": r["miou"], "depth_macs_mean": float(path_macs[k]),
                              "depth_macs_fraction": float(path_macs[k]) / full}
    measured = {}
    for p in policies:
        r = metrics_from_confusion(cm_region[p], class_names)
        measured[p] = {"miou": r["miou"], "depth_macs_mean": float(np.mean(macs_region[p])),
                       "depth_macs_fraction": float(np.mean(macs_region[p])) / full,
                       "active_tile_share": float(np.mean(share_region[p]))}
    region_static = {name: measured[p] for name, p in REGION_STATIC.items()}
    fixed = list(static.values()) + list(region_static.values())
    points = front_points([v["depth_macs_fraction"] for v in fixed], [v["miou"] for v in fixed])
    region = {}
    for p in policies:
        if p in REGION_STATIC.values() and p != main_policy:
            continue
        entry = dict(measured[p], front_miou=front_miou(points, measured[p]["depth_macs_fraction"]))
        entry["front_delta"] = entry["miou"] - entry["front_miou"]
        if p.startswith("entropy:"):
            entry["extra_trunk_macs"] = "one RGB-only trunk pass per frame (path 0) for the entropy map"
        region[p] = entry
    by_kind = {k: {"miou": metrics_from_confusion(kind_cm[k], class_names)["miou"],
                   "depth_macs_fraction": float(np.mean(kind_macs[k])) / full} for k in sorted(kind_cm)}
    return {"static": static, "region": region, "region_static": region_static, "region_policy": main_policy,
            "costs": table, "front": [list(pt) for pt in points], "frames": len(dataset), "by_kind": by_kind}


def add_region_report(report: Dict[str, object], net, dataset, class_names, batch_size: int = 8,
                      main_policy: str = "gate:0.5", progress: bool = False) -> Dict[str, object]:
    """eval hook: modes.region (main policy), static.<path> (kept if already present), region_policies."""
    r = evaluate_region(net, dataset, class_names, batch_size=batch_size, main_policy=main_policy,
                        static=report.get("static") or None, progress=progress)
    report.setdefault("static", {}).update({k: v for k, v in r["static"].items()
                                             if k not in report.get("static", {})})
    report.setdefault("modes", {})["region"] = dict(r["region"][main_policy], policy=main_policy)
    report["region_policies"] = r["region"]
    report["region_static"] = r["region_static"]
    for kind, entry in r["by_kind"].items():
        report.setdefault("by_kind", {}).setdefault(kind, {})["region"] = entry
    report["region_costs"] = r["costs"]
    report["static_front"] = r["front"]
    return report


@torch.no_grad()
def tiled_vs_dense(net, dataset, frames: int = 16) -> List[Dict[str, float]]:
    """Relative L2 difference between tile-stage features (all tiles active) and the dense depth features,
    per stage: what the halo choice costs in feature fidelity."""
    from dynmm_edge.model.region import sparse_depth_features

    items = [dataset[i] for i in range(min(frames, len(dataset)))]
    depth = torch.stack([x["depth"] for x in items])
    d0 = net.depth_stage(0, depth)
    tiled = sparse_depth_features(net, d0, torch.ones(len(items), net.region.grid.rows, net.region.grid.cols))
    dense, x = [], d0
    for i in range(1, 5):
        x = net.depth_stage(i, x)
        dense.append(x)
    return [{"stage": i + 1, "rel_l2": float((t - d).norm() / d.norm().clamp_min(1e-12)),
             "max_abs": float((t - d).abs().max())} for i, (t, d) in enumerate(zip(tiled, dense))]
