"""Cut a DynMMNet into branch modules and the branch graph the runtime executes.

Branches (tensor names are the contract with the runtime):
  raw gate : gate(rgb, depth) -> gate_logits ; depth{i}(x) -> depth_feat_i ;
             trunk(rgb, depth_feat_0..4, depth_present) -> logits, labels
  stem gate: stem(rgb, depth) -> fused_0, depth_feat_0 ; gate(fused_0, depth_feat_0) -> gate_logits ;
             depth{i}(depth_feat_{i-1}) -> depth_feat_i (i >= 1) ;
             trunk(fused_0, depth_feat_1..4, depth_present) -> logits, labels
A skipped depth segment's feature enters the trunk as zeros with depth_present[i] = 0; the trunk's
fusion then reproduces exactly what the eager model computes when the segment is not executed.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import nn

NUM_STAGES = 5


@dataclass(frozen=True)
class BranchDef:
    name: str
    kind: str
    module: nn.Module
    input_names: Tuple[str, ...]
    output_names: Tuple[str, ...]
    segment: int = None


class GateBranch(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, a, b):
        return self.net.gate_logits(a, b)


class DepthSegment(nn.Module):
    def __init__(self, net, index: int):
        super().__init__()
        self.net, self.index = net, index

    def forward(self, x):
        return self.net.depth_stage(self.index, x)


class StemBranch(nn.Module):
    """Stem-gate models: RGB stem, depth stem and fusion 0 run before the gate."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, rgb, depth):
        return self.net.stem(rgb, depth)


class Trunk(nn.Module):
    """RGB encoder + fusion + context + decoder; depth features arrive as inputs with presence flags."""

    def __init__(self, net, first_stage: int, with_labels: bool = True):
        super().__init__()
        self.net, self.first_stage, self.with_labels = net, first_stage, with_labels

    def forward(self, x, *rest):
        *depth_feats, present = rest
        net = self.net
        fused: List[torch.Tensor] = []
        if self.first_stage == 0:
            f = net.fuse(0, net.rgb_stage(0, x), depth_feats[0], present[0].reshape(1, 1, 1, 1))
            depth_feats = depth_feats[1:]
        else:  # x is fused_0 (stem gate)
            f = x
        fused.append(f)
        for i, d in zip(range(1, NUM_STAGES), depth_feats):
            f = net.fuse(i, net.rgb_stage(i, f), d, present[i].reshape(1, 1, 1, 1))
            fused.append(f)
        logits = net.decode(fused)
        if not self.with_labels:
            return logits
        return logits, torch.argmax(logits, dim=1).to(torch.int32)


def split_model(net) -> Tuple[List[BranchDef], Dict[int, Tuple[str, ...]], Dict[str, int]]:
    """Return (branches in execution order, path -> branch names, zero-input tensor -> present index)."""
    placement = net.config.gate
    feats = [f"depth_feat_{i}" for i in range(NUM_STAGES)]
    branches: List[BranchDef] = []
    if placement == "raw":
        branches.append(BranchDef("gate", "gate", GateBranch(net), ("rgb", "depth"), ("gate_logits",)))
        prev = "depth"
        for i in range(NUM_STAGES):
            branches.append(BranchDef(f"depth{i}", "depth", DepthSegment(net, i), (prev,), (feats[i],), i))
            prev = feats[i]
        branches.append(BranchDef("trunk", "trunk", Trunk(net, 0), ("rgb", *feats, "depth_present"),
                                  ("logits", "labels")))
        paths = {k: ("gate", *[f"depth{i}" for i in range(k)], "trunk") for k in net.paths}
        zero_inputs = {feats[i]: i for i in range(NUM_STAGES)}
    elif placement == "stem":
        branches.append(BranchDef("stem", "stem", StemBranch(net), ("rgb", "depth"), ("fused_0", feats[0]), 0))
        branches.append(BranchDef("gate", "gate", GateBranch(net), ("fused_0", feats[0]), ("gate_logits",)))
        for i in range(1, NUM_STAGES):
            branches.append(BranchDef(f"depth{i}", "depth", DepthSegment(net, i), (feats[i - 1],), (feats[i],), i))
        branches.append(BranchDef("trunk", "trunk", Trunk(net, 1), ("fused_0", *feats[1:], "depth_present"),
                                  ("logits", "labels")))
        paths = {k: ("stem", "gate", *[f"depth{i}" for i in range(1, k)], "trunk") for k in net.paths}
        zero_inputs = {feats[i]: i for i in range(1, NUM_STAGES)}
    else:
        raise ValueError(f"unknown gate placement {placement!r}")
    # wrappers start in training mode; the ONNX exporter restores a module's mode afterwards,
    # which would silently switch the shared net back to training (BatchNorm batch statistics)
    training = net.training
    for b in branches:
        b.module.train(training)
    return branches, paths, zero_inputs


def example_inputs(net, branches: List[BranchDef], batch: int = 1, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Named example tensors for every branch input, produced by running the branches in order."""
    cfg = net.config
    g = torch.Generator().manual_seed(seed)
    tensors = {"rgb": torch.randn(batch, 3, cfg.height, cfg.width, generator=g),
               "depth": torch.randn(batch, 1, cfg.height, cfg.width, generator=g),
               "depth_present": torch.ones(NUM_STAGES)}
    with torch.no_grad():
        for b in branches:
            out = b.module(*[tensors[n] for n in b.input_names])
            out = out if isinstance(out, tuple) else (out,)
            tensors.update(dict(zip(b.output_names, out)))
    return tensors
