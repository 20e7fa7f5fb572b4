"""Our checkpoint format, and one entry point (load_model) for presets, our files and imports.

File = torch.save of {format: 'dynmm-edge-checkpoint', version: 1, config: ModelConfig dict,
state_dict, classes, palette, preprocess (PreprocessConfig dict), train (dict)}: plain types and
tensors only, so torch.load(weights_only=True) reads it. The model describes itself: nothing else
is needed to rebuild it.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import torch

from dynmm_edge.atomic import atomic_path
from dynmm_edge.errors import CheckpointError
from dynmm_edge.model.config import ModelConfig
from dynmm_edge.model.net import DynMMNet
from dynmm_edge.model.presets import (NYUV2_DEPTH_MEAN_MM, NYUV2_DEPTH_STD_MM, PRESET_DATASET, PRESETS,
                                      SYNTHETIC_CLASSES, get_preset)

FORMAT = "dynmm-edge-checkpoint"
VERSION = 1
META_KEYS = ("classes", "palette", "preprocess", "train")

NYUV2_CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat",
    "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box",
    "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure",
    "otherfurniture", "otherprop",
)


def default_palette(n: int) -> List[List[int]]:
    """Deterministic, well-separated colours (PASCAL VOC bit-interleaving scheme)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i + 1  # skip black so class 0 is visible
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        out.append([r, g, b])
    return out


def default_meta(preset: str) -> Dict[str, Any]:
    """classes, palette, preprocess and train info for a preset name (untrained weights)."""
    from dynmm_edge.data.preprocess import PreprocessConfig

    config = get_preset(preset)
    dataset = PRESET_DATASET.get(preset, "generic")
    n = config.num_classes
    if dataset == "synthetic" and n == len(SYNTHETIC_CLASSES):
        from dynmm_edge.data import synthetic
        classes = list(synthetic.CLASS_NAMES)
        palette = [list(c) for c in synthetic.PALETTE]
        depth_mean, depth_std = synthetic.DEPTH_MEAN_MM, synthetic.DEPTH_STD_MM
    elif dataset == "nyuv2" and n == len(NYUV2_CLASS_NAMES):
        classes, palette = list(NYUV2_CLASS_NAMES), default_palette(n)
        depth_mean, depth_std = NYUV2_DEPTH_MEAN_MM, NYUV2_DEPTH_STD_MM
    else:
        classes, palette = [f"class_{i}" for i in range(n)], default_palette(n)
        depth_mean, depth_std = NYUV2_DEPTH_MEAN_MM, NYUV2_DEPTH_STD_MM
    preprocess = PreprocessConfig(height=config.height, width=config.width, depth_unit_m=0.001,
                                  depth_mean=depth_mean, depth_std=depth_std).to_dict()
    return {"classes": classes, "palette": palette, "preprocess": preprocess,
            "train": {"weights": "random-init", "preset": preset, "dataset": dataset}}


def validate_meta(config: ModelConfig, meta: Mapping[str, Any], source: str) -> Dict[str, Any]:
    """Check classes/palette/preprocess against the config; returns a normalised copy."""
    from dynmm_edge.data.preprocess import PreprocessConfig

    classes = meta.get("classes")
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{source}: 'classes' must be a list of names")
    if len(classes) != config.num_classes:
        raise CheckpointError(f"{source}: 'classes' lists {len(classes)} names but the model has "
                              f"num_classes={config.num_classes}")
    palette = meta.get("palette")
    if not isinstance(palette, (list, tuple)) or len(palette) != config.num_classes or not all(
            isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
            for c in palette):
        raise CheckpointError(f"{source}: 'palette' must hold {config.num_classes} [r, g, b] colours (0..255)")
    preprocess = meta.get("preprocess")
    try:
        pre = PreprocessConfig.from_dict(dict(preprocess) if isinstance(preprocess, Mapping) else preprocess)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: 'preprocess' is invalid: {exc}") from None
    if (pre.height, pre.width) != (config.height, config.width):
        raise CheckpointError(f"{source}: preprocess size {pre.height}x{pre.width} differs from the model "
                              f"input {config.height}x{config.width}")
    train = meta.get("train", {})
    if not isinstance(train, Mapping):
        raise CheckpointError(f"{source}: 'train' must be a dict")
    out = {k: v for k, v in meta.items() if k not in META_KEYS}
    out.update(classes=list(classes), palette=[list(c) for c in palette], preprocess=pre.to_dict(),
               train=dict(train))
    return out


