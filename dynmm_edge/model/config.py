"""ModelConfig: everything needed to rebuild a DynMMNet, stored inside every checkpoint.

Frozen with explicit defaults so a checkpoint's config is the model: no hidden argparse state.
"""
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Tuple

ENCODERS = ("resnet18", "resnet34", "resnet50")
BLOCKS = ("basic", "nbt1d", "bottleneck")
CONTEXTS = ("ppm", "none")
CONTEXT_UPSAMPLING = ("nearest", "bilinear")
CONTEXT_POOLING = ("adaptive", "fixed")
UPSAMPLING = ("learned", "learned-zeropad")
GATES = ("raw", "stem")
SKIP_MODES = ("zero_depth", "rgb_passthrough")
ACTIVATIONS = ("relu",)
REGION_HALOS = ("none", "exact")
NUM_DEPTH_STAGES = 5  # stem + layer1..4; fusion points 0..4


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an ESANet-style RGB-D network with a DynMM gate.

    width_mult scales every encoder/SE channel count (1.0 = ESANet: stem 64, layers 64..512,
    ResNet-50 256..2048). height/width are the fixed input size (multiples of 32); the PPM bins
    are derived from it so the exported graph has no adaptive pooling. context_pooling 'adaptive'
    pools exactly as ESANet (torch adaptive bins); 'fixed' is the older map // bins window, kept
    for checkpoints written before the field existed (from_dict fills it in for them).
    gate 'raw': tiny CNN on the downsampled preprocessed RGB+depth, paths 0..5 (0 = no depth at all).
    gate 'stem': DynMM's gate on the stem features, paths 1..5 (the depth stem always runs).
    skip_mode 'zero_depth': a skipped fusion adds nothing from depth (se_rgb(rgb) stays);
    'rgb_passthrough': a skipped fusion passes the RGB features unchanged (DynMM).
    region_tile: 0 = frame gate only; N px = a region gate scores N x N tiles and depth stages 1..4 can
    run on the kept tiles only (dynmm_edge.model.region). region_halo 'none': each tile runs on its own
    (trained with seams); 'exact': per-stage gather with the receptive-field halo (equals dense).
    region_gate_cues: the region gate reads the frame-quality cue maps (model/gate.py frame_cues) instead
    of raw RGB-D; checkpoints written before the field existed load with False (raw).
    """

    encoder: str = "resnet34"
    block: str = "nbt1d"
    width_mult: float = 1.0
    num_classes: int = 40
    height: int = 480
    width: int = 640
    decoder_channels: Tuple[int, int, int] = (512, 256, 128)
    decoder_blocks: Tuple[int, int, int] = (3, 3, 3)
    context: str = "ppm"
    context_bins: Tuple[int, ...] = (1, 5)
    context_upsampling: str = "nearest"
    context_pooling: str = "adaptive"
    upsampling: str = "learned"
    se_reduction: int = 16
    gate: str = "raw"
    gate_downsample: int = 8
    gate_channels: Tuple[int, int] = (8, 16)
    gate_cues: bool = False            # raw gate: add frame-quality cues (model/gate.py CueGate)
    skip_mode: str = "zero_depth"
    activation: str = "relu"
    region_tile: int = 0
    region_halo: str = "none"
    region_gate_cues: bool = False

    def __post_init__(self):
        # normalise lists (from JSON) to tuples so the dataclass stays hashable and comparable
        for name in ("decoder_channels", "decoder_blocks", "context_bins", "gate_channels"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        def bad(name, why):
            raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r}: {why}")

        def choice(name, options):
            if getattr(self, name) not in options:
                bad(name, f"must be one of {', '.join(options)}")

        choice("encoder", ENCODERS)
        choice("block", BLOCKS)
        choice("context", CONTEXTS)
        choice("context_upsampling", CONTEXT_UPSAMPLING)
        choice("context_pooling", CONTEXT_POOLING)
        choice("upsampling", UPSAMPLING)
        choice("gate", GATES)
        choice("skip_mode", SKIP_MODES)
        choice("activation", ACTIVATIONS)
        choice("region_halo", REGION_HALOS)
        self._validate_region(bad)
        if self.encoder == "resnet50" and self.block != "bottleneck":
            bad("block", "resnet50 uses block 'bottleneck'")
        if self.encoder != "resnet50" and self.block == "bottleneck":
            bad("block", f"{self.encoder} uses block 'basic' or 'nbt1d'")
        if isinstance(self.width_mult, bool) or not isinstance(self.width_mult, (int, float)) \
                or not (0.0 < float(self.width_mult) <= 4.0):
            bad("width_mult", "must be a number in (0, 4]")
        for name, minimum in (("num_classes", 1), ("height", 32), ("width", 32), ("se_reduction", 1),
                              ("gate_downsample", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                bad(name, f"must be an integer >= {minimum}")
        for name in ("height", "width"):
            if getattr(self, name) % 32:
                bad(name, "must be a multiple of 32 (the encoder's output stride)")
        for name, length in (("decoder_channels", 3), ("decoder_blocks", 3), ("gate_channels", 2)):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != length or \
                    any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                bad(name, f"must be {length} integers")
        if any(v < 1 for v in self.decoder_channels + self.gate_channels):
            bad("decoder_channels" if min(self.decoder_channels) < 1 else "gate_channels", "must be >= 1")
        if any(v < 0 for v in self.decoder_blocks):
            bad("decoder_blocks", "must be >= 0")
        bins = self.context_bins
        if not isinstance(bins, tuple) or not bins or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                                                          for b in bins):
            bad("context_bins", "must be a non-empty tuple of positive integers")
        if self.gate == "raw":
            for name in ("height", "width"):
                if getattr(self, name) // self.gate_downsample < 4:
                    bad("gate_downsample", f"leaves fewer than 4 pixels of {name} for the raw gate")
        if not isinstance(self.gate_cues, bool):
            bad("gate_cues", "must be true or false")
        if self.gate_cues and self.gate != "raw":
            bad("gate_cues", "cues exist for the raw gate only")
        if self.gate == "stem" and (self.height < 64 or self.width < 64):
            bad("height" if self.height < 64 else "width", "the stem gate needs an input of at least 64x64")

    def _validate_region(self, bad) -> None:
        """region_tile 0 = no region gate; else a multiple of 32 px that divides the input (the 1/32 grid)."""
        tile = self.region_tile
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 0:
            bad("region_tile", "must be 0 (no region gate) or a positive multiple of 32 px")
        if tile and (tile % 32 or self.height % tile or self.width % tile):
            bad("region_tile", f"tile size must be a multiple of 32 px (the 1/32 feature grid) that divides "
                               f"the input {self.width}x{self.height}")
        if tile and self.skip_mode != "zero_depth":
            bad("region_tile", "region gating needs skip_mode 'zero_depth' (inactive tiles add nothing)")
        if not isinstance(self.region_gate_cues, bool):
            bad("region_gate_cues", "must be true or false")
        if self.region_gate_cues and not tile:
            bad("region_gate_cues", "needs a region gate (region_tile > 0)")

    @property
    def paths(self) -> Tuple[int, ...]:
        """Path k = depth segments 0..k-1 run. The stem gate sits after depth stage 0, so it cannot choose 0."""
        return tuple(range(NUM_DEPTH_STAGES + 1)) if self.gate == "raw" else tuple(range(1, NUM_DEPTH_STAGES + 1))

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ValueError(f"ModelConfig.from_dict needs a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if "context_pooling" not in data:  # written before adaptive bins existed: keep its fixed windows
            data = {**data, "context_pooling": "fixed"}
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)
