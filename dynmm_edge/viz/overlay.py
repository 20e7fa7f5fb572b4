"""Label colouring and overlays for sinks and plots (numpy; cv2 only for HUD text).

Images are RGB uint8 throughout; conversion to BGR happens only at the OpenCV boundary (sinks).
"""
from typing import Optional, Sequence

import numpy as np

from dynmm_edge.errors import DataError

VOID = 255


def default_palette(num_classes: int = 256) -> np.ndarray:
    """Deterministic, well separated colours (bit-interleaved, as in the PASCAL VOC palette)."""
    pal = np.zeros((num_classes, 3), np.uint8)
    for k in range(num_classes):
        c, r, g, b = k, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[k] = (r, g, b)
    return pal


def as_palette(palette) -> np.ndarray:
    """Validate a palette (K x 3 of 0..255) or build the default one for None."""
    if palette is None:
        return default_palette()
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] == 0:
        raise DataError(f"palette must have shape (K, 3), got {pal.shape}")
    if pal.min() < 0 or pal.max() > 255:
        raise DataError("palette values must lie in 0..255")
    return pal.astype(np.uint8)


def resize_nearest(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize with pure indexing: labels must never be interpolated."""
    h, w = labels.shape[:2]
    if (h, w) == (height, width):
        return labels
    rows = np.minimum((np.arange(height) * h / height).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(width) * w / width).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def colorize(labels: np.ndarray, palette=None) -> np.ndarray:
    """HxW class ids -> HxWx3 RGB. Void (255) and ids beyond the palette are black."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise DataError(f"labels must be HxW, got shape {labels.shape}")
    pal = as_palette(palette)
    lut = np.zeros((256, 3), np.uint8)
    n = min(len(pal), 256)
    lut[:n] = pal[:n]
    lut[VOID] = 0
    ids = labels.astype(np.int64)
    ids = np.where((ids < 0) | (ids > 255), VOID, ids)
    return lut[ids]


def overlay(rgb: np.ndarray, labels: np.ndarray, palette=None, alpha: float = 0.5) -> np.ndarray:
    """Blend coloured labels over the RGB image; void pixels keep the image untouched.

    Labels at the model's input size are resized (nearest) to the image size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha must be in [0, 1], got {alpha}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DataError(f"rgb must be HxWx3, got shape {rgb.shape}")
    labels = resize_nearest(np.asarray(labels), rgb.shape[0], rgb.shape[1])
    col = colorize(labels, palette).astype(np.float32)
    out = rgb.astype(np.float32) * (1.0 - alpha) + col * alpha
    void = (labels.astype(np.int64) == VOID)[..., None]
    out = np.where(void, rgb.astype(np.float32), out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def draw_hud(img: np.ndarray, lines: Sequence[str], origin=(6, 6), scale: Optional[float] = None) -> np.ndarray:
    """Text lines on a dark box in the top-left corner; returns a new image (input untouched)."""
    from dynmm_edge._lazy import require
    cv2 = require("cv2", "HUD text")
    out = np.ascontiguousarray(img).copy()
    if not lines:
        return out
    h, w = out.shape[:2]
    scale = scale if scale is not None else max(0.35, min(1.0, w / 900.0))
    thick = 1
    sizes = [cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for s in lines]
    line_h = max(sz[1] for sz in sizes) + int(8 * scale) + 2
    box_w = min(w, max(sz[0] for sz in sizes) + 8)
    box_h = min(h, line_h * len(lines) + 6)
    x0, y0 = origin
    x1, y1 = min(w, x0 + box_w), min(h, y0 + box_h)
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * 0.35).astype(np.uint8)
    for k, text in enumerate(lines):
        y = y0 + (k + 1) * line_h
        cv2.putText(out, text, (x0 + 4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def draw_tiles(img: np.ndarray, tile_mask: np.ndarray, color=(255, 255, 0)) -> np.ndarray:
    """Outline the active tiles of a region-mode tile mask [rows, cols] (scaled to the image); new image."""
    out = np.ascontiguousarray(img).copy()
    mask = np.asarray(tile_mask, dtype=bool)
    if mask.ndim != 2:
        raise DataError(f"tile mask must be [rows, cols], got shape {mask.shape}")
    h, w = out.shape[:2]
    rows, cols = mask.shape
    for r, c in zip(*np.nonzero(mask)):
        y0, y1 = r * h // rows, (r + 1) * h // rows - 1
        x0, x1 = c * w // cols, (c + 1) * w // cols - 1
        out[y0, x0:x1 + 1] = color
        out[y1, x0:x1 + 1] = color
        out[y0:y1 + 1, x0] = color
        out[y0:y1 + 1, x1] = color
    return out


def hud_fps(timestamps: Sequence[float], total_ms: Optional[float] = None) -> str:
    """FPS over the recent frame timestamps; on the first frame (one timestamp) the frame's own
    processing rate 1000 / total_ms, else '--' (never a misleading 0.0)."""
    if len(timestamps) > 1 and timestamps[-1] > timestamps[0]:
        return f"{(len(timestamps) - 1) / (timestamps[-1] - timestamps[0]):5.1f}"
    if total_ms:
        return f"{1000.0 / total_ms:5.1f}"
    return "   --"


def draw_legend(img: np.ndarray, labels: np.ndarray, class_names: Sequence[str], palette=None,
                max_entries: int = 12, scale: Optional[float] = None) -> np.ndarray:
    """Colour swatch + class name for each class present in `labels` (most pixels first), in the
    bottom-left corner; returns a new image."""
    from dynmm_edge._lazy import require
    cv2 = require("cv2", "HUD legend")
    out = np.ascontiguousarray(img).copy()
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    keep = ids != VOID
    order = np.argsort(-counts[keep], kind="stable")
    present = [int(i) for i in ids[keep][order] if int(i) < len(class_names)][:max_entries]
    if not present:
        return out
    pal = as_palette(palette)
    h, w = out.shape[:2]
    scale = scale if scale is not None else max(0.3, min(0.8, w / 1100.0))
    line_h = int(cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] + 8 * scale + 3)
    sw = max(6, line_h - 4)
    texts = [class_names[i] for i in present]
    box_w = min(w, sw + 10 + max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for t in texts) + 6)
    box_h = min(h, line_h * len(present) + 6)
    x0, y0 = 6, max(0, h - box_h - 6)
    region = out[y0:y0 + box_h, x0:x0 + box_w].astype(np.float32)
    out[y0:y0 + box_h, x0:x0 + box_w] = (region * 0.35).astype(np.uint8)
    for k, (cid, text) in enumerate(zip(present, texts)):
        y = y0 + 3 + k * line_h
        colour = tuple(int(v) for v in pal[cid % len(pal)])
        cv2.rectangle(out, (x0 + 4, y + 2), (x0 + 4 + sw, y + 2 + sw), colour, -1)
        cv2.putText(out, text, (x0 + sw + 10, y + sw), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out
