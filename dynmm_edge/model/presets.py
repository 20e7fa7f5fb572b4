"""Named model configurations (an explicit name -> ModelConfig registry).

'esanet-r34-nbt1d-nyuv2' uses the raw gate: it is a new model (ESANet weights + a freshly trained
gate), and the raw gate can choose path 0 (no depth at all), which the stem gate cannot.
'dynmm-r50-nyuv2' mirrors the released DynMM model (stem gate, RGB pass-through on skip).
"""
from typing import Dict, Tuple

from dynmm_edge.model.config import ModelConfig

NYUV2_CLASSES = 40
NYUV2_DEPTH_MEAN_MM = 2841.95
NYUV2_DEPTH_STD_MM = 1417.26
# Classes of the synthetic world (dynmm_edge.data.synthetic.CLASS_NAMES); repeated here so the
# model package does not import the data package.
SYNTHETIC_CLASSES: Tuple[str, ...] = ("floor", "wall", "ceiling", "table", "cabinet", "box", "ball", "pillar")

PRESETS: Dict[str, ModelConfig] = {
    "esanet-r34-nbt1d-nyuv2": ModelConfig(
        encoder="resnet34", block="nbt1d", num_classes=NYUV2_CLASSES, height=480, width=640,
        decoder_channels=(512, 256, 128), decoder_blocks=(3, 3, 3), upsampling="learned-zeropad",
        gate="raw", gate_downsample=8),
    "esanet-r18-nyuv2": ModelConfig(
        encoder="resnet18", block="nbt1d", num_classes=NYUV2_CLASSES, height=480, width=640,
        decoder_channels=(512, 256, 128), decoder_blocks=(3, 3, 3), upsampling="learned-zeropad",
        gate="raw", gate_downsample=8),
    "esanet-r50-nyuv2": ModelConfig(
        encoder="resnet50", block="bottleneck", num_classes=NYUV2_CLASSES, height=480, width=640,
        decoder_channels=(512, 256, 128), decoder_blocks=(3, 3, 3), upsampling="learned-zeropad",
        gate="raw", gate_downsample=8),
    "dynmm-r50-nyuv2": ModelConfig(
        encoder="resnet50", block="bottleneck", num_classes=NYUV2_CLASSES, height=480, width=640,
        decoder_channels=(512, 256, 128), decoder_blocks=(3, 3, 3), upsampling="learned-zeropad",
        gate="stem", gate_channels=(8, 16), skip_mode="rgb_passthrough"),
    # Runs on 2 CPU cores; the depth encoder is a full copy of the RGB one, so skipping it saves time.
    # Zero-padded learned upsampling (ESANet's released choice) avoids Pad ops and re-layouts at full
    # resolution: on ONNX Runtime CPU it keeps frame time closer to proportional to MACs.
    # Width 0.5 rather than 0.25: at 0.25 per-op overhead dominated ONNX Runtime CPU time, so skipping
    # depth MACs saved far less time than MACs (measured 56 % of the ideal saving; 90 % at 0.5).
    "demo": ModelConfig(
        encoder="resnet18", block="basic", width_mult=0.5, num_classes=len(SYNTHETIC_CLASSES),
        height=192, width=256, decoder_channels=(128, 64, 32), decoder_blocks=(1, 1, 1),
        upsampling="learned-zeropad", context_pooling="fixed",  # as the shipped demo model was trained
        gate="raw", gate_downsample=8),
    # For unit tests across the repo: tiny and fast.
    "tiny-test": ModelConfig(
        encoder="resnet18", block="basic", width_mult=0.125, num_classes=len(SYNTHETIC_CLASSES),
        height=64, width=64, decoder_channels=(16, 8, 8), decoder_blocks=(1, 1, 1),
        gate="raw", gate_downsample=4, gate_channels=(4, 8)),
}

# Dataset of each preset: decides default classes and preprocessing constants.
PRESET_DATASET: Dict[str, str] = {
    "esanet-r34-nbt1d-nyuv2": "nyuv2", "esanet-r18-nyuv2": "nyuv2", "esanet-r50-nyuv2": "nyuv2",
    "dynmm-r50-nyuv2": "nyuv2", "demo": "synthetic", "tiny-test": "synthetic",
}


def preset_names() -> Tuple[str, ...]:
    return tuple(PRESETS)


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}") from None
