"""The one place RGB and depth are normalised; training, export checks and the runtime all call it.

numpy only. OpenCV (if importable) speeds up the bilinear RGB resize; the numpy fallback uses the
same half-pixel-centre convention on float32 data, so both give the same numbers to ~1e-5.
Nearest resize (depth, labels) is always numpy index gathering with half-pixel centres
(cv2.INTER_NEAREST_EXACT semantics), so it is bit-identical with or without OpenCV.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import numpy as np

from dynmm_edge.errors import DataError

INVALID_POLICIES = ("raw", "keep")


@dataclass(frozen=True)
class PreprocessConfig:
    """Input size and normalisation constants that travel with a model (checkpoint meta, manifest).

    depth_unit_m: the unit depth_mean/depth_std are expressed in (0.001 = millimetres).
    invalid_depth: 'raw' -> invalid pixels (0, NaN, inf, negative) are 0 after normalisation
    (ESANet: "mean depth" to the network); 'keep' -> invalid pixels count as distance 0 and are
    normalised like any other value.
    Defaults are the NYUv2 depth statistics; synthetic models pass DEPTH_MEAN_MM / DEPTH_STD_MM.
    """
    height: int = 480
    width: int = 640
    rgb_mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    rgb_std: Tuple[float, float, float] = (0.229, 0.224, 0.225)
    depth_unit_m: float = 0.001
    depth_mean: float = 2841.95
    depth_std: float = 1417.26
    invalid_depth: str = "raw"

    def __post_init__(self):
        object.__setattr__(self, "rgb_mean", tuple(float(v) for v in self.rgb_mean))
        object.__setattr__(self, "rgb_std", tuple(float(v) for v in self.rgb_std))
        for name in ("height", "width"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"PreprocessConfig.{name} must be a positive int, got {v!r}")
            object.__setattr__(self, name, int(v))
        if len(self.rgb_mean) != 3 or len(self.rgb_std) != 3:
            raise ValueError("PreprocessConfig.rgb_mean and rgb_std need 3 values (R, G, B)")
        if any(not np.isfinite(s) or s <= 0 for s in self.rgb_std):
            raise ValueError(f"PreprocessConfig.rgb_std must be > 0, got {self.rgb_std}")
        for name in ("depth_unit_m", "depth_std"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"PreprocessConfig.{name} must be > 0, got {v!r}")
            object.__setattr__(self, name, v)
        if not np.isfinite(float(self.depth_mean)):
            raise ValueError(f"PreprocessConfig.depth_mean must be finite, got {self.depth_mean!r}")
        object.__setattr__(self, "depth_mean", float(self.depth_mean))
        if self.invalid_depth not in INVALID_POLICIES:
            raise ValueError(f"PreprocessConfig.invalid_depth must be one of {INVALID_POLICIES}, "
                             f"got {self.invalid_depth!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rgb_mean"] = list(self.rgb_mean)
        d["rgb_std"] = list(self.rgb_std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        """Strict: unknown keys are an error (a typo must not silently fall back to a default)."""
        if not isinstance(d, dict):
            raise ValueError(f"PreprocessConfig.from_dict needs a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"PreprocessConfig: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


# ----------------------------------------------------------------------------------------- resize
@lru_cache(maxsize=64)
def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel, half-pixel centres: floor((i + 0.5) * n_in / n_out)."""
    idx = np.floor((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)).astype(np.intp)
    return np.minimum(idx, n_in - 1)


@lru_cache(maxsize=64)
def _linear_weights(n_in: int, n_out: int):
    """Bilinear taps (i0, i1, w1) with half-pixel centres and edge clamping (cv2.INTER_LINEAR)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D (or HxWxC) array; identical with or without OpenCV."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    return img[_nearest_index(h, height)[:, None], _nearest_index(w, width)[None, :]]


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Label maps (class ids, 255 = void) to another size: nearest, never interpolated ids.

    Used both ways: ground truth to the model size for training, and predicted labels at model
    size back to the camera size for display/evaluation.
    """
    if labels.ndim != 2:
        raise DataError(f"labels must be 2-D HxW, got shape {labels.shape}")
    return resize_nearest(labels, int(height), int(width))