def check_state_dict(model: torch.nn.Module, state_dict: Mapping[str, Any], source: str) -> None:
    """Raise CheckpointError naming missing/unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}"
                        f"{' ...' if len(unexpected) > 8 else ''}")
    for k, v in state_dict.items():
        if k in expected:
            if not isinstance(v, torch.Tensor):
                problems.append(f"{k} is a {type(v).__name__}, not a tensor")
            elif tuple(v.shape) != tuple(expected[k].shape):
                problems.append(f"shape mismatch for {k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}")
    if problems:
        raise CheckpointError(f"{source}: state_dict does not match the model config: " + "; ".join(problems))


def save_checkpoint(path, model: DynMMNet, meta: Mapping[str, Any]) -> Path:
    """Write atomically; meta needs classes, palette, preprocess (train optional). Validated first."""
    path = Path(path)
    if not isinstance(model, DynMMNet):
        raise TypeError(f"save_checkpoint needs a DynMMNet, got {type(model).__name__}")
    clean = validate_meta(model.config, dict(meta), str(path))
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "classes": clean["classes"],
        "palette": clean["palette"],
        "preprocess": clean["preprocess"],
        "train": clean["train"],
    }
    # via memory: torch.save names the zip's root folder after the file, and the temp file's random
    # name would make every save of the same weights differ byte for byte
    import io
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return path


def _read(path: Path):
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        from dynmm_edge.model.importers import torch_load_weights
        return torch_load_weights(path)
    except Exception as exc:  # pickle errors, truncated zip, disallowed globals
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint with weights_only=True: "
                              f"{type(exc).__name__}: {exc}") from None


def is_our_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def _from_payload(payload, source: str) -> Tuple[DynMMNet, Dict[str, Any]]:
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{source}: not a dynmm-edge checkpoint (no 'format' key); "
                              "ESANet/DynMM files load through load_model()")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{source}: format {payload['format']!r} is not {FORMAT!r}")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{source}: checkpoint version {payload.get('version')!r} unsupported (expected {VERSION})")
    for key in ("config", "state_dict") + META_KEYS[:3]:
        if key not in payload:
            raise CheckpointError(f"{source}: key {key!r} missing")
    try:
        config = ModelConfig.from_dict(dict(payload["config"]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: bad config: {exc}") from None
    meta = validate_meta(config, {k: payload[k] for k in META_KEYS if k in payload}, source)
    model = DynMMNet(config)
    state_dict = payload["state_dict"]
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{source}: 'state_dict' must be a dict of tensors")
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    meta["config"] = config.to_dict()
    return model, meta


def load_checkpoint(path) -> Tuple[DynMMNet, Dict[str, Any]]:
    """(model in eval mode, meta) from one of our checkpoints; CheckpointError names what is wrong."""
    path = Path(path)
    return _from_payload(_read(path), str(path))


def model_checkpoint(spec) -> str:
    """'demo' -> the shipped demo checkpoint; a model folder -> the checkpoint its manifest names.

    So every command that wants a torch model accepts what the runtime accepts. Anything else is
    returned unchanged (a preset name or a checkpoint file).
    """
    from dynmm_edge.paths import DEMO_MODEL
    spec_str = str(spec)
    folder = DEMO_MODEL if spec_str == "demo" and (DEMO_MODEL / "manifest.json").is_file() else Path(spec_str)
    if (folder / "manifest.json").is_file():
        from dynmm_edge.manifest import load_manifest
        m = load_manifest(folder)  # validates hashes and that the file stays inside the folder
        ck = m.extra.get("checkpoint")
        if not ck:
            raise CheckpointError(f"{folder}: the model folder has no checkpoint (manifest 'checkpoint' entry)")
        return str(m.folder / ck["file"])
    return spec_str


IMPORT_OPTIONS = ("height", "width", "dataset", "overrides", "num_classes", "upsampling")


def load_model(spec, **import_options) -> Tuple[DynMMNet, Dict[str, Any]]:
    """'demo' (the shipped model), a model folder, a preset name (random weights), our checkpoint,
    or an ESANet/DynMM checkpoint (imported).

    import_options (height, width, dataset, overrides, num_classes, upsampling) go to the importer;
    for a preset, num_classes and upsampling change its head / upsampling (still random weights);
    None values are ignored, so CLI flags pass straight through.
    """
    import_options = {k: v for k, v in import_options.items() if v is not None}
    unknown = sorted(set(import_options) - set(IMPORT_OPTIONS))
    if unknown:
        raise CheckpointError(f"unknown load option(s) {', '.join(unknown)}; known: {', '.join(IMPORT_OPTIONS)}")
    spec_str = model_checkpoint(spec)
    if spec_str in PRESETS and not Path(spec_str).is_file():
        return _preset_model(spec_str, import_options)
    path = Path(spec_str)
    if not path.is_file():
        raise CheckpointError(f"{spec_str}: neither a checkpoint file nor a preset ({', '.join(PRESETS)})")
    payload = _read(path)
    if is_our_checkpoint(payload) or (isinstance(payload, dict) and "format" in payload):
        model, meta = _from_payload(payload, str(path))
        _check_options_match(model, import_options, str(path))
        return model, meta
    del payload
    try:
        from dynmm_edge.model import importers
        import_checkpoint = importers.import_checkpoint
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not a dynmm-edge checkpoint and the ESANet/DynMM importer is "
                              f"unavailable ({exc})") from None
    model, meta = import_checkpoint(path, **import_options)
    model.eval()
    meta.setdefault("config", model.config.to_dict())
    return model, meta


def _preset_model(name: str, options: Mapping[str, Any]) -> Tuple[DynMMNet, Dict[str, Any]]:
    if "dataset" in options or "overrides" in options:
        raise CheckpointError(f"{name}: dataset/overrides apply to imported ESANet/DynMM checkpoints, not presets")
    from dynmm_edge.model.importers import UPSAMPLING_NAMES
    changes = {k: options[k] for k in ("height", "width", "num_classes") if k in options}
    if "upsampling" in options:
        changes["upsampling"] = UPSAMPLING_NAMES.get(options["upsampling"], options["upsampling"])
    try:
        config = get_preset(name).replace(**changes)
    except ValueError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    model = DynMMNet(config).eval()
    meta = default_meta(name)
    if config.num_classes != len(meta["classes"]):
        meta["classes"] = [f"class_{i}" for i in range(config.num_classes)]
        meta["palette"] = default_palette(config.num_classes)
    meta["preprocess"] = {**meta["preprocess"], "height": config.height, "width": config.width}
    meta["config"] = model.config.to_dict()
    return model, meta


def _check_options_match(model: DynMMNet, options: Mapping[str, Any], source: str) -> None:
    """Our checkpoints describe themselves: an option may only confirm what the file says."""
    for key in ("num_classes", "upsampling"):
        if key in options:
            want = options[key]
            if key == "upsampling":
                from dynmm_edge.model.importers import UPSAMPLING_NAMES
                want = UPSAMPLING_NAMES.get(want, want)
            if getattr(model.config, key) != want:
                raise CheckpointError(f"{source}: the checkpoint has {key}={getattr(model.config, key)!r}, "
                                      f"not {want!r} (dynmm-edge checkpoints store their own config)")
    if "dataset" in options or "overrides" in options:
        raise CheckpointError(f"{source}: dataset/overrides apply to ESANet/DynMM imports; this is a "
                              "dynmm-edge checkpoint with its own classes and config")
