"""Import checkpoints written by the public ESANet and DynMM training code into a DynMMNet.

Neither project stores its architecture in the weights file, so the config is inferred from key
names and tensor shapes (docs/IMPORT.md lists the layout facts this relies on). Loading is strict:
every tensor in the file must land in the model with its exact shape, and every model tensor must
come from the file, except (a) keys on a short list of known training-only tensors our model has no
slot for, which are listed in meta['import']['dropped'], and (b) the gate of a static ESANet model,
which stays at its initial values and is reported as untrained.
"""
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from dynmm_edge._lazy import require
from dynmm_edge.errors import CheckpointError
from dynmm_edge.model.config import ModelConfig

FORMATS = ("esanet", "dynmm", "ours")
OUR_FORMAT = "dynmm-edge-checkpoint"  # checkpoints.FORMAT (not imported: that module imports torch eagerly)

# ---- dataset facts (public label lists; network class i is dataset label i+1, 0 = void) ---------
NYUV2_40_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)
SUNRGBD_37_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "fridge", "tv", "paper", "towel", "shower curtain",
    "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
)
CITYSCAPES_19_CLASSES = (  # the 19 evaluation classes, in train-id order
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
# Depth statistics from ESANet's dataset classes. NYUv2 depth PNGs are millimetres. SUN RGB-D's
# native encoding is ~8 x mm (19025.15 / 9880.92 native); (native - m8)/s8 == (mm - m8/8)/(s8/8),
# so the mm form below is the same normalisation for depth delivered in millimetres.
DATASETS: Dict[str, Dict[str, Any]] = {
    "nyuv2": {"classes": NYUV2_40_CLASSES, "depth_mean": 2841.95, "depth_std": 1417.26,
              "native": {"depth_mean": 2841.95, "depth_std": 1417.26, "unit": "mm"}},
    "cityscapes": {"classes": CITYSCAPES_19_CLASSES, "depth_mean": None, "depth_std": None},
    "sunrgbd": {"classes": SUNRGBD_37_CLASSES, "depth_mean": 19025.15 / 8.0, "depth_std": 9880.92 / 8.0,
                "native": {"depth_mean": 19025.15, "depth_std": 9880.92, "unit": "SUN RGB-D native (~mm x 8)"}},
}
# ESANet's --upsampling names -> ours (both spellings accepted)
UPSAMPLING_NAMES = {"learned-3x3": "learned", "learned-3x3-zeropad": "learned-zeropad"}
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)

# Top-level entries of a training checkpoint that are not weights and are ignored (reported).
_IGNORED_ENTRIES = ("optimizer", "epoch", "best_miou", "best_miou_epoch", "scheduler", "lr_scheduler", "args")
# Training-only tensors: dropped (and listed) only when the model has no slot for them.
_TRAINING_ONLY = (re.compile(r"^decoder\.decoder_module_[123]\.side_output\.(weight|bias)$"),)
_LAYER_RE = re.compile(r"^encoder_(rgb|depth)\.layer([1-4])\.(\d+)\.")


def voc_palette(n: int) -> List[Tuple[int, int, int]]:
    """PASCAL-VOC style colour map (bits of the index spread over R, G, B from the MSB down).

    ESANet colours NYUv2-40 with this map (index 0 = void); we skip void so colour i is class i.
    """
    colours = []
    for index in range(1, n + 1):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours.append((r, g, b))
    return colours


# ---- reading ------------------------------------------------------------------------------------
def numpy_scalar_globals() -> list:
    """The few numpy globals a pickled numpy scalar needs (e.g. `best_miou` in training checkpoints).

    Only the scalar reconstructor, np.dtype and the numeric dtype classes: no arrays, no functions.
    """
    import numpy as np
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64)
    return [scalar, np.dtype] + [type(np.dtype(k)) for k in kinds]


def torch_load_weights(path):
    """torch.load with weights_only=True, also accepting numpy scalars (and nothing else)."""
    torch = require("torch", "reading checkpoints")
    with torch.serialization.safe_globals(numpy_scalar_globals()):
        return torch.load(str(path), map_location="cpu", weights_only=True)


