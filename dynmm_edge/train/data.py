"""Training/evaluation datasets: the synthetic world (generated once, cached) and folders on disk.

Raw frames are cached as uint8/uint16 so a 3000-frame train set at 192x256 costs ~0.5 GB less than
float tensors would; normalisation goes through dynmm_edge.data.preprocess (the ONE preprocessing,
shared with the runtime) at item load. Augmentation (flip, scale/crop, colour jitter on RGB only) is
deterministic per (seed, epoch, index) so --resume reproduces the same batches.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

import numpy as np
import torch
import torch.nn.functional as F

from dynmm_edge.errors import DataError

IGNORE_INDEX = 255
SYNTH_KEYS = {"frames": int, "hard_fraction": float, "seed": int, "start": int, "world": int, "kinds": str}


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations for training; all off = evaluation."""
    flip: bool = True
    scale_min: float = 1.0
    scale_max: float = 1.4
    brightness: float = 0.15   # +- fraction of 255 added to RGB
    contrast: float = 0.15     # +- fraction of contrast change
    enabled: bool = True


NO_AUGMENT = AugmentConfig(enabled=False)


def parse_synthetic_uri(uri: str) -> Dict[str, object]:
    """synthetic://?frames=N&hard_fraction=F&seed=S&start=I -> dict (unknown keys are an error)."""
    parsed = urlparse(uri)
    if parsed.scheme != "synthetic":
        raise DataError(f"{uri!r}: not a synthetic:// URI")
    out: Dict[str, object] = {"frames": 200, "hard_fraction": 0.3, "seed": 0, "start": 0, "world": 2, "kinds": ""}
    for key, values in parse_qs(parsed.query, keep_blank_values=True).items():
        if key not in SYNTH_KEYS:
            raise DataError(f"{uri!r}: unknown option {key!r}; known: {', '.join(sorted(SYNTH_KEYS))}")
        try:
            out[key] = SYNTH_KEYS[key](values[-1])
        except ValueError as exc:
            raise DataError(f"{uri!r}: option {key}={values[-1]!r} is not a {SYNTH_KEYS[key].__name__}") from exc
    if int(out["frames"]) < 1:
        raise DataError(f"{uri!r}: frames must be >= 1")
    if not 0.0 <= float(out["hard_fraction"]) <= 1.0:
        raise DataError(f"{uri!r}: hard_fraction must be in [0, 1]")
    try:
        synth_config_from(out, 8, 8)
    except ValueError as exc:
        raise DataError(f"{uri!r}: {exc}") from exc
    return out


def synth_config_from(opts: Dict[str, object], width: int, height: int):
    """SynthConfig for parsed synthetic:// options (world, kinds) at a size."""
    from dynmm_edge.data.synthetic import DEFAULT_KIND_MIX, SynthConfig, parse_kind_mix

    kinds = str(opts.get("kinds") or "")
    return SynthConfig(width=width, height=height, hard_fraction=float(opts.get("hard_fraction", 0.3)),
                       seed=int(opts.get("seed", 0)), world=int(opts.get("world", 2)),
                       kind_mix=parse_kind_mix(kinds) if kinds else DEFAULT_KIND_MIX)


class RGBDSegDataset(torch.utils.data.Dataset):
    """Frames held as raw arrays; items are preprocessed tensors.

    Item: dict rgb float32 [3,H,W], depth float32 [1,H,W], labels int64 [H,W] (255 = ignore),
    index int, kind str. Subclasses fill self._raw with (rgb uint8, depth uint16, labels uint8,
    kind, name) or override _load(i) for lazy loading.
    """

    def __init__(self, pre_cfg, augment: AugmentConfig = NO_AUGMENT, seed: int = 0):
        self.pre_cfg = pre_cfg
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self._raw: List[Tuple[np.ndarray, np.ndarray, np.ndarray, str, str]] = []

    # -- raw access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._raw)

    def _load(self, i: int):
        return self._raw[i]

    def set_epoch(self, epoch: int) -> None:
        """Augmentation randomness is keyed by epoch (call before each epoch)."""
        self.epoch = int(epoch)

    def kinds(self) -> List[str]:
        return [self._load(i)[3] for i in range(len(self))]

    def label_arrays(self):
        for i in range(len(self)):
            yield self._load(i)[2]

    # -- items ----------------------------------------------------------------------------------
    def __getitem__(self, i: int):
        rgb, depth, labels, kind, name = self._load(int(i))
        try:
            return self._make_item(int(i), rgb, depth, labels, kind, name)
        except DataError:
            raise
        except Exception as exc:  # name the file, never a bare stack from deep inside numpy
            raise DataError(f"{name}: cannot prepare item {i}: {exc}") from exc

    def _make_item(self, i, rgb, depth, labels, kind, name):
        from dynmm_edge.data.preprocess import preprocess

        aug = self.augment
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if aug.enabled and (aug.brightness > 0 or aug.contrast > 0):
            rgb = _colour_jitter(rgb, rng, aug.brightness, aug.contrast)
        cfg = self.pre_cfg
        rgb_t, depth_t = preprocess(rgb, depth, 0.001, cfg, frame_id=name)
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb_t[0], dtype=np.float32))
        depth_t = torch.from_numpy(np.ascontiguousarray(depth_t[0], dtype=np.float32))
        lab = labels
        if lab.shape != (cfg.height, cfg.width):  # nearest resize, like depth
            from dynmm_edge.data.preprocess import resize_labels
            lab = resize_labels(lab, cfg.height, cfg.width)
        lab_t = torch.from_numpy(lab.astype(np.int64))
        if aug.enabled:
            rgb_t, depth_t, lab_t = _geometric(rgb_t, depth_t, lab_t, rng, aug)
        return {"rgb": rgb_t, "depth": depth_t, "labels": lab_t, "index": i, "kind": kind}


