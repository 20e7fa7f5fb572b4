"""Pyramid pooling context with fixed pooling windows (TensorRT has no adaptive pooling).

Names as ESANet's PyramidPoolingModule: features.N.0 (pool), features.N.1 (ConvBNAct), final_conv.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.model.blocks import ConvBNAct


def pooling_window(map_size: int, bins: int) -> int:
    """Kernel (= stride) that gives about `bins` cells over `map_size`; clamped so tiny maps still work."""
    bins = max(1, min(bins, map_size))
    return max(1, map_size // bins)


class PyramidPoolingModule(nn.Module):
    def __init__(self, in_dim, out_dim, map_size: Tuple[int, int], bins: Sequence[int] = (1, 5),
                 activation="relu", upsampling="nearest"):
        super().__init__()
        self.map_size = tuple(int(v) for v in map_size)
        self.upsampling = upsampling
        reduction = max(1, in_dim // len(bins))
        h, w = self.map_size
        features = []
        for b in bins:
            kernel = (pooling_window(h, b), pooling_window(w, b))
            features.append(nn.Sequential(nn.AvgPool2d(kernel, stride=kernel),
                                          ConvBNAct(in_dim, reduction, 1, activation=activation)))
        self.features = nn.ModuleList(features)
        self.final_conv = ConvBNAct(in_dim + reduction * len(bins), out_dim, 1, activation=activation)

    def forward(self, x):
        if not torch.jit.is_tracing() and tuple(x.shape[2:]) != self.map_size:
            raise ValueError(f"context module built for a {self.map_size} map (input size / 32) "
                             f"got {tuple(x.shape[2:])}; rebuild the model for this input size")
        out = [x]
        for f in self.features:
            y = f(x)
            if self.upsampling == "nearest":
                out.append(F.interpolate(y, size=self.map_size, mode="nearest"))
            else:
                out.append(F.interpolate(y, size=self.map_size, mode="bilinear", align_corners=False))
        return self.final_conv(torch.cat(out, 1))
