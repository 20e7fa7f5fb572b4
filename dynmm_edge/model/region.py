"""Region-level depth gating: depth stages 1..4 run only on the tiles a per-tile gate keeps.

Layout (model.config.region_tile = T px, a multiple of 32 dividing the input):
  region gate   small CNN on the 1/4-downsampled RGB + depth (or, region_gate_cues, on the frame-quality
                cue maps: holes, noise, depth edges without RGB edges...) -> one keep logit per T x T tile
  depth stem    depth stage 0 runs dense (4-5 % of depth MACs) and feeds fusion 0 as usual
  tile stages   copies of depth stages 1..4 (+ their SE) run on a batch of active tiles; each stage
                gathers windows (tile + halo at that stage's input resolution), crops and scatters
  fusion i>=1   se_rgb(rgb_i) + SE_depth(sparse depth_i), the SE pooling a MASKED mean (sum over the
                active area / active area): inactive tiles add exactly nothing, and the pooled
                statistic does not shrink with the active share. Training, export and runtime all
                call masked_se_depth below.
The tile stages are copies (initialised from the dense depth stages) so fine-tuning them for tiled
execution leaves every static path and the frame gate bit-identical.

Halo 'exact' = each stage's receptive-field radius (so with every tile active, or with dense input,
an active tile equals the dense features); 'none' = each tile runs on its own (zero padding at tile
borders: seams, which the region training stage teaches the tile stages to live with).
"""
import copy
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dynmm_edge.model.blocks import ConvBNAct
from dynmm_edge.tiles import TileGrid, window_layout, window_origins

Tensor = torch.Tensor
TILE_STAGES = (1, 2, 3, 4)
STAGE_STRIDES = (2, 4, 8, 16, 32)  # output stride of depth stages 0..4
TRUNK_MODULES = ("encoder_rgb", "se_layer0", "se_layer1", "se_layer2", "se_layer3", "se_layer4", "skip_layer1",
                 "skip_layer2", "skip_layer3", "context_module", "decoder")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def stage_halo(stage: nn.Module, with_maxpool: bool) -> int:
    """Receptive-field radius (px at the stage's input resolution, rounded up to even) of one encoder
    stage along its main path; 1x1 shortcut convs never widen it."""
    ops: List[Tuple[Tuple[int, int], Tuple[int, int]]] = []
    if with_maxpool:
        ops.append(((3, 3), (2, 2)))
    for name, m in stage.named_modules():
        if isinstance(m, nn.Conv2d) and "downsample" not in name:
            ops.append((_pair(m.kernel_size), _pair(m.stride)))
    radius = [0, 0]
    for kernel, stride in reversed(ops):
        for d in range(2):
            radius[d] = radius[d] * stride[d] + kernel[d] // 2
    r = max(radius)
    return r + (r % 2)


class RegionGate(nn.Module):
    """Keep logit per tile from the 1/4-downsampled RGB + depth (3 stride-2 convs to 1/32, tile pooling).

    forward = score(inputs(rgb, depth)): the region stage caches the small input maps, not whole frames."""
    in_channels = 4

    def __init__(self, tile: int, channels: Tuple[int, int] = (16, 32)):
        super().__init__()
        self.tile = int(tile)
        c1, c2 = channels
        self.body = nn.Sequential(ConvBNAct(self.in_channels, c1, 3, stride=2), ConvBNAct(c1, c2, 3, stride=2),
                                  ConvBNAct(c2, c2, 3, stride=2))
        self.head = nn.Conv2d(self._head_channels(c2), 1, 1)

    def _head_channels(self, c2: int) -> int:
        return c2

    def forward(self, rgb: Tensor, depth: Tensor) -> Tensor:
        """[B, rows, cols] keep logits."""
        return self.score(self.inputs(rgb, depth))

    @staticmethod
    def inputs(rgb: Tensor, depth: Tensor) -> Tensor:
        return F.avg_pool2d(torch.cat([rgb, depth], 1), 4)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def score(self, x: Tensor) -> Tensor:
        x = self.features(x)
        k = self.tile // 32
        if k > 1:
            x = F.avg_pool2d(x, k)
        return self.head(x)[:, 0]


