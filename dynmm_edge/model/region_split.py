"""Region branches cut from a DynMMNet with a region head: the modules export writes to ONNX and the
PyTorch backend runs directly (so both execute the same graph; see docs/REGIONS.md).
"""
from typing import List, Tuple

import torch
from torch import nn


class _RegionGate(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, rgb, depth):
        return self.net.region.gate(rgb, depth)


class _TileStage(nn.Module):
    def __init__(self, net, index):
        super().__init__()
        self.net, self.index = net, index

    def forward(self, x):
        return self.net.region.tile_stage(self.index, x)


class RegionTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, rgb, d0, f1, f2, f3, f4, tile_mask):
        from dynmm_edge.model.region import region_trunk
        logits = region_trunk(self.net, rgb, d0, [f1, f2, f3, f4], tile_mask)
        return logits, torch.argmax(logits, dim=1).to(torch.int32)


def region_branch_defs(net) -> List[Tuple[str, nn.Module, Tuple[str, ...], Tuple[str, ...], bool]]:
    """(name, module, inputs, outputs, dynamic tile batch) in execution order."""
    defs = [("region_gate", _RegionGate(net), ("rgb", "depth"), ("tile_logits",), False)]
    for i in range(1, 5):
        defs.append((f"region_stage{i}", _TileStage(net, i), (f"tile_in_{i}",), (f"tile_out_{i}",), True))
    defs.append(("region_trunk", RegionTrunk(net),
                 ("rgb", "depth_feat_0", "region_feat_1", "region_feat_2", "region_feat_3", "region_feat_4",
                  "tile_mask"), ("logits", "labels"), False))
    return defs
