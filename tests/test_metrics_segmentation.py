"""Segmentation measures on label maps small enough to count by hand."""
import numpy as np
import pytest

from minicnn import metrics

# 2 x 3 label maps, classes 0..2
TARGET = np.array([[[0, 0, 1], [1, 2, 2]]])
PRED = np.array([[[0, 1, 1], [1, 2, 0]]])
# per class: 0: TP 1 (pixel (0,0)), FP 1 ((1,2) predicted 0), FN 1 ((0,1) predicted 1) -> IoU 1/3
#            1: TP 2, FP 1 ((0,1)), FN 0 -> 2/3;   2: TP 1, FP 0, FN 1 ((1,2)) -> 1/2


def test_pixel_accuracy_by_hand():
    assert metrics.pixel_accuracy(PRED, TARGET) == pytest.approx(4 / 6)


def test_pixel_accuracy_ignores_pixels_and_takes_scores():
    target = TARGET.copy()
    target[0, 0, 1] = 255                      # the wrong pixel (0, 1) is left out: 4 right of 5
    assert metrics.pixel_accuracy(PRED, target, ignore_index=255) == pytest.approx(4 / 5)
    scores = np.eye(3)[PRED].transpose(0, 3, 1, 2)          # one-hot (N, K, H, W) scores: argmax is PRED
    assert metrics.pixel_accuracy(scores, TARGET) == pytest.approx(4 / 6)


def test_iou_and_mean_iou_by_hand():
    np.testing.assert_allclose(metrics.iou(PRED, TARGET, 3), [1 / 3, 2 / 3, 1 / 2])
    assert metrics.mean_iou(PRED, TARGET, 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_mean_iou_skips_classes_absent_from_both():
    iou = metrics.iou(PRED, TARGET, 5)                      # classes 3 and 4 occur nowhere: nan, left out
    assert np.isnan(iou[3:]).all()
    assert metrics.mean_iou(PRED, TARGET, 5) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_perfect_prediction():
    assert metrics.pixel_accuracy(TARGET, TARGET) == 1.0
    assert metrics.mean_iou(TARGET, TARGET, 3) == 1.0