def _resize_bilinear_np(img: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    y0, y1, wy = _linear_weights(h, height)
    x0, x1, wx = _linear_weights(w, width)
    img = img.astype(np.float32, copy=False)
    wy = wy[:, None, None] if img.ndim == 3 else wy[:, None]
    rows = img[y0] * (1.0 - wy) + img[y1] * wy
    wx = wx[None, :, None] if img.ndim == 3 else wx[None, :]
    return rows[:, x0] * (1.0 - wx) + rows[:, x1] * wx


_CV2 = None


def _cv2():
    """cv2 or False; looked up once (optional speed-up only)."""
    global _CV2
    if _CV2 is None:
        try:
            from dynmm_edge._lazy import require
            _CV2 = require("cv2", "fast resize")
        except Exception:
            _CV2 = False
    return _CV2


def resize_bilinear(img: np.ndarray, height: int, width: int, use_cv2: Optional[bool] = None) -> np.ndarray:
    """Bilinear resize to float32 (HxW or HxWxC). use_cv2=None: OpenCV when importable."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img.astype(np.float32, copy=False)
    cv2 = _cv2() if use_cv2 in (None, True) else False
    if use_cv2 and not cv2:
        from dynmm_edge._lazy import require
        require("cv2", "OpenCV resize")
    if cv2:
        return cv2.resize(img.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_LINEAR)
    return _resize_bilinear_np(img, height, width)


# ------------------------------------------------------------------------------------- preprocess
def _where(frame_id) -> str:
    return f" (frame {frame_id})" if frame_id is not None else ""


def _check_inputs(rgb, depth, frame_id):
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        desc = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise DataError(f"rgb must be uint8 HxWx3{_where(frame_id)}, got {desc}")
    if depth is None:
        return
    if not isinstance(depth, np.ndarray) or depth.ndim != 2:
        desc = f"{depth.dtype} {depth.shape}" if isinstance(depth, np.ndarray) else type(depth).__name__
        raise DataError(f"depth must be a 2-D HxW array{_where(frame_id)}, got {desc}")
    if depth.dtype.kind not in "uif":
        raise DataError(f"depth must be numeric{_where(frame_id)}, got dtype {depth.dtype}")
    if depth.shape != rgb.shape[:2]:
        raise DataError(f"rgb and depth sizes differ{_where(frame_id)}: rgb {rgb.shape[1]}x{rgb.shape[0]}, "
                        f"depth {depth.shape[1]}x{depth.shape[0]} (align depth to colour first)")


@lru_cache(maxsize=16)
def _rgb_affine(mean: tuple, std: tuple):
    scale = np.array([1.0 / (255.0 * s) for s in std], np.float32)
    offset = np.array([-m / s for m, s in zip(mean, std)], np.float32)
    return scale, offset


def _rgb_chw(rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 HxWx3 -> normalised float32 3xHxW."""
    h, w = rgb.shape[:2]
    scale, offset = _rgb_affine(cfg.rgb_mean, cfg.rgb_std)
    x = resize_bilinear(rgb, cfg.height, cfg.width) if (h, w) != (cfg.height, cfg.width) else rgb
    out = np.empty((3, cfg.height, cfg.width), np.float32)
    for c in range(3):  # per-channel planes: contiguous writes, no big temporaries
        np.multiply(x[:, :, c], scale[c], out=out[c], casting="unsafe")
        out[c] += offset[c]
    return out


def _depth_hw(depth: Optional[np.ndarray], depth_scale_m: float, cfg: PreprocessConfig) -> np.ndarray:
    """depth in source counts -> normalised float32 HxW with the invalid policy applied."""
    if depth is None:  # no depth stream: every pixel invalid
        d = np.zeros((cfg.height, cfg.width), np.float32)
        invalid = np.ones_like(d, dtype=bool)
    else:
        d = resize_nearest(depth, cfg.height, cfg.width).astype(np.float32)  # always a fresh copy
        if depth_scale_m != cfg.depth_unit_m:
            d *= np.float32(depth_scale_m / cfg.depth_unit_m)
        if depth.dtype.kind == "f":
            invalid = ~(d > 0)  # NaN compares False -> invalid; handles -inf, negatives, 0
            invalid |= np.isinf(d)
        elif depth.dtype.kind == "i":
            invalid = d <= 0
        else:
            invalid = d == 0
        d[invalid] = 0.0
    d -= np.float32(cfg.depth_mean)
    d *= np.float32(1.0 / cfg.depth_std)
    if cfg.invalid_depth == "raw":
        d[invalid] = 0.0
    return d


def preprocess(rgb: np.ndarray, depth: Optional[np.ndarray], depth_scale_m: float, cfg: PreprocessConfig,
               frame_id=None) -> Tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 HxWx3, depth HxW in `depth_scale_m` metres per count) -> (rgb [1,3,H,W], depth [1,1,H,W]).

    depth None means "no depth" (all invalid). Sizes are the model's (cfg.height, cfg.width).
    """
    _check_inputs(rgb, depth, frame_id)
    if not (depth_scale_m > 0 and np.isfinite(depth_scale_m)):
        raise DataError(f"depth_scale_m must be > 0{_where(frame_id)}, got {depth_scale_m!r}")
    return _rgb_chw(rgb, cfg)[None], _depth_hw(depth, float(depth_scale_m), cfg)[None, None]


def preprocess_batch(rgbs: Sequence[np.ndarray], depths: Sequence[Optional[np.ndarray]], depth_scale_m,
                     cfg: PreprocessConfig, frame_ids: Optional[Sequence] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Batch version: lists of frames (sizes may differ) -> (rgb [B,3,H,W], depth [B,1,H,W]).

    depth_scale_m: one float for all, or one per frame.
    """
    n = len(rgbs)
    if len(depths) != n:
        raise DataError(f"preprocess_batch: {n} rgb images but {len(depths)} depth images")
    scales = [depth_scale_m] * n if np.isscalar(depth_scale_m) else list(depth_scale_m)
    if len(scales) != n:
        raise DataError(f"preprocess_batch: {n} frames but {len(scales)} depth scales")
    ids = list(frame_ids) if frame_ids is not None else [None] * n
    rgb_out = np.empty((n, 3, cfg.height, cfg.width), np.float32)
    depth_out = np.empty((n, 1, cfg.height, cfg.width), np.float32)
    for b in range(n):
        r, d = preprocess(rgbs[b], depths[b], scales[b], cfg, frame_id=ids[b])
        rgb_out[b] = r[0]
        depth_out[b] = d[0]
    return rgb_out, depth_out


def preprocess_frame(frame, cfg: PreprocessConfig) -> Tuple[np.ndarray, np.ndarray]:
    """dynmm_edge.types.Frame -> model inputs (errors name the frame id)."""
    return preprocess(frame.rgb, frame.depth, frame.depth_scale_m, cfg, frame_id=frame.frame_id)
