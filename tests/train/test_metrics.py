"""Confusion matrix and mIoU against hand-computed values."""
import numpy as np
import pytest

from dynmm_edge.train.evaluate import confusion_matrix, metrics_from_confusion


def test_confusion_matrix_counts_and_ignore():
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 2]], np.int64)
    cm = confusion_matrix(pred, gt, 4)
    expected = np.zeros((4, 4), np.int64)
    expected[0, 0] = 1
    expected[0, 1] = 1
    expected[1, 1] = 2
    expected[2, 0] = 1
    assert (cm == expected).all()  # the 255 pixel (pred 2) is not counted


def test_miou_hand_computed_absent_class_excluded():
    cm = np.zeros((4, 4), np.int64)
    cm[0, 0], cm[0, 1], cm[1, 1], cm[2, 0] = 1, 1, 2, 1
    m = metrics_from_confusion(cm, ["a", "b", "c", "d"])
    # IoU a = 1/(2+2-1)=1/3, b = 2/(2+3-2)=2/3, c = 0/(1+0-0)=0, d absent from both -> excluded
    assert m["per_class_iou"]["a"] == pytest.approx(1 / 3)
    assert m["per_class_iou"]["b"] == pytest.approx(2 / 3)
    assert m["per_class_iou"]["c"] == 0.0
    assert m["per_class_iou"]["d"] is None
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert m["pixel_acc"] == pytest.approx(3 / 5)


def test_class_only_predicted_counts_as_zero_iou():
    cm = np.array([[2, 1], [0, 0]])
    m = metrics_from_confusion(cm)
    assert m["per_class_iou"]["1"] == 0.0
    assert m["miou"] == pytest.approx((2 / 3 + 0) / 2)


def test_perfect_prediction():
    gt = np.array([[0, 1], [2, 2]], np.uint8)
    m = metrics_from_confusion(confusion_matrix(gt.astype(np.int64), gt, 3))
    assert m["miou"] == 1.0 and m["pixel_acc"] == 1.0