class CueRegionGate(RegionGate):
    """Keep logit per tile from the cue maps at 1/4 (model/gate.py frame_cues): the gain of depth sits where
    depth edges have no RGB edge (camouflage) or the image is dark, which raw pixels show only indirectly.
    The head also reads each 32-px cell's mean cues directly (a shortcut past the convs)."""
    in_channels = 10  # len(model.gate.CUE_NAMES)

    def _head_channels(self, c2: int) -> int:
        return c2 + self.in_channels

    @staticmethod
    def inputs(rgb: Tensor, depth: Tensor) -> Tensor:
        from dynmm_edge.model.gate import frame_cues

        return frame_cues(rgb, depth, 4)

    def features(self, cues: Tensor) -> Tensor:
        return torch.cat([self.body(cues), F.avg_pool2d(cues, 8)], 1)


class RegionHead(nn.Module):
    """Region gate + tile copies of depth stages 1..4 and their SE (see module docstring)."""

    def __init__(self, net):
        super().__init__()
        cfg = net.config
        self.grid = TileGrid(cfg.region_tile, cfg.height, cfg.width)
        self.gate = (CueRegionGate if cfg.region_gate_cues else RegionGate)(cfg.region_tile)
        enc = net.encoder_depth
        self.layers = nn.ModuleList(copy.deepcopy(getattr(enc, f"layer{i}")) for i in TILE_STAGES)
        self.se_depth = nn.ModuleList(copy.deepcopy(getattr(net, f"se_layer{i}").se_depth) for i in TILE_STAGES)
        # region mode's own trunk (RGB encoder, fusions' RGB side, skips, context, decoder): the dense trunk
        # never saw spatially sparse depth; a copy fine-tuned for it keeps every static path bit-identical
        self.trunk = nn.ModuleDict({name: copy.deepcopy(getattr(net, name)) for name in TRUNK_MODULES})
        self.channels = tuple(enc.stage_channels[i] for i in TILE_STAGES)
        exact = cfg.region_halo == "exact"
        self.halos = tuple(stage_halo(layer, i == 1) if exact else 0 for i, layer in zip(TILE_STAGES, self.layers))

    @torch.no_grad()
    def copy_from_dense(self, net) -> None:
        """Tile stages := the dense depth stages (a fresh start for fine-tuning; exact-halo tests)."""
        for j, i in enumerate(TILE_STAGES):
            self.layers[j].load_state_dict(getattr(net.encoder_depth, f"layer{i}").state_dict())
            self.se_depth[j].load_state_dict(getattr(net, f"se_layer{i}").se_depth.state_dict())
        for name in TRUNK_MODULES:
            self.trunk[name].load_state_dict(getattr(net, name).state_dict())

    def tile_stage(self, i: int, x: Tensor) -> Tensor:
        """Depth stage i (1..4) on a batch of windows; stage 1 includes the max pool, as the encoder."""
        if i == 1:
            x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        return self.layers[i - 1](x)


# ----------------------------------------------------------------------------- masks and SE
def expand_mask(mask: Tensor, grid: TileGrid, stride: int) -> Tensor:
    """[B, rows, cols] tile mask -> [B, 1, H/stride, W/stride] (each tile repeated; Expand+Reshape in ONNX)."""
    t = grid.tile // stride
    b = mask.shape[0]
    m = mask.reshape(b, grid.rows, 1, grid.cols, 1).expand(b, grid.rows, t, grid.cols, t)
    return m.reshape(b, 1, grid.rows * t, grid.cols * t)


def masked_se_depth(se: nn.Module, x: Tensor, pixel_mask: Tensor) -> Tensor:
    """SE on a sparse depth map: x * fc(sum(x * m) / area(m)); zero where (and when) nothing is active."""
    x = x * pixel_mask
    # sum/area written as mean/mean: ReduceMean is in every TensorRT parser's op set (ReduceSum is not checked)
    share = pixel_mask.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)  # no tile: x is 0, so pooled is 0
    pooled = x.mean(dim=(2, 3), keepdim=True) / share
    return x * se.fc(pooled)


