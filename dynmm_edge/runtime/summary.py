"""Per-run accounting shared by `run`, `demo` and the Python API: paths, branch calls, skip share, mIoU."""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from dynmm_edge.metrics import confusion_matrix, metrics_from_confusion


_LO_MS, _HI_MS, _PER_DECADE = 1e-3, 1e5, 460
_BINS = int(np.log10(_HI_MS / _LO_MS) * _PER_DECADE)


def _bin(ms: float) -> int:
    """0: below 1 us (or not a number); _BINS + 1: above 100 s."""
    if not ms >= _LO_MS:
        return 0
    return min(_BINS + 1, 1 + int(np.log10(ms / _LO_MS) * _PER_DECADE))


def _median(hist: np.ndarray) -> float:
    """Geometric centre of the bin holding the middle sample (within 0.25 % of the true median)."""
    k = int(np.searchsorted(np.cumsum(hist), (hist.sum() + 1) / 2))
    if k == 0:
        return 0.0
    return float(_LO_MS * 10 ** ((min(k, _BINS) - 0.5) / _PER_DECADE))


@dataclass
class RunSummary:
    """Feed it every Result (pipeline on_result); it never keeps frames."""
    paths: tuple
    full_depth_macs: float
    num_classes: int
    class_names: Optional[tuple] = None
    path_hist: Counter = field(default_factory=Counter)
    branch_calls: Counter = field(default_factory=Counter)
    depth_macs_sum: float = 0.0
    frames: int = 0
    total_ms_sum: float = 0.0
    # latency histogram, log-spaced (0.5 % wide bins from 1 us to 100 s): constant memory on a run
    # of any length (a list of every latency grew by ~40 bytes per frame, 100 MB a day at 30 FPS)
    total_ms_hist: np.ndarray = field(default_factory=lambda: np.zeros(_BINS + 2, np.int64))
    cm: Optional[np.ndarray] = None

    def add(self, result) -> None:
        from dynmm_edge.data.preprocess import resize_labels
        self.frames += 1
        self.path_hist[int(result.path)] += 1
        self.branch_calls.update(result.branches_run)
        self.depth_macs_sum += result.depth_macs
        ms = float(result.times_ms.get("total", 0.0))
        self.total_ms_sum += ms
        self.total_ms_hist[_bin(ms)] += 1
        frame = result.frame
        if frame is not None and frame.labels is not None:
            gt = frame.labels
            if gt.shape != result.labels.shape:
                gt = resize_labels(gt, *result.labels.shape)
            cm = confusion_matrix(result.labels, gt, self.num_classes)
            self.cm = cm if self.cm is None else self.cm + cm

    def to_dict(self) -> Dict[str, object]:
        full = max(self.full_depth_macs, 1.0)
        d = {
            "frames": self.frames,
            "path_histogram": {str(k): self.path_hist.get(k, 0) for k in self.paths},
            "branch_calls": dict(sorted(self.branch_calls.items())),
            "depth_macs_mean": self.depth_macs_sum / self.frames if self.frames else None,
            "depth_skip_share": 1.0 - self.depth_macs_sum / (full * self.frames) if self.frames else None,
            "frames_without_depth": self.path_hist.get(min(self.paths), 0) / self.frames if self.frames else None,
            "latency_ms_mean": self.total_ms_sum / self.frames if self.frames else None,
            "latency_ms_p50": _median(self.total_ms_hist) if self.frames else None,
        }
        if self.cm is not None:
            d.update(metrics_from_confusion(self.cm, self.class_names))
        return d
