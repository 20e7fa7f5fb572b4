"""Export of the region branches and the manifest's optional `regions` section.

Branches (kind 'region'; not part of any frame path):
  region_gate    (rgb, depth)              -> tile_logits [1, rows, cols]
  region_stage_i (tile_in_i [N, C, wh, ww]) -> tile_out_i [N, C', oh, ow]   i = 1..4, N dynamic (tiles)
  region_trunk   (rgb, depth_feat_0, region_feat_1..4, tile_mask [1, rows, cols]) -> logits, labels
The dense depth stem (branch depth0, or stem for stem-gate models) produces depth_feat_0. Gather and
scatter between the tile stages happen in the runtime (dynmm_edge.tiles on numpy for ORT CPU).
Tile stages have only a dynamic batch dimension, so TensorRT builds them with one optimisation profile
whose min/opt/max span the manifest's buckets.
"""
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from dynmm_edge.model.region_split import RegionTrunk, region_branch_defs
from dynmm_edge.tiles import default_buckets, window_layout

REGION_SCHEMA = 1


def _params(net, name: str) -> int:
    """Parameters a region branch owns (the wrappers hold the whole net)."""
    head = net.region
    if name == "region_gate":
        mods = [head.gate]
    elif name == "region_trunk":
        mods = [head.trunk, head.se_depth]
    else:
        mods = [head.layers[int(name[-1]) - 1]]
    return sum(p.numel() for m in mods for p in m.parameters())


def region_examples(net, tiles: int = 2) -> Dict[str, torch.Tensor]:
    from dynmm_edge.model.region import STAGE_STRIDES, sparse_depth_features

    cfg, head = net.config, net.region
    g = torch.Generator().manual_seed(0)
    ex = {"rgb": torch.randn(1, 3, cfg.height, cfg.width, generator=g),
          "depth": torch.randn(1, 1, cfg.height, cfg.width, generator=g),
          "tile_mask": torch.ones(1, head.grid.rows, head.grid.cols)}
    with torch.no_grad():
        ex["depth_feat_0"] = net.depth_stage(0, ex["depth"])
        ex["tile_logits"] = head.gate(ex["rgb"], ex["depth"])
        feats = sparse_depth_features(net, ex["depth_feat_0"], ex["tile_mask"])
        for i in range(1, 5):
            ex[f"region_feat_{i}"] = feats[i - 1]
            _, _, wh, ww = window_layout(head.grid, STAGE_STRIDES[i - 1], head.halos[i - 1])
            c = ex["depth_feat_0"].shape[1] if i == 1 else head.channels[i - 2]
            ex[f"tile_in_{i}"] = torch.randn(tiles, c, wh, ww, generator=g)
            ex[f"tile_out_{i}"] = head.tile_stage(i, ex[f"tile_in_{i}"])
        ex["logits"] = RegionTrunk(net)(*[ex[n] for n in region_branch_defs(net)[-1][2]])[0]
        ex["labels"] = ex["logits"].argmax(1).to(torch.int32)
    return ex


def export_region(net, tmp: Path, opset: int, spec, say) -> Tuple[List[dict], dict]:
    """Write the region branch ONNX files into `tmp`; return (manifest branch entries, regions section)."""
    from dynmm_edge.export.exporter import stage_onnx
    from dynmm_edge.model.region import STAGE_STRIDES, region_costs

    examples = region_examples(net)
    table = region_costs(net)
    entries = []
    for name, module, inputs, outputs, dynamic in region_branch_defs(net):
        say(f"exporting region branch {name}")
        module.train(net.training)
        fp32 = stage_onnx(tmp, name, module, [examples[n] for n in inputs], inputs, outputs, opset, dynamic)
        # per call of batch 1: the gate and trunk per frame, a tile stage per tile (window, halos included)
        macs = {"region_gate": table["gate_macs"], "region_trunk": table["trunk_macs"],
                **{f"region_stage{i + 1}": m for i, m in enumerate(table["per_tile_stage_macs"])}}[name]
        entries.append({"name": name, "kind": "region", "segment": None, "precision": "fp32",
                        "variants": {"fp32": fp32},
                        "inputs": [spec(n, examples[n], dynamic) for n in inputs],
                        "outputs": [spec(n, examples[n], dynamic) for n in outputs],
                        "macs": int(macs), "params": _params(net, name)})
    head = net.region
    stem = "stem" if net.config.gate == "stem" else "depth0"
    stages = []
    for i in range(1, 5):
        mh, mw, wh, ww = window_layout(head.grid, STAGE_STRIDES[i - 1], head.halos[i - 1])
        stages.append({"branch": f"region_stage{i}", "input": f"tile_in_{i}", "output": f"tile_out_{i}",
                       "in_stride": STAGE_STRIDES[i - 1], "out_stride": STAGE_STRIDES[i], "halo": head.halos[i - 1],
                       "window": [wh, ww], "feature": f"region_feat_{i}"})
    regions = {"schema_version": REGION_SCHEMA, "tile": head.grid.tile, "rows": head.grid.rows,
               "cols": head.grid.cols, "halo_mode": net.config.region_halo,
               "gate": {"branch": "region_gate", "output": "tile_logits"},
               "stem": {"branch": stem, "output": "depth_feat_0"},
               "stages": stages,
               "trunk": {"branch": "region_trunk", "mask_input": "tile_mask"},
               "buckets": list(default_buckets(head.grid.count)),
               "macs": {k: table[k] for k in ("dense_macs", "per_tile_macs", "se_macs", "gate_macs",
                                              "full_depth_macs")}}
    return entries, regions
