"""Post-processing of a Session's outputs (numpy only): labels at the camera's resolution.

The network runs at its fixed input size; a robot wants labels per camera pixel. Nearest-neighbour
upsampling keeps label values valid (no blending between classes) and costs one gather.
"""
from typing import Optional, Tuple

import numpy as np

LABELS_AT = ("frame", "model")


def resize_labels_nearest(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """HxW labels -> height x width by nearest neighbour (pixel centres, as cv2 INTER_NEAREST_EXACT)."""
    h, w = labels.shape[-2:]
    if (h, w) == (height, width):
        return labels
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return labels[..., rows[:, None], cols[None, :]]


def frame_size(frame) -> Optional[Tuple[int, int]]:
    rgb = getattr(frame, "rgb", None)
    return None if rgb is None else tuple(np.asarray(rgb).shape[:2])


def labels_for(labels: np.ndarray, frame, labels_at: str = "frame") -> np.ndarray:
    """labels_at 'frame': at the frame's (camera) resolution; 'model': unchanged."""
    if labels_at not in LABELS_AT:
        from dynmm_edge.errors import DynMMError
        raise DynMMError(f"labels_at={labels_at!r}: choose 'frame' (camera resolution) or 'model'")
    size = frame_size(frame) if labels_at == "frame" else None
    return labels if size is None else resize_labels_nearest(labels, *size)
