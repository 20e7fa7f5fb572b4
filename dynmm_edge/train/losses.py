"""Training losses for DynMM: class-weighted CE, the resource loss and the straight-through gate.

The resource loss works on a *normalised* cost: expected depth-encoder MACs as a fraction of the
full-depth path (0 = RGB only, 1 = every depth stage). That keeps `budget` and `lambda` meaningful
across model sizes and input resolutions (the paper's lambda=1e-4 on raw GMACs is not portable).
"""
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def class_weights_from_counts(counts, num_classes: int, c: float = 1.02) -> torch.Tensor:
    """ENet-style weights 1/ln(c + freq): rare classes count more, weights bounded by 1/ln(c).

    Classes that never occur get weight 0 (they cannot be learned and must not dominate the mean);
    the others are scaled to mean 1 so the loss scale does not depend on the class set.
    """
    counts = np.asarray(counts, dtype=np.float64)[:num_classes]
    if counts.shape[0] < num_classes:
        counts = np.pad(counts, (0, num_classes - counts.shape[0]))
    total = counts.sum()
    if total <= 0:
        return torch.ones(num_classes, dtype=torch.float32)
    freq = counts / total
    w = 1.0 / np.log(c + freq)
    present = counts > 0
    w[~present] = 0.0
    w[present] /= w[present].mean()
    return torch.tensor(w, dtype=torch.float32)


def label_counts(label_arrays, num_classes: int) -> np.ndarray:
    """Pixel counts per class over uint8 label maps, ignoring 255 (and any id >= num_classes)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for lab in label_arrays:
        b = np.bincount(np.asarray(lab).ravel(), minlength=256)
        counts += b[:num_classes]
    return counts


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Cross-entropy over [B,C,H,W] logits and [B,H,W] int64 labels (255 = ignore).

    Returns 0 (with a graph) when a batch has no labelled pixel, instead of NaN.
    """
    if (labels != IGNORE_INDEX).any():
        return F.cross_entropy(logits, labels, weight=weights, ignore_index=IGNORE_INDEX)
    return logits.sum() * 0.0


def normalised_path_costs(depth_path_macs: Sequence[float]) -> torch.Tensor:
    """Per-path depth MACs divided by the most expensive path -> values in [0, 1]."""
    t = torch.tensor([float(m) for m in depth_path_macs], dtype=torch.float32)
    top = float(t.max())
    return t / top if top > 0 else t


def expected_cost(probs: torch.Tensor, path_costs: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of sum_k p_k * cost_k (probs: [B,P] softmax of the gate)."""
    return (probs * path_costs.to(probs)).sum(dim=1).mean()


def resource_loss(probs: torch.Tensor, path_costs: torch.Tensor, budget: float,
                  lam: float) -> torch.Tensor:
    """lambda * relu(expected normalised depth cost - budget): no pressure once under budget."""
    return lam * F.relu(expected_cost(probs, path_costs) - float(budget))


def straight_through(logits: torch.Tensor, temperature: float, gumbel: bool = False,
                     generator: Optional[torch.Generator] = None):
    """Hard one-hot forward, soft softmax(logits/T) backward.

    Returns (hard_st [B,P], soft [B,P]). gumbel=True adds Gumbel(0,1) noise before the softmax
    (exploration early in stage II); the noise uses `generator` so runs are reproducible.
    """
    t = max(float(temperature), 1e-6)
    z = logits
    if gumbel:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).to(logits.device)
        z = logits - torch.log((-torch.log(u.clamp(1e-9, 1 - 1e-7))).clamp_min(1e-9))
    soft = F.softmax(z / t, dim=1)
    index = soft.argmax(dim=1, keepdim=True)
    hard = torch.zeros_like(soft).scatter_(1, index, 1.0)
    return hard - soft.detach() + soft, soft
