"""Per-run accounting shared by `run`, `demo` and the Python API: paths, branch calls, skip share, mIoU."""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """Confusion matrix [gt, pred] over valid pixels (gt != ignore and gt < num_classes)."""
    gt = gt.reshape(-1).astype(np.int64)
    pred = pred.reshape(-1).astype(np.int64)
    valid = (gt != ignore) & (gt < num_classes) & (pred >= 0) & (pred < num_classes)
    return np.bincount(gt[valid] * num_classes + pred[valid], minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(cm: np.ndarray) -> Dict[str, object]:
    """mIoU (fraction) over classes present in GT or prediction; per-class IoU (None where absent)."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    per_class = [float(tp[i] / union[i]) if present[i] else None for i in range(len(tp))]
    miou = float(np.mean(tp[present] / union[present])) if present.any() else None
    pixel_acc = float(tp.sum() / cm.sum()) if cm.sum() else None
    return {"miou": miou, "pixel_acc": pixel_acc, "per_class_iou": per_class}


@dataclass
class RunSummary:
    """Feed it every Result (pipeline on_result); it never keeps frames."""
    paths: tuple
    full_depth_macs: float
    num_classes: int
    path_hist: Counter = field(default_factory=Counter)
    branch_calls: Counter = field(default_factory=Counter)
    depth_macs_sum: float = 0.0
    frames: int = 0
    total_ms: list = field(default_factory=list)
    cm: Optional[np.ndarray] = None

    def add(self, result) -> None:
        from dynmm_edge.data.preprocess import resize_labels
        self.frames += 1
        self.path_hist[int(result.path)] += 1
        self.branch_calls.update(result.branches_run)
        self.depth_macs_sum += result.depth_macs
        self.total_ms.append(float(result.times_ms.get("total", 0.0)))
        frame = result.frame
        if frame is not None and frame.labels is not None:
            gt = frame.labels
            if gt.shape != result.labels.shape:
                gt = resize_labels(gt, *result.labels.shape)
            cm = confusion(result.labels, gt, self.num_classes)
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
            "latency_ms_mean": float(np.mean(self.total_ms)) if self.total_ms else None,
            "latency_ms_p50": float(np.median(self.total_ms)) if self.total_ms else None,
        }
        if self.cm is not None:
            d.update(iou_from_confusion(self.cm))
        return d
