"""mean_average_precision: VOC all-point AP on hand-worked cases, duplicates, missing classes, COCO 0.50:0.95."""
import numpy as np
import pytest

from minicnn.metrics import average_precision, mean_average_precision


def det(boxes, scores, labels):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "scores": np.array(scores, np.float32),
            "labels": np.array(labels, np.int64)}


def gt(boxes, labels):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels, np.int64)}


A, B, FAR = [0, 0, 10, 10], [20, 20, 30, 30], [60, 60, 70, 70]


def test_average_precision_by_hand():
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: envelope 1 up to recall 1/2, then 2/3 -> 1/2 + 1/3
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert average_precision(np.array([0.25, 0.5]), np.array([1.0, 1.0])) == pytest.approx(0.5)   # half found


def test_hit_miss_hit_and_a_duplicate():
    r = mean_average_precision([det([A, FAR, B], [0.9, 0.8, 0.7], [0, 0, 0])], [gt([A, B], [0, 0])])
    assert r["map"] == pytest.approx(5 / 6) and r["ap"].tolist() == pytest.approx([5 / 6])
    # a second box on A (ranked 2nd) is a false positive: precision 1, 1/2, 2/3 again
    r = mean_average_precision([det([A, A, B], [0.9, 0.8, 0.7], [0, 0, 0])], [gt([A, B], [0, 0])])
    assert r["map"] == pytest.approx(5 / 6)
    # the right box with the wrong label counts for neither class
    r = mean_average_precision([det([A, B], [0.9, 0.8], [0, 1])], [gt([A, B], [0, 0])], num_classes=2)
    assert r["ap"][0] == pytest.approx(0.5) and np.isnan(r["ap"][1]) and r["map"] == pytest.approx(0.5)


def test_ranking_across_images_and_classes():
    preds = [det([A], [0.3], [0]), det([FAR, B], [0.9, 0.6], [0, 1])]
    targets = [gt([A], [0]), gt([B], [1])]
    r = mean_average_precision(preds, targets, num_classes=3)
    # class 0: FAR (0.9, FP) then A (0.3, TP): precision 0, 1/2 at recall 0, 1 -> AP 1/2; class 1: AP 1
    assert r["ap"][:2].tolist() == pytest.approx([0.5, 1.0]) and np.isnan(r["ap"][2])
    assert r["map"] == pytest.approx(0.75)
    empty = mean_average_precision([det([], [], []), det([], [], [])], targets)    # nothing detected
    assert empty["map"] == 0 and empty["map_50_95"] == 0


def test_iou_thresholds_and_the_coco_mean():
    pred = [det([[0, 0, 10, 6.2]], [0.8], [0])]          # IoU 0.62 with A
    target = [gt([A], [0])]
    assert mean_average_precision(pred, target)["map"] == 1.0
    assert mean_average_precision(pred, target, iou_threshold=0.7)["map"] == 0.0
    assert mean_average_precision(pred, target)["map_50_95"] == pytest.approx(0.3)   # 0.50, 0.55, 0.60 of 10
    perfect = mean_average_precision([det([A, B], [0.5, 0.5], [3, 1])], [gt([A, B], [3, 1])])
    assert perfect["map"] == 1.0 and perfect["map_50_95"] == 1.0 and perfect["ap"].shape == (4,)


def test_images_without_objects_and_errors():
    r = mean_average_precision([det([A], [0.9], [0]), det([B], [0.95], [0])], [gt([A], [0]), gt([], [])])
    assert r["map"] == pytest.approx(0.5)                 # the box on the empty image ranks first: FP
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        mean_average_precision([det([], [], []), det([], [], [])], [gt([], [])])
