"""Pyramid pooling context, exported without adaptive pooling (TensorRT has no such layer).

Names as ESANet's PyramidPoolingModule: features.N.0 (pool), features.N.1 (ConvBNAct), final_conv.

Two pooling modes (ModelConfig.context_pooling):
* 'adaptive' (ESANet's semantics, exact at any input size): bin i of n over a length L spans
  floor(i*L/n) .. ceil((i+1)*L/n), as torch's AdaptiveAvgPool2d. The bins are computed once for the
  model's fixed map size and pooled with explicit slices + ReduceMean, separably (rows then columns:
  a mean over a rectangle is the mean of its row means), so the ONNX has only Slice/ReduceMean/Concat,
  or a plain AveragePool when the bins tile the map evenly.
* 'fixed' (models trained before the mode existed, the shipped demo model among them): one
  AvgPool window of size map // bins, which equals 'adaptive' only when the map divides by each bin.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.model.blocks import ConvBNAct

POOLING_MODES = ("adaptive", "fixed")


def pooling_window(map_size: int, bins: int) -> int:
    """'fixed' mode: kernel (= stride) that gives about `bins` cells; clamped so tiny maps still work."""
    bins = max(1, min(bins, map_size))
    return max(1, map_size // bins)


def adaptive_bins(length: int, bins: int) -> List[Tuple[int, int]]:
    """(start, end) of each bin, exactly as torch's adaptive pooling: floor(i*L/n) .. ceil((i+1)*L/n)."""
    return [((i * length) // bins, -((-(i + 1) * length) // bins)) for i in range(bins)]


class AdaptiveBinPool(nn.Module):
    """AdaptiveAvgPool2d(bins) for one fixed input size, in a form the TensorRT ONNX parser accepts."""

    def __init__(self, map_size: Tuple[int, int], bins: int):
        super().__init__()
        h, w = map_size
        self.map_size, self.bins = (h, w), int(bins)
        self.rows, self.cols = adaptive_bins(h, self.bins), adaptive_bins(w, self.bins)
        self.even = h % self.bins == 0 and w % self.bins == 0  # bins tile the map: one AvgPool is exact

    def forward(self, x):
        if self.even:
            k = (self.map_size[0] // self.bins, self.map_size[1] // self.bins)
            return F.avg_pool2d(x, k, stride=k)
        x = torch.cat([x[:, :, a:b, :].mean(dim=2, keepdim=True) for a, b in self.rows], dim=2)
        return torch.cat([x[:, :, :, a:b].mean(dim=3, keepdim=True) for a, b in self.cols], dim=3)

    def extra_repr(self) -> str:
        return f"map_size={self.map_size}, bins={self.bins}"


class PyramidPoolingModule(nn.Module):
    def __init__(self, in_dim, out_dim, map_size: Tuple[int, int], bins: Sequence[int] = (1, 5),
                 activation="relu", upsampling="nearest", pooling="adaptive"):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling {pooling!r}: choose one of {', '.join(POOLING_MODES)}")
        self.map_size = tuple(int(v) for v in map_size)
        self.upsampling = upsampling
        reduction = max(1, in_dim // len(bins))
        h, w = self.map_size
        features = []
        for b in bins:
            if pooling == "adaptive":
                pool = AdaptiveBinPool(self.map_size, b)
            else:
                kernel = (pooling_window(h, b), pooling_window(w, b))
                pool = nn.AvgPool2d(kernel, stride=kernel)
            features.append(nn.Sequential(pool, ConvBNAct(in_dim, reduction, 1, activation=activation)))
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
