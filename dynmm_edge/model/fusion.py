"""SE-add fusion with explicit skip semantics.

A skipped depth stage is expressed either as depth=None (true skipping, eager) or as zeros plus a
present flag p in {0,1} (one exported trunk graph for every path). Both forms give bit-identical
numbers because the flag enters only as p*a + (1-p)*b with finite a, b: 1*a + 0*b == a and
0*a + 1*b == b exactly in IEEE arithmetic.
"""
import torch.nn as nn

from dynmm_edge.model.blocks import SqueezeAndExcitation


class SqueezeAndExciteFusionAdd(nn.Module):
    def __init__(self, channels, reduction=16, activation="relu"):
        super().__init__()
        self.se_rgb = SqueezeAndExcitation(channels, reduction, activation)
        self.se_depth = SqueezeAndExcitation(channels, reduction, activation)

    def forward(self, rgb, depth=None, present=None, skip_mode="zero_depth"):
        """zero_depth: se_rgb(rgb) + present*se_depth(depth); rgb_passthrough:
        present*(se_rgb(rgb)+se_depth(depth)) + (1-present)*rgb. depth None -> depth absent."""
        if skip_mode == "zero_depth":
            out = self.se_rgb(rgb)
            if depth is None:
                return out
            d = self.se_depth(depth)
            return out + d if present is None else out + present * d
        if skip_mode == "rgb_passthrough":
            if depth is None:
                return rgb
            fused = self.se_rgb(rgb) + self.se_depth(depth)
            return fused if present is None else present * fused + (1.0 - present) * rgb
        raise ValueError(f"skip_mode {skip_mode!r} unknown")
