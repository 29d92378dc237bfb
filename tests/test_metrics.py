"""Metrics on small hand-worked examples."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import metrics


def test_accuracy_error_rate_from_labels_logits_and_tensors():
    target = np.array([0, 1, 2, 2, 1])
    pred = np.array([0, 2, 2, 2, 0])
    assert metrics.accuracy(pred, target) == pytest.approx(0.6)
    assert metrics.error_rate(pred, target) == pytest.approx(0.4)
    logits = np.eye(3)[pred] * 5 - 1                   # argmax = pred
    assert metrics.accuracy(mc.tensor(logits), mc.tensor(target)) == pytest.approx(0.6)
    with pytest.raises(ValueError, match=r"predictions \(4,\) do not match targets \(5,\)"):
        metrics.accuracy(pred[:4], target)


def test_confusion_matrix_rows_are_true_classes():
    C = metrics.confusion_matrix([0, 2, 2, 2, 0, 1], [0, 1, 2, 2, 1, 1])
    np.testing.assert_array_equal(C, [[1, 0, 0],
                                      [1, 1, 1],
                                      [0, 0, 2]])
    assert metrics.confusion_matrix([0], [0], num_classes=4).shape == (4, 4)
    with pytest.raises(ValueError, match=r"labels outside 0..1"):
        metrics.confusion_matrix([2], [0], num_classes=2)


def test_balanced_error_rate_is_not_fooled_by_the_majority_class():
    target = np.array([0] * 90 + [1] * 10)
    always_zero = np.zeros(100, int)
    assert metrics.error_rate(always_zero, target) == pytest.approx(0.1)
    assert metrics.balanced_error_rate(always_zero, target) == pytest.approx(0.5)
    # two classes: (FP / (FP + TN) + FN / (FN + TP)) / 2 with TN=80, FP=10, FN=3, TP=7
    pred = np.r_[np.zeros(80), np.ones(10), np.zeros(3), np.ones(7)].astype(int)
    assert metrics.balanced_error_rate(pred, target) == pytest.approx((10 / 90 + 3 / 10) / 2)


def test_roc_curve_and_auc_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.4])
    target = np.array([1, 1, 0, 1, 0, 0])
    fpr, tpr, thr = metrics.roc_curve(scores, target)
    np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert thr[0] == np.inf and np.all(np.diff(thr) < 0)
    # AUC = P(random positive outscores random negative) = 8 of 9 pairs
    assert metrics.roc_auc_score(scores, target) == pytest.approx(8 / 9)
    assert metrics.auc([0, 1], [0, 1]) == pytest.approx(0.5)


def test_roc_ties_make_one_point_and_count_half():
    fpr, tpr, thr = metrics.roc_curve([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(tpr, [0, 1])
    assert thr.tolist() == [np.inf, 0.5]
    assert metrics.roc_auc_score([0.3, 0.3, 0.9], [0, 1, 1]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="needs both classes, got 2 positives and 0 negatives"):
        metrics.roc_curve([0.1, 0.2], [1, 1])


def test_iou_and_segmentation_accuracy_on_a_label_map():
    target = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 2]])
    # class 0: TP 3, FN 1, FP 0 -> IoU 3/4, accuracy 3/4; class 1: TP 3, FN 1, FP 1 -> 3/5, 3/4;
    # class 2: TP 0, FP 1 -> IoU 0, no pixels of its own -> accuracy nan
    np.testing.assert_allclose(metrics.iou(pred, target), [3 / 4, 3 / 5, 0])
    np.testing.assert_allclose(metrics.segmentation_accuracy(pred, target), [3 / 4, 3 / 4, np.nan])
    assert metrics.mean_iou(pred, target) == pytest.approx((3 / 4 + 3 / 5) / 3)
    scores = np.eye(3)[pred].transpose(2, 0, 1)[None]    # (1, K, H, W) scores, argmax over K
    np.testing.assert_allclose(metrics.iou(scores, target[None]), [3 / 4, 3 / 5, 0])
    assert np.isnan(metrics.iou([0], [0], num_classes=2)[1])
