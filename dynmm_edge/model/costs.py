"""MACs and parameters per branch and per path, counted from the modules themselves.

Counting convention (the one behind DynMM's published depth-encoder GMACs, e.g. R34-NBt1D stem =
0.2506752 G = 7x7 conv + 2 ops/element of BN at 480x640):
  Conv2d   k_h*k_w*C_in/groups per output element, +1 per output element when it has a bias
  Linear   in*out (+out for bias)
  BatchNorm  2 per element (scale + shift; folded into the conv at deployment, counted anyway)
  pooling, activations, resizes, element-wise add/mul: 0
The model is rebuilt on the 'meta' device (no memory, no arithmetic), so counting a ResNet-50 at
480x640 takes well under a second, at any input size (multiples of 32).

Branches: 'gate' (the gate network only), 'depth0'..'depth4' (depth stage i + se_depth of fusion i:
the work that disappears when stage i is skipped), 'trunk' (RGB encoder, se_rgb of every fusion,
skip convs, context, decoder). For stem-gate models the exported stem branch (RGB stem + depth stem
+ fusion 0 + gate) is split the same way, so depth numbers stay comparable with DynMM's; se_rgb of a
skipped fusion in 'rgb_passthrough' mode is still charged to the trunk (upper bound, < 0.1 %).
Path k costs trunk + gate + depth0..depth(k-1).
"""
import re
from typing import Dict, Optional, Union

import torch
import torch.nn as nn

from dynmm_edge.model.config import NUM_DEPTH_STAGES, ModelConfig
from dynmm_edge.model.net import DynMMNet

BRANCHES = ("gate",) + tuple(f"depth{i}" for i in range(NUM_DEPTH_STAGES)) + ("trunk",)
_DEPTH_LAYER = re.compile(r"^encoder_depth\.layer(\d)\.")
_SE_DEPTH = re.compile(r"^se_layer(\d)\.se_depth\.")


def branch_of(name: str) -> str:
    """Branch that a module or parameter (by qualified name) belongs to."""
    if name.startswith("gate."):
        return "gate"
    if name.startswith(("encoder_depth.conv1", "encoder_depth.bn1")):
        return "depth0"
    m = _DEPTH_LAYER.match(name) or _SE_DEPTH.match(name)
    if m:
        return f"depth{int(m.group(1))}"
    return "trunk"


def _module_macs(module: nn.Module, inputs, output) -> int:
    if isinstance(module, nn.Conv2d):
        per_out = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        n = output[0].numel()  # one sample
        return n * per_out + (n if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        n = output[0].numel() // module.out_features
        return n * (module.in_features * module.out_features + (module.out_features if module.bias is not None else 0))
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 2 * output[0].numel()
    return 0


def _config_of(model_or_config: Union[DynMMNet, ModelConfig], height: Optional[int], width: Optional[int]) -> ModelConfig:
    config = model_or_config.config if isinstance(model_or_config, DynMMNet) else model_or_config
    if not isinstance(config, ModelConfig):
        raise TypeError(f"need a DynMMNet or ModelConfig, got {type(model_or_config).__name__}")
    changes = {}
    if height is not None:
        changes["height"] = int(height)
    if width is not None:
        changes["width"] = int(width)
    return config.replace(**changes) if changes else config


def module_macs(model_or_config, height: Optional[int] = None, width: Optional[int] = None) -> Dict[str, int]:
    """MACs of every module with arithmetic, by qualified name, for one sample at height x width."""
    config = _config_of(model_or_config, height, width)
    with torch.device("meta"):
        net = DynMMNet(config).eval()
    counts: Dict[str, int] = {}
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            # assignment, not sum: stage 0 runs in both gate_forward (stem gate) and the full forward
            handles.append(module.register_forward_hook(
                lambda mod, inp, out, name=name: counts.__setitem__(name, _module_macs(mod, inp, out))))
    try:
        with torch.no_grad():
            rgb = torch.zeros(1, 3, config.height, config.width, device="meta")
            depth = torch.zeros(1, 1, config.height, config.width, device="meta")
            net.gate_forward(rgb, depth)
            net(rgb, depth, path=max(net.paths))
    finally:
        for h in handles:
            h.remove()
    return counts


def branch_macs(model_or_config, height: Optional[int] = None, width: Optional[int] = None) -> Dict[str, int]:
    """MACs per branch ('gate', 'depth0'..'depth4', 'trunk') for one frame."""
    out = {b: 0 for b in BRANCHES}
    for name, macs in module_macs(model_or_config, height, width).items():
        out[branch_of(name + ".")] += macs
    return out


def branch_params(model_or_config) -> Dict[str, int]:
    """Parameter count per branch (decoder side outputs, used only in training, count to the trunk)."""
    config = _config_of(model_or_config, None, None)
    if isinstance(model_or_config, DynMMNet):
        net = model_or_config
    else:
        with torch.device("meta"):
            net = DynMMNet(config)
    out = {b: 0 for b in BRANCHES}
    for name, p in net.named_parameters():
        if not name.startswith("region."):  # the region head's branches count their own (region_export)
            out[branch_of(name)] += p.numel()
    return out


def depth_path_macs(model_or_config, height: Optional[int] = None, width: Optional[int] = None,
                    branches: Optional[Dict[str, int]] = None) -> Dict[int, int]:
    """Depth-encoder MACs of each path (cumulative over depth stages 0..k-1), DynMM's headline number."""
    config = _config_of(model_or_config, height, width)
    b = branches if branches is not None else branch_macs(config)
    return {k: sum(b[f"depth{i}"] for i in range(k)) for k in config.paths}


def path_macs(model_or_config, height: Optional[int] = None, width: Optional[int] = None,
              branches: Optional[Dict[str, int]] = None) -> Dict[int, int]:
    """Whole-network MACs of each path: trunk + gate + depth stages 0..k-1."""
    config = _config_of(model_or_config, height, width)
    b = branches if branches is not None else branch_macs(config)
    depth = depth_path_macs(config, branches=b)
    return {k: b["trunk"] + b["gate"] + d for k, d in depth.items()}


def cost_report(model_or_config, height: Optional[int] = None, width: Optional[int] = None) -> dict:
    """JSON-ready summary: per-branch MACs/params, per-path total and depth MACs (string path keys)."""
    config = _config_of(model_or_config, height, width)
    macs = branch_macs(config)
    params = branch_params(model_or_config)
    depth = depth_path_macs(config, branches=macs)
    total = path_macs(config, branches=macs)
    return {
        "height": config.height,
        "width": config.width,
        "branches": {b: {"macs": macs[b], "params": params[b]} for b in BRANCHES},
        "paths": {str(k): {"macs": total[k], "depth_macs": depth[k]} for k in config.paths},
        "total_params": sum(params.values()),
        "counting": "conv/linear MACs (+1 per output for bias), BN 2/element; pooling, activations, resizes 0",
    }
