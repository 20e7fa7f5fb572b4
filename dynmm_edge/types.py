"""Typed records that travel between sources, the session and sinks."""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np


@dataclass
class Frame:
    """One RGB-D frame as delivered by a FrameSource.

    rgb: uint8 HxWx3 in RGB order. depth: uint16 (or float32) HxW in units of `depth_scale_m`
    metres per count (0 = invalid). labels: optional uint8 HxW ground truth (255 = void).
    """
    frame_id: int
    rgb: np.ndarray
    depth: Optional[np.ndarray]
    depth_scale_m: float = 0.001
    timestamp_s: float = 0.0
    labels: Optional[np.ndarray] = None
    intrinsics: Optional[Tuple[float, float, float, float]] = None  # fx, fy, cx, cy
    meta: Dict[str, object] = field(default_factory=dict)
    stamp_ns: Optional[int] = None  # exact capture stamp (e.g. ROS header.stamp) for outputs to carry
    sensor_frame: str = ""          # coordinate frame name (e.g. ROS header.frame_id)


@dataclass
class Result:
    """What the Session returns for one frame.

    labels: int HxW at the frame's (camera) resolution by default (Session.labels_at = 'model':
    the model's input size). path: number of depth segments run
    (depth_fraction of the full path's depth-encoder MACs).
    times_ms: per-branch and 'preprocess', 'total' times. branches_run: names in execution order.
    """
    frame_id: int
    labels: np.ndarray
    path: int
    times_ms: Dict[str, float]
    branches_run: Tuple[str, ...]
    gate_probs: Optional[np.ndarray] = None
    depth_macs: float = 0.0
    depth_fraction: float = 1.0  # depth MACs run / depth MACs of the full path
    frame: Optional[Frame] = None
    logits: Optional[np.ndarray] = None
    tile_mask: Optional[np.ndarray] = None  # region mode: bool [rows, cols], True = depth ran on the tile
    tile_size: int = 0  # region mode: tile size in model-input px; the [rows, cols] grid spans the whole frame
    tile_reused: Optional[np.ndarray] = None  # region mode with reuse=: bool [rows, cols], True = cached features fused

    @property
    def active_share(self) -> Optional[float]:
        """Share of tiles whose depth ran (region mode), else None."""
        return None if self.tile_mask is None else float(np.mean(self.tile_mask))

    @property
    def reused_share(self) -> Optional[float]:
        """Share of tiles that fused cached depth features without running (region mode with reuse), else None."""
        return None if self.tile_reused is None else float(np.mean(self.tile_reused))
