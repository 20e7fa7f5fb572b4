"""DynMMNet: ESANet-style RGB-D segmentation with a gate that really skips depth stages.

Path k means depth stages 0..k-1 run; the fusions i >= k see no depth. With an int path the
skipped depth stages are never called (no compute, no blend), which is the point of this SDK: the
released DynMM code always runs both encoders and only blends.

Three equivalent ways to express "stage i skipped" (tests hold them equal):
  eager:       depth_feats[i] = None                          (forward(path=k))
  flag:        depth_feats[i] = zeros, present[i] = 0          (the exported trunk, one graph for all paths)
  blend:       present[i] = sum of path weights that use stage i (forward_blend, straight-through training)
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from dynmm_edge.model.blocks import ConvBNAct
from dynmm_edge.model.config import NUM_DEPTH_STAGES, ModelConfig
from dynmm_edge.model.context import PyramidPoolingModule
from dynmm_edge.model.decoder import Decoder
from dynmm_edge.model.encoders import ResNetEncoder
from dynmm_edge.model.fusion import SqueezeAndExciteFusionAdd
from dynmm_edge.model.gate import CueGate, RawGate, StemGate

Tensor = torch.Tensor


def _skip(channels_in, channels_out, activation):
    # ESANet: a 1x1 ConvBNAct only when channels differ, else an empty Sequential (identity)
    if channels_in == channels_out:
        return nn.Sequential()
    return nn.Sequential(ConvBNAct(channels_in, channels_out, 1, activation=activation))


class DynMMNet(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"DynMMNet needs a ModelConfig, got {type(config).__name__}")
        self.config = config
        act = config.activation
        self.encoder_rgb = ResNetEncoder(config.encoder, config.block, config.width_mult, 3, act)
        self.encoder_depth = ResNetEncoder(config.encoder, config.block, config.width_mult, 1, act)
        ch = self.encoder_rgb.stage_channels
        for i in range(NUM_DEPTH_STAGES):
            setattr(self, f"se_layer{i}", SqueezeAndExciteFusionAdd(ch[i], config.se_reduction, act))
        dec = config.decoder_channels
        self.skip_layer1 = _skip(ch[1], dec[2], act)
        self.skip_layer2 = _skip(ch[2], dec[1], act)
        self.skip_layer3 = _skip(ch[3], dec[0], act)
        if config.context == "ppm":
            self.context_module = PyramidPoolingModule(ch[4], dec[0], (config.height // 32, config.width // 32),
                                                       config.context_bins, act, config.context_upsampling,
                                                       config.context_pooling)
            context_out = dec[0]
        else:
            self.context_module = nn.Identity()
            context_out = ch[4]
        self.decoder = Decoder(context_out, dec, config.decoder_blocks, config.num_classes, act, config.upsampling)
        if config.gate == "raw" and config.gate_cues:
            self.gate = CueGate(config.gate_downsample, config.gate_channels, len(config.paths))
        elif config.gate == "raw":
            self.gate = RawGate(4, config.gate_downsample, config.gate_channels, len(config.paths))
        else:
            self.gate = StemGate(2 * ch[0], config.gate_channels[0], len(config.paths))
        # region-level depth gating (dynmm_edge.model.region); None for frame-gate-only models
        self.region = None
        if config.region_tile:
            from dynmm_edge.model.region import RegionHead
            self.region = RegionHead(self)

    # ---- description -------------------------------------------------------------------------
    @property
    def paths(self) -> Tuple[int, ...]:
        return self.config.paths

    @property
    def stage_channels(self) -> Tuple[int, ...]:
        return self.encoder_depth.stage_channels

    def depth_feature_shapes(self, batch: int = 1) -> List[Tuple[int, int, int, int]]:
        """Shapes of depth_feat_0..4 (the tensors between depth engines and the trunk)."""
        h, w = self.config.height, self.config.width
        return [(batch, c, h // s, w // s) for c, s in zip(self.stage_channels, self.encoder_depth.stage_strides)]

    def example_inputs(self, batch: int = 1) -> Dict[str, Tensor]:
        p = next(self.parameters())
        h, w = self.config.height, self.config.width
        return {"rgb": torch.zeros(batch, 3, h, w, dtype=p.dtype, device=p.device),
                "depth": torch.zeros(batch, 1, h, w, dtype=p.dtype, device=p.device)}

    # ---- stage-wise pieces (the export cuts along these) --------------------------------------
    def depth_stage(self, i: int, x: Tensor) -> Tensor:
        return self.encoder_depth.forward_stage(i, x)

    def rgb_stage(self, i: int, x: Tensor) -> Tensor:
        return self.encoder_rgb.forward_stage(i, x)

    def fuse(self, i: int, rgb_feat: Tensor, depth_feat: Optional[Tensor], present: Optional[Tensor] = None) -> Tensor:
        return getattr(self, f"se_layer{i}")(rgb_feat, depth_feat, present, self.config.skip_mode)

    def gate_logits(self, a: Tensor, b: Tensor) -> Tensor:
        """raw gate: (rgb, depth) preprocessed inputs; stem gate: (fused0, depth0) stage-0 outputs."""
        return self.gate(a, b)

    def decode(self, fused: Sequence[Tensor], return_side: bool = False):
        """Context + decoder from the 5 fused maps (only fused[1..4] are used, as in ESANet)."""
        if len(fused) != NUM_DEPTH_STAGES:
            raise ValueError(f"decode needs {NUM_DEPTH_STAGES} fused maps, got {len(fused)}")
        out = self.context_module(fused[4])
        return self.decoder(out, self.skip_layer3(fused[3]), self.skip_layer2(fused[2]), self.skip_layer1(fused[1]),
                            return_side=return_side)

    def depth_features(self, depth: Tensor, path: int, depth0: Optional[Tensor] = None) -> List[Optional[Tensor]]:
        """Run depth stages 0..path-1 only; the rest are None (never executed)."""
        feats: List[Optional[Tensor]] = [None] * NUM_DEPTH_STAGES
        x = depth
        for i in range(path):
            x = depth0 if (i == 0 and depth0 is not None) else self.depth_stage(i, x)
            feats[i] = x
        return feats

    def forward_trunk(self, rgb: Optional[Tensor], depth_feats: Sequence[Optional[Tensor]],
                      present: Optional[Tensor] = None, fused0: Optional[Tensor] = None) -> Tensor:
        """RGB encoder + fusions + decoder. depth_feats[i] None = stage i skipped.

        present: None, [5] (exported trunk) or [B,5] float flags/weights per fusion point.
        fused0: start after fusion 0 (stem-gate models, whose stem branch computes fused_0).
        """
        if len(depth_feats) != NUM_DEPTH_STAGES:
            raise ValueError(f"depth_feats must have {NUM_DEPTH_STAGES} entries (None for skipped), got {len(depth_feats)}")

        def flag(i):
            if present is None:
                return None
            return (present[i] if present.dim() == 1 else present[:, i]).reshape(-1, 1, 1, 1)

        fused: List[Tensor] = []
        if fused0 is None:
            if rgb is None:
                raise ValueError("forward_trunk needs rgb or fused0")
            f = self.fuse(0, self.rgb_stage(0, rgb), depth_feats[0], flag(0))
        else:
            f = fused0
        fused.append(f)
        for i in range(1, NUM_DEPTH_STAGES):
            f = self.fuse(i, self.rgb_stage(i, f), depth_feats[i], flag(i))
            fused.append(f)
        return self.decode(fused)

    # ---- gate ----------------------------------------------------------------------------------
    def gate_forward(self, rgb: Tensor, depth: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """(gate_logits [B, len(paths)], extras). Stem gate extras hold fused0/depth0 for reuse."""
        if self.config.gate == "raw":
            return self.gate(rgb, depth), {}
        fused0, depth0 = self.stem(rgb, depth)
        return self.gate(fused0, depth0), {"fused0": fused0, "depth0": depth0}

    def choose_paths(self, gate_logits: Tensor) -> Tensor:
        """Argmax path per sample (deterministic inference rule), as LongTensor [B] of path values."""
        table = torch.tensor(self.paths, dtype=torch.long, device=gate_logits.device)
        return table[gate_logits.argmax(dim=1)]

    # ---- forwards ------------------------------------------------------------------------------
    def _check_path(self, path: int) -> int:
        path = int(path)
        if path not in self.paths:
            raise ValueError(f"path {path} not available for gate '{self.config.gate}'; paths are {self.paths}")
        return path

    def stem(self, rgb: Tensor, depth: Tensor) -> Tuple[Tensor, Tensor]:
        """(fused_0, depth_0): RGB and depth stems and fusion 0, what stem-gate models run first."""
        depth0 = self.depth_stage(0, depth)
        return self.fuse(0, self.rgb_stage(0, rgb), depth0), depth0

    def _stem(self, rgb, depth, extras):
        if extras:
            return extras["fused0"], extras["depth0"]
        return self.stem(rgb, depth)

    def _forward_path(self, rgb, depth, path, extras=None):
        path = self._check_path(path)
        if self.config.gate == "stem":
            fused0, depth0 = self._stem(rgb, depth, extras)
            feats = self.depth_features(depth, path, depth0=depth0)
            return self.forward_trunk(None, feats, fused0=fused0)
        return self.forward_trunk(rgb, self.depth_features(depth, path))

    def forward(self, rgb: Tensor, depth: Tensor, path: Optional[int] = None) -> Tensor:
        """Logits [B,C,H,W]. path int: depth stages >= path are not executed; None: gate argmax per sample."""
        if path is not None:
            return self._forward_path(rgb, depth, path)
        logits, extras = self.gate_forward(rgb, depth)
        return self.forward_paths(rgb, depth, self.choose_paths(logits), extras)

    def forward_paths(self, rgb: Tensor, depth: Tensor, paths: Tensor, extras: Optional[Dict[str, Tensor]] = None
                      ) -> Tensor:
        """Mixed batch: samples grouped by path, each group run with true skipping."""
        paths = torch.as_tensor(paths, dtype=torch.long).reshape(-1)
        if paths.numel() != rgb.shape[0]:
            raise ValueError(f"paths has {paths.numel()} entries for a batch of {rgb.shape[0]}")
        out = None
        for value in torch.unique(paths).tolist():
            idx = (paths == value).nonzero(as_tuple=True)[0].to(rgb.device)
            sub_extras = {k: v.index_select(0, idx) for k, v in extras.items()} if extras else None
            y = self._forward_path(rgb.index_select(0, idx), depth.index_select(0, idx), value, sub_extras)
            if out is None:
                out = y.new_zeros((rgb.shape[0],) + tuple(y.shape[1:]))
            out = out.index_copy(0, idx, y)
        return out

    def forward_blend(self, rgb: Tensor, depth: Tensor, weights: Tensor,
                      extras: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Training: all depth stages run; fusion i mixes depth in with the total weight of the paths
        that use stage i (DynMM's per-fusion blend of path outputs). One-hot weights == true skipping."""
        b, p = weights.shape if weights.dim() == 2 else (None, None)
        if b != rgb.shape[0] or p != len(self.paths):
            raise ValueError(f"weights must be [B={rgb.shape[0]}, {len(self.paths)}], got {tuple(weights.shape)}")
        path_values = torch.tensor(self.paths, device=weights.device)
        # present[b, i] = sum_j weights[b, j] * [paths[j] > i]
        uses = (path_values[None, :] > torch.arange(NUM_DEPTH_STAGES, device=weights.device)[:, None])
        present = weights @ uses.to(weights.dtype).t()
        if self.config.gate == "stem":
            fused0, depth0 = self._stem(rgb, depth, extras)
            feats = self.depth_features(depth, NUM_DEPTH_STAGES, depth0=depth0)
            return self.forward_trunk(None, feats, present=present, fused0=fused0)
        feats = self.depth_features(depth, NUM_DEPTH_STAGES)
        return self.forward_trunk(rgb, feats, present=present)


def rebuilt(model: DynMMNet, drop: str, **changes) -> DynMMNet:
    """`model` under a changed config (e.g. a new gate or a region head): every weight outside the
    `drop` prefix is kept, the modules under it start fresh. ValueError names keys that do not fit."""
    new = DynMMNet(model.config.replace(**changes))
    keep = {k: v for k, v in model.state_dict().items() if not k.startswith(drop)}
    missing, unexpected = new.load_state_dict(keep, strict=False)
    if unexpected or any(not k.startswith(drop) for k in missing):
        raise ValueError(f"weights do not fit the new model: unexpected {unexpected[:4]}, "
                         f"missing {[k for k in missing if not k.startswith(drop)][:4]}")
    return new
