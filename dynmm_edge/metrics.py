"""Segmentation metrics from one confusion matrix (numpy only): used by eval, run summaries and the
INT8 accuracy report, so every mIoU in this SDK is computed the same way."""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """[num_classes, num_classes] int64 counts, rows = ground truth, cols = prediction; 255 ignored."""
    pred = np.asarray(pred).ravel().astype(np.int64)
    gt = np.asarray(gt).ravel().astype(np.int64)
    keep = (gt != IGNORE_INDEX) & (gt >= 0) & (gt < num_classes)
    idx = gt[keep] * num_classes + np.clip(pred[keep], 0, num_classes - 1)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def metrics_from_confusion(cm: np.ndarray, class_names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """mIoU (fraction; classes with empty union excluded), per-class IoU (None when excluded), pixel accuracy."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    valid = union > 0
    iou = np.where(valid, tp / np.maximum(union, 1), np.nan)
    total = cm.sum()
    names = list(class_names) if class_names is not None else [str(i) for i in range(cm.shape[0])]
    return {
        "miou": float(np.nanmean(iou)) if valid.any() else 0.0,
        "pixel_acc": float(tp.sum() / total) if total > 0 else 0.0,
        "per_class_iou": OrderedDict((names[i], (None if not valid[i] else float(iou[i])))
                                     for i in range(cm.shape[0])),
    }