# ----------------------------------------------------------------------------- tiled depth stages
def _tiles_of(x: Tensor, t: int) -> Tensor:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // t, t, w // t, t).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, t, t)


def _untile(y: Tensor, b: int, rows: int, cols: int) -> Tensor:
    n, c, t, _ = y.shape
    return y.reshape(b, rows, cols, c, t, t).permute(0, 3, 1, 4, 2, 5).reshape(b, c, rows * t, cols * t)


def _tiled_no_halo(head: RegionHead, d0: Tensor, mask: Tensor) -> List[Tensor]:
    """Halo 0: every tile runs stages 1..4 on its own, chained (= per-stage gather/scatter with halo 0)."""
    g, b = head.grid, d0.shape[0]
    idx = (mask.reshape(-1) > 0.5).nonzero(as_tuple=True)[0]
    x = _tiles_of(d0, g.tile // STAGE_STRIDES[0]).index_select(0, idx)
    feats = []
    for i in TILE_STAGES:
        x = head.tile_stage(i, x)
        full = x.new_zeros((b * g.count,) + tuple(x.shape[1:])).index_copy(0, idx, x)
        feats.append(_untile(full, b, g.rows, g.cols))
    return feats


def _tiled_with_halo(head: RegionHead, d0: Tensor, mask: Tensor) -> List[Tensor]:
    """Per-stage gather (windows with halo, shifted inside the map) -> stage -> crop -> scatter."""
    g = head.grid
    feats, x = [], d0
    for j, (i, halo) in enumerate(zip(TILE_STAGES, head.halos)):
        s_in, s_out = STAGE_STRIDES[i - 1], STAGE_STRIDES[i]
        _, _, wh, ww = window_layout(g, s_in, halo)
        t, f = g.tile // s_out, s_out // s_in
        outs = []
        for b in range(x.shape[0]):
            ids = np.flatnonzero(mask[b].reshape(-1).detach().cpu().numpy() > 0.5)
            org = window_origins(g, ids, s_in, halo)
            y_map = None
            if len(ids):
                win = torch.stack([x[b, :, wy:wy + wh, wx:wx + ww] for wy, wx, _, _ in org])
                y = head.tile_stage(i, win)
                y_map = y.new_zeros((y.shape[1], g.height // s_out, g.width // s_out))
                for n, (wy, wx, ty, tx) in enumerate(org):
                    oy, ox = (ty - wy) // f, (tx - wx) // f
                    y_map[:, ty // f:ty // f + t, tx // f:tx // f + t] = y[n, :, oy:oy + t, ox:ox + t]
            outs.append(y_map)
        c, hw = head.channels[j], (g.height // s_out, g.width // s_out)
        x = torch.stack([o if o is not None else x.new_zeros((c,) + hw) for o in outs])
        feats.append(x)
    return feats


def sparse_depth_features(net, d0: Tensor, mask: Tensor) -> List[Tensor]:
    """Depth features 1..4 computed only on active tiles (zeros elsewhere). mask [B, rows, cols] 0/1."""
    head = net.region
    if all(h == 0 for h in head.halos):
        return _tiled_no_halo(head, d0, mask)
    return _tiled_with_halo(head, d0, mask)


# ----------------------------------------------------------------------------- forwards
def region_trunk(net, rgb: Tensor, depth0: Tensor, sparse: Sequence[Tensor], mask: Tensor) -> Tensor:
    """Region mode's trunk (the region head's copy): dense depth stem at fusion 0, sparse depth maps 1..4
    with masked-mean SE at fusions 1..4, then context and decoder (exported as-is)."""
    head = net.region
    t = head.trunk
    f = t["se_layer0"](t["encoder_rgb"].forward_stage(0, rgb), depth0)
    fused = [f]
    for j, i in enumerate(TILE_STAGES):
        r = t[f"se_layer{i}"].se_rgb(t["encoder_rgb"].forward_stage(i, f))
        f = r + masked_se_depth(head.se_depth[j], sparse[j], expand_mask(mask.to(r.dtype), head.grid, STAGE_STRIDES[i]))
        fused.append(f)
    out = t["context_module"](fused[4])
    return t["decoder"](out, t["skip_layer3"](fused[3]), t["skip_layer2"](fused[2]), t["skip_layer1"](fused[1]))


def region_forward(net, rgb: Tensor, depth: Tensor, mask: Tensor) -> Tensor:
    """Logits with depth stages 1..4 run on the active tiles of mask [B, rows, cols] only."""
    check_region_model(net)
    g = net.region.grid
    mask = torch.as_tensor(mask).to(rgb.device).float()
    if mask.dim() != 3 or tuple(mask.shape[1:]) != (g.rows, g.cols) or mask.shape[0] != rgb.shape[0]:
        raise ValueError(f"tile mask must be [B={rgb.shape[0]}, {g.rows}, {g.cols}], got {tuple(mask.shape)}")
    d0 = net.depth_stage(0, depth)
    return region_trunk(net, rgb, d0, sparse_depth_features(net, d0, mask), mask)


def check_region_model(net) -> None:
    if getattr(net, "region", None) is None:
        raise ValueError("this model has no region gate (config.region_tile = 0); train one with "
                         "`dynmm-edge train --stage region --init-from CKPT`")


# ----------------------------------------------------------------------------- costs
def region_costs(net) -> Dict[str, object]:
    """Depth MACs of region mode, counted honestly: dense stem (+ its SE), per active tile the tile stages
    over their whole windows (halos included), SE of stages 1..4 once per frame, and the region gate."""
    from dynmm_edge.model import costs

    check_region_model(net)
    g, head = net.region.grid, net.region
    mods = costs.module_macs(net)
    branches = costs.branch_macs(net)
    stage_tile, windows = [], []
    se = 0
    for j, i in enumerate(TILE_STAGES):
        stage = sum(v for k, v in mods.items() if k.startswith(f"encoder_depth.layer{i}."))
        se += sum(v for k, v in mods.items() if k.startswith(f"se_layer{i}.se_depth."))
        mh, mw, wh, ww = window_layout(g, STAGE_STRIDES[i - 1], head.halos[j])
        stage_tile.append(stage * (wh * ww) / (mh * mw))
        windows.append([wh, ww])
    gate = _gate_macs(net)
    full = sum(branches[f"depth{i}"] for i in range(5))
    se0 = sum(v for k, v in mods.items() if k.startswith("se_layer0.se_depth."))
    return {"tile": g.tile, "rows": g.rows, "cols": g.cols, "tiles": g.count, "halos": list(head.halos),
            "windows": windows, "dense_macs": int(branches["depth0"]), "per_tile_macs": float(sum(stage_tile)),
            "per_tile_stage_macs": [float(m) for m in stage_tile], "se_macs": int(se), "gate_macs": int(gate),
            "full_depth_macs": int(full),
            # the region trunk: the dense trunk + both SE of fusion 0 + the masked depth SE of fusions 1..4
            "trunk_macs": int(branches["trunk"] + se0 + se)}


def region_depth_macs(table: Dict[str, object], active: int) -> float:
    """Depth MACs of one frame with `active` tiles (0 active: the stem only)."""
    if active <= 0:
        return float(table["dense_macs"])
    return float(table["dense_macs"]) + active * float(table["per_tile_macs"]) + float(table["se_macs"])


def _gate_macs(net) -> int:
    from dynmm_edge.model.costs import _module_macs

    total = [0]
    hooks = [m.register_forward_hook(lambda mod, i, o: total.__setitem__(0, total[0] + _module_macs(mod, i, o)))
             for m in net.region.gate.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    try:
        with torch.no_grad():
            p = next(net.parameters())
            net.region.gate(torch.zeros(1, 3, net.config.height, net.config.width, dtype=p.dtype),
                            torch.zeros(1, 1, net.config.height, net.config.width, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
    return total[0]