def _is_tensor(value) -> bool:
    return type(value).__name__ in ("Tensor", "Parameter") and hasattr(value, "shape")


def _state_dict_of(checkpoint, source: str = "checkpoint") -> "OrderedDict[str, Any]":
    """The weights inside a checkpoint dict (or the dict itself when it is a bare state_dict)."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a dict (a state_dict or a dict with 'state_dict'), "
                              f"got {type(checkpoint).__name__}")
    if "state_dict" in checkpoint:
        sd = checkpoint["state_dict"]
        if not isinstance(sd, Mapping):
            raise CheckpointError(f"{source}: 'state_dict' is a {type(sd).__name__}, not a dict of tensors")
    elif "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
        sd = checkpoint["model"]
    else:
        sd = checkpoint
    if not sd:
        raise CheckpointError(f"{source}: the state_dict is empty")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not _is_tensor(v)]
    if bad:
        shown = ", ".join(repr(k) for k in bad[:5])
        raise CheckpointError(f"{source}: entries that are not named tensors: {shown}"
                              f"{' ...' if len(bad) > 5 else ''} (top-level keys: {sorted(map(str, checkpoint))[:8]})")
    keys = list(sd)
    if all(k.startswith("module.") for k in keys):  # saved through DataParallel / DDP
        sd = OrderedDict((k[len("module."):], v) for k, v in sd.items())
    return OrderedDict(sd)


def detect_format(checkpoint) -> str:
    """'esanet' | 'dynmm' | 'ours' from a state_dict or checkpoint dict; CheckpointError otherwise."""
    if isinstance(checkpoint, Mapping) and (checkpoint.get("format") == OUR_FORMAT or (
            isinstance(checkpoint.get("config"), Mapping) and "state_dict" in checkpoint)):
        return "ours"
    sd = _state_dict_of(checkpoint)
    keys = set(sd)
    if any(k.startswith("gate_layer.") for k in keys):
        return "dynmm"
    if any(k.startswith("gate.") for k in keys):
        return "ours"
    needed = ("encoder_rgb.conv1.weight", "encoder_depth.conv1.weight", "decoder.conv_out.weight")
    missing = [k for k in needed if k not in keys]
    if missing:
        raise CheckpointError(f"not an ESANet/DynMM/dynmm_edge checkpoint: missing {', '.join(missing)} "
                              f"(first keys: {', '.join(sorted(keys)[:5])})")
    return "esanet"


# ---- architecture inference ---------------------------------------------------------------------
def _shape(sd, key) -> Tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"cannot infer the architecture: tensor {key!r} is missing")
    return tuple(sd[key].shape)


def _encoder_layout(sd, which: str) -> Tuple[Tuple[int, ...], str]:
    counts = [0, 0, 0, 0]
    for k in sd:
        m = _LAYER_RE.match(k)
        if m and m.group(1) == which:
            counts[int(m.group(2)) - 1] = max(counts[int(m.group(2)) - 1], int(m.group(3)) + 1)
    prefix = f"encoder_{which}.layer1.0."
    if f"{prefix}conv3x1_1.weight" in sd:
        block = "nbt1d"
    elif f"{prefix}conv3.weight" in sd:
        block = "bottleneck"
    elif f"{prefix}conv2.weight" in sd:
        block = "basic"
    else:
        raise CheckpointError(f"cannot tell the block type of encoder_{which}: no {prefix}conv3x1_1/conv3/conv2")
    return tuple(counts), block


def infer_config(state_dict, height: int = 480, width: int = 640, overrides: Optional[Mapping] = None
                 ) -> ModelConfig:
    """ModelConfig for an ESANet/DynMM state_dict (or checkpoint dict), from key names and shapes.

    Fields the file cannot tell (upsampling padding, context bin sizes) get the values every public
    ESANet/DynMM model used; `overrides` replaces any field.
    """
    sd = _state_dict_of(state_dict)
    fmt = detect_format(sd)
    if fmt == "ours":
        raise CheckpointError("this is a dynmm_edge checkpoint: load it with dynmm_edge.model.checkpoints")
    counts, block = _encoder_layout(sd, "rgb")
    depth_counts, depth_block = _encoder_layout(sd, "depth")
    if (counts, block) != (depth_counts, depth_block):
        raise CheckpointError(f"RGB encoder {counts}/{block} and depth encoder {depth_counts}/{depth_block} differ; "
                              "dynmm_edge models use the same encoder for both modalities")
    if counts == (2, 2, 2, 2) and block != "bottleneck":
        encoder = "resnet18"
    elif counts == (3, 4, 6, 3):
        encoder = "resnet50" if block == "bottleneck" else "resnet34"
    else:
        raise CheckpointError(f"encoder_rgb has {counts} blocks per layer with {block} blocks; "
                              "expected ResNet18 (2,2,2,2) or ResNet34/50 (3,4,6,3)")
    stem = _shape(sd, "encoder_rgb.conv1.weight")[0]
    width_mult = stem / 64.0
    if not any(k.startswith("se_layer0.") for k in sd):
        raise CheckpointError("no se_layer0..4 tensors: the checkpoint uses plain 'add' (or no) RGB-D fusion; "
                              "dynmm_edge models need ESANet's SE-add fusion")
    c4 = _shape(sd, "se_layer4.se_rgb.fc.0.weight")
    se_reduction = max(1, c4[1] // c4[0])
    dec = tuple(_shape(sd, f"decoder.decoder_module_{k}.conv3x3.conv.weight")[0] for k in (1, 2, 3))
    dec_blocks = []
    for k in (1, 2, 3):
        pat = re.compile(rf"^decoder\.decoder_module_{k}\.decoder_blocks\.(\d+)\.")
        dec_blocks.append(max([int(m.group(1)) + 1 for m in map(pat.match, sd) if m] or [0]))
    num_classes = _shape(sd, "decoder.conv_out.weight")[0]
    branches = {int(m.group(1)) for m in map(re.compile(r"^context_module\.features\.(\d+)\.").match, sd) if m}
    if any(k.startswith("context_module.") for k in sd):
        if any(re.match(r"^context_module\.features\.\d+\.conv\.", k) for k in sd):
            raise CheckpointError("context_module is ESANet's adaptive 'appm' variant (features.N.conv); "
                                  "only 'ppm' is supported")
        context = "ppm"
        bins = {2: (1, 5), 4: (1, 2, 4, 8)}.get(len(branches))
        if bins is None and "context_bins" not in (overrides or {}):
            raise CheckpointError(f"context_module has {len(branches)} pyramid branches; pass "
                                  "overrides={'context_bins': (...)} with that many bin sizes")
    else:
        context, bins = "none", (1, 5)
    if "decoder.upsample1.conv.weight" not in sd:
        raise CheckpointError("decoder.upsample1.conv.weight missing: the checkpoint uses bilinear/nearest "
                              "upsampling; dynmm_edge models use ESANet's learned 3x3 upsampling")
    values: Dict[str, Any] = dict(
        encoder=encoder, block=block, width_mult=width_mult, num_classes=num_classes, height=height,
        width=width, decoder_channels=dec, decoder_blocks=tuple(dec_blocks), context=context,
        context_bins=bins or (1, 5), context_upsampling="nearest", upsampling="learned-zeropad",
        se_reduction=se_reduction)
    if fmt == "dynmm":
        hidden = _shape(sd, "gate_layer.conv.0.weight")[0]
        # StemGate uses gate_channels[0] only; [1] keeps the default so configs compare equal to presets
        values.update(gate="stem", gate_channels=(hidden, ModelConfig().gate_channels[1]),
                      skip_mode="rgb_passthrough")
    else:
        values.update(gate="raw", skip_mode="zero_depth")
    values.update(dict(overrides or {}))
    try:
        return ModelConfig(**values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"inferred config is invalid: {exc}") from exc


# ---- loading ------------------------------------------------------------------------------------
def _load_file(path: Path):
    torch = require("torch", "importing ESANet/DynMM checkpoints")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch_load_weights(path)
    except Exception as exc:  # corrupt zip, truncated pickle, non-weights objects
        first = (str(exc).splitlines() or [""])[0]
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # not a zip checkpoint at all
            unsafe = []
        what = (f"it holds Python objects other than tensors, containers and numpy scalars: {', '.join(unsafe)}"
                if unsafe else "the file is corrupt or truncated, or not a torch checkpoint")
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint (weights_only): {what} "
                              f"({type(exc).__name__}: {first})") from exc


def _fmt_keys(keys, limit=8) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def map_state_dict(sd: Mapping, fmt: str, target: Mapping, source: str = "checkpoint"
                   ) -> Tuple["OrderedDict[str, Any]", Dict[str, Any]]:
    """Rename `sd` onto the key set of `target` (a model state_dict) and check it strictly.

    Returns (state_dict to load, report). Raises CheckpointError naming missing, unexpected and
    mis-shaped keys.
    """
    renamed = 0
    mapped: "OrderedDict[str, Any]" = OrderedDict()
    for key, value in sd.items():
        new = key
        if fmt == "dynmm" and key.startswith("gate_layer."):
            new = "gate." + key[len("gate_layer."):]
        renamed += new != key
        mapped[new] = value
    dropped = []
    for key in [k for k in mapped if k not in target]:
        if any(p.match(key) for p in _TRAINING_ONLY):
            dropped.append(key)
            del mapped[key]
    unexpected = [k for k in mapped if k not in target]
    missing = [k for k in target if k not in mapped]
    left_at_init = [k for k in missing if fmt == "esanet" and k.startswith("gate.")]
    defaulted = [k for k in missing if k.endswith("num_batches_tracked") and k not in left_at_init]
    missing = [k for k in missing if k not in left_at_init and k not in defaulted]
    mismatched = [f"{k}: file {tuple(mapped[k].shape)} vs model {tuple(target[k].shape)}"
                  for k in mapped if k in target and tuple(mapped[k].shape) != tuple(target[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_fmt_keys(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_fmt_keys(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {'; '.join(mismatched[:8])}"
                        f"{' ...' if len(mismatched) > 8 else ''}")
    if problems:
        raise CheckpointError(f"{source} ({fmt}) does not match the inferred model: " + " | ".join(problems))
    full = OrderedDict()
    for key, value in target.items():
        full[key] = mapped.get(key, value)
    report = {"renamed": renamed, "dropped": sorted(dropped), "left_at_init": sorted(left_at_init),
              "defaulted": sorted(defaulted)}
    return full, report


def _dataset_for(num_classes: int, dataset: Optional[str], source: str) -> Dict[str, Any]:
    """Class names, depth statistics and a name for the checkpoint's dataset.

    A known dataset is matched by class count (or named); any other class count is accepted as
    'generic' (class_0.., generated palette, NYUv2 depth statistics, flagged in the report).
    """
    if dataset is None:
        dataset = next((name for name, info in DATASETS.items() if len(info["classes"]) == num_classes), "generic")
    if dataset == "generic":
        return {"name": "generic", "classes": tuple(f"class_{i}" for i in range(num_classes)),
                "depth_mean": DATASETS["nyuv2"]["depth_mean"], "depth_std": DATASETS["nyuv2"]["depth_std"],
                "native": dict(DATASETS["nyuv2"]["native"]),
                "depth_stats": "unknown for this dataset: NYUv2 statistics used (edit preprocess.depth_mean/std)"}
    if dataset not in DATASETS:
        raise CheckpointError(f"{source}: unknown dataset {dataset!r}; choose from {', '.join(DATASETS)} or "
                              "'generic' (any class count, generated names)")
    expected = len(DATASETS[dataset]["classes"])
    if num_classes != expected:
        raise CheckpointError(f"{source}: decoder.conv_out.weight has {num_classes} classes but dataset "
                              f"{dataset!r} has {expected}; use dataset 'generic' for other class counts")
    info = DATASETS[dataset]
    stats = "dataset" if info.get("depth_mean") is not None else "unknown"
    if stats == "unknown":  # class names known, depth statistics not: NYUv2's, flagged
        info = {**info, "depth_mean": DATASETS["nyuv2"]["depth_mean"], "depth_std": DATASETS["nyuv2"]["depth_std"],
                "native": dict(DATASETS["nyuv2"]["native"])}
        stats = "unknown for this dataset: NYUv2 statistics used (edit preprocess.depth_mean/std)"
    return {"name": dataset, **info, "depth_stats": stats}


def import_checkpoint(path, *, height: int = 480, width: int = 640, dataset: Optional[str] = None,
                      overrides: Optional[Mapping] = None, num_classes: Optional[int] = None,
                      upsampling: Optional[str] = None):
    """(DynMMNet in eval mode, meta) from an ESANet or DynMM checkpoint file.

    meta carries classes, palette, preprocess (PreprocessConfig fields), default_path, gate_trained
    and an 'import' report (format, epoch, renamed/dropped/left-at-init keys, ignored entries).
    """
    require("torch", "importing ESANet/DynMM checkpoints")
    from dynmm_edge.data.preprocess import PreprocessConfig
    from dynmm_edge.model.net import DynMMNet

    path = Path(path)
    checkpoint = _load_file(path)
    source = str(path)
    try:
        sd = _state_dict_of(checkpoint, source)
        fmt = detect_format(checkpoint)
    except CheckpointError as exc:
        msg = str(exc)
        raise CheckpointError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    if fmt == "ours":
        raise CheckpointError(f"{source}: this is a dynmm_edge checkpoint; load it with "
                              "dynmm_edge.model.checkpoints.load_checkpoint")
    if upsampling is not None:
        overrides = {**dict(overrides or {}), "upsampling": UPSAMPLING_NAMES.get(upsampling, upsampling)}
    try:
        config = infer_config(sd, height, width, overrides)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    if num_classes is not None and num_classes != config.num_classes:
        raise CheckpointError(f"{source}: decoder.conv_out.weight has {config.num_classes} classes, "
                              f"not the {num_classes} asked for")
    info = _dataset_for(config.num_classes, dataset, source)
    ds = info["name"]
    model = DynMMNet(config)
    full, report = map_state_dict(sd, fmt, model.state_dict(), source)
    model.load_state_dict(full, strict=True)
    model.eval()

    preprocess = PreprocessConfig(height=height, width=width, rgb_mean=RGB_MEAN, rgb_std=RGB_STD,
                                  depth_unit_m=0.001, depth_mean=info["depth_mean"], depth_std=info["depth_std"],
                                  invalid_depth="raw").to_dict()
    gate_trained = fmt == "dynmm"
    ignored = sorted(str(k) for k in checkpoint if k != "state_dict") if "state_dict" in checkpoint else []
    epoch = checkpoint.get("epoch") if isinstance(checkpoint, Mapping) else None
    meta = {
        "name": f"{fmt}-{config.encoder}-{config.block}-{ds}",
        "dataset": ds,
        "classes": list(info["classes"]),
        "palette": [list(c) for c in voc_palette(len(info["classes"]))],
        "preprocess": preprocess,
        "config": config.to_dict(),
        "default_path": None if gate_trained else max(config.paths),
        "gate_trained": gate_trained,
        # 'train' is the meta entry save_checkpoint keeps: the facts a re-saved import must not lose
        "train": {"weights": f"imported from {fmt}", "source_file": source, "dataset": ds,
                  "epoch": int(epoch) if isinstance(epoch, int) else None, "gate_trained": gate_trained,
                  "default_path": None if gate_trained else max(config.paths)},
        "import": {
            "format": fmt,
            "file": source,
            "epoch": int(epoch) if isinstance(epoch, int) else None,
            "renamed": report["renamed"],
            "dropped": report["dropped"],
            "left_at_init": report["left_at_init"],
            "defaulted": report["defaulted"],
            "ignored_entries": ignored,
            "overrides": dict(overrides or {}),
            "depth_stats_native": dict(info["native"]),
            "depth_stats": info["depth_stats"],
            "path_mapping": ("DynMM gate output j == path j+1" if fmt == "dynmm" else
                             "no gate in the file: run the max path"),
        },
    }
    return model, meta


__all__ = ["FORMATS", "DATASETS", "NYUV2_40_CLASSES", "SUNRGBD_37_CLASSES", "detect_format", "infer_config",
           "import_checkpoint", "map_state_dict", "voc_palette"]