def _colour_jitter(rgb: np.ndarray, rng, brightness: float, contrast: float) -> np.ndarray:
    """Brightness/contrast jitter on uint8 RGB only (depth is a measurement: never jittered)."""
    x = rgb.astype(np.float32)
    c = 1.0 + rng.uniform(-contrast, contrast)
    b = rng.uniform(-brightness, brightness) * 255.0
    mean = x.mean()
    x = (x - mean) * c + mean + b
    return np.clip(x, 0, 255).astype(np.uint8)


def _geometric(rgb, depth, lab, rng, aug: AugmentConfig):
    """Random horizontal flip and scale-up + crop back to the input size (bilinear RGB, nearest depth/labels)."""
    if aug.flip and rng.random() < 0.5:
        rgb, depth, lab = rgb.flip(-1), depth.flip(-1), lab.flip(-1)
    s = rng.uniform(aug.scale_min, aug.scale_max) if aug.scale_max > aug.scale_min else aug.scale_min
    if s > 1.0 + 1e-3:
        h, w = lab.shape
        nh, nw = int(round(h * s)), int(round(w * s))
        rgb = F.interpolate(rgb[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        depth = F.interpolate(depth[None], size=(nh, nw), mode="nearest")[0]
        lab = F.interpolate(lab[None, None].float(), size=(nh, nw), mode="nearest")[0, 0].long()
        y0 = int(rng.integers(0, nh - h + 1))
        x0 = int(rng.integers(0, nw - w + 1))
        rgb = rgb[:, y0:y0 + h, x0:x0 + w]
        depth = depth[:, y0:y0 + h, x0:x0 + w]
        lab = lab[y0:y0 + h, x0:x0 + w]
    return rgb.contiguous(), depth.contiguous(), lab.contiguous()


def _check_frame(name: str, rgb, depth, labels, num_classes: Optional[int]):
    """Raise DataError naming the frame/file when arrays are malformed."""
    if rgb is None or np.ndim(rgb) != 3 or rgb.shape[2] != 3:
        raise DataError(f"{name}: rgb must be HxWx3, got shape {None if rgb is None else np.shape(rgb)}")
    if rgb.dtype != np.uint8:
        raise DataError(f"{name}: rgb must be uint8, got {rgb.dtype}")
    if depth is None:
        raise DataError(f"{name}: depth is missing (training needs RGB-D)")
    if np.ndim(depth) != 2 or depth.shape != rgb.shape[:2]:
        raise DataError(f"{name}: depth shape {np.shape(depth)} does not match rgb {rgb.shape[:2]}")
    if labels is None:
        raise DataError(f"{name}: labels are missing")
    if np.ndim(labels) != 2 or labels.shape != rgb.shape[:2]:
        raise DataError(f"{name}: labels shape {np.shape(labels)} does not match rgb {rgb.shape[:2]}")
    if np.issubdtype(np.asarray(depth).dtype, np.floating) and not np.all(np.isfinite(depth)):
        raise DataError(f"{name}: depth contains NaN/inf")
    if num_classes is not None:
        lab = np.asarray(labels)
        bad = (lab != IGNORE_INDEX) & (lab >= num_classes)
        if bad.any():
            raise DataError(f"{name}: label id {int(lab[bad].max())} >= num_classes {num_classes} "
                            f"(use 255 for void)")


class SyntheticDataset(RGBDSegDataset):
    """Frames [start, start+frames) of SyntheticWorld(seed, hard_fraction), generated once at the model size."""

    def __init__(self, pre_cfg, frames: int, hard_fraction: float = 0.3, seed: int = 0, start: int = 0,
                 augment: AugmentConfig = NO_AUGMENT, num_classes: Optional[int] = None, progress=False,
                 world: int = 2, kinds: str = ""):
        super().__init__(pre_cfg, augment, seed)
        from dynmm_edge.data.synthetic import SyntheticWorld

        world = SyntheticWorld(synth_config_from({"hard_fraction": hard_fraction, "seed": seed, "world": world,
                                                  "kinds": kinds}, pre_cfg.width, pre_cfg.height))
        it = range(start, start + frames)
        if progress:
            from tqdm import tqdm
            it = tqdm(it, desc="synthesising", leave=False)
        for i in it:
            f = world.frame(i)
            name = f"synthetic://?seed={seed}&hard_fraction={hard_fraction} frame {i}"
            rgb = np.ascontiguousarray(f.rgb, dtype=np.uint8)
            depth = np.ascontiguousarray(f.depth).astype(np.uint16, copy=False)
            labels = np.ascontiguousarray(f.labels, dtype=np.uint8)
            _check_frame(name, rgb, depth, labels, num_classes)
            self._raw.append((rgb, depth, labels, str(f.kind), name))

    @classmethod
    def from_uri(cls, uri: str, pre_cfg, augment=NO_AUGMENT, num_classes=None, progress=False):
        o = parse_synthetic_uri(uri)
        return cls(pre_cfg, frames=int(o["frames"]), hard_fraction=float(o["hard_fraction"]),
                   seed=int(o["seed"]), start=int(o["start"]), augment=augment, num_classes=num_classes,
                   progress=progress, world=int(o["world"]), kinds=str(o["kinds"]))


class FolderDataset(RGBDSegDataset):
    """A dataset folder read by dynmm_edge.data.datasets.DirectoryDataset (NYUv2-style layout).

    Every frame is validated at construction (shapes, dtypes, label ids) so a bad file stops the
    run before the first epoch, with the file named, never silently mid-epoch.
    """

    def __init__(self, root, pre_cfg, split: str = "train", augment=NO_AUGMENT, num_classes=None):
        super().__init__(pre_cfg, augment, 0)
        from dynmm_edge.data.datasets import DirectoryDataset

        root = Path(root)
        if not root.exists():
            raise DataError(f"{root}: dataset folder does not exist")
        try:
            ds = _open_directory(DirectoryDataset, root, split, num_classes)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{root}: cannot open dataset folder: {exc}") from exc
        for i in range(len(ds)):
            name = _item_name(ds, i, root)
            try:
                fr = ds[i]
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"{name}: cannot read: {exc}") from exc
            rgb, depth, labels = fr.rgb, fr.depth, fr.labels
            _check_frame(name, rgb, depth, labels, num_classes)
            if np.asarray(depth).dtype != np.uint16:
                scale = float(getattr(fr, "depth_scale_m", 0.001) or 0.001)
                depth = np.clip(np.round(np.asarray(depth, dtype=np.float64) * scale / 0.001), 0, 65535)
                depth = depth.astype(np.uint16)
            kind = str((getattr(fr, "meta", None) or {}).get("kind", "real"))
            self._raw.append((np.ascontiguousarray(rgb), np.ascontiguousarray(depth),
                              np.ascontiguousarray(labels, dtype=np.uint8), kind, name))
        if not self._raw:
            raise DataError(f"{root}: no frames found for split {split!r}")


def _open_directory(cls, root, split, num_classes=None):
    return cls(root, split=split, num_classes=num_classes)


def _item_name(ds, i, root) -> str:
    files = getattr(ds, "rgb_files", None)
    if files is not None and i < len(files):
        return str(files[i])
    return f"{root} item {i}"


def open_dataset(spec: str, pre_cfg, split: str = "train", augment=NO_AUGMENT, num_classes=None,
                 progress=False) -> RGBDSegDataset:
    """`synthetic://?...` or a folder path -> dataset."""
    if str(spec).startswith("synthetic://"):
        return SyntheticDataset.from_uri(str(spec), pre_cfg, augment, num_classes, progress)
    return FolderDataset(spec, pre_cfg, split, augment, num_classes)


def collate(items):
    """Stack tensors; keep kinds/indices as lists."""
    return {
        "rgb": torch.stack([it["rgb"] for it in items]),
        "depth": torch.stack([it["depth"] for it in items]),
        "labels": torch.stack([it["labels"] for it in items]),
        "index": [it["index"] for it in items],
        "kind": [it["kind"] for it in items],
    }
