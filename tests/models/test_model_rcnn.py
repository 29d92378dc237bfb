"""Fast and Faster R-CNN: RoI sampling, anchor labelling, the RPN loss against NumPy and gradchecked, and each
detector overfitting one batch."""
import numpy as np
import pytest

import minicnn as mc
from detector_checks import overfit
from minicnn.models import encode_boxes
from minicnn.models.rcnn import BOX_STD, label_anchors, rpn_loss, sample_rois


def test_sample_rois_keeps_one_to_three_and_the_iou_ranges():
    gt, labels = np.array([[10.0, 10, 30, 40]]), np.array([7])
    rng = np.random.default_rng(0)
    shifts = rng.uniform(-12, 12, (200, 1))
    proposals = np.array([[10.0, 10, 30, 40]]) + shifts * np.array([[1, 0, 1, 0]])        # slid sideways
    rois, lab, t = sample_rois(proposals, gt, labels, 32, rng=np.random.default_rng(1))
    iou = mc.functional.box_iou(rois, gt).max(1)
    assert len(rois) == 32 and (lab > 0).sum() == 8                 # 1:3
    assert (lab[iou >= 0.5] == 8).all() and (iou[lab == 0] < 0.5).all()
    assert (iou[lab == 0] >= 0.1).all()                             # enough in [0.1, 0.5): none lower
    np.testing.assert_allclose(t[:8], encode_boxes(rois[:8], np.repeat(gt, 8, 0)) / BOX_STD)
    assert not t[8:].any()
    empty, lab0, _ = sample_rois(proposals, np.zeros((0, 4)), np.zeros(0, np.int64), 32)
    assert len(empty) == 32 and not lab0.any()                      # an empty canvas: background only


def test_label_anchors_thresholds_best_anchor_and_sampling():
    gt = np.array([[0.0, 0, 10, 10]])
    anchors = np.array([[0.0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 10, 20], [20, 20, 30, 30], [1, 1, 11, 11]])
    lab, t = label_anchors(anchors, gt, num=256)
    # IoU 1, 0.83 (> 0.7), 0.5 (ignored), 0 (negative), 0.68 (ignored)
    assert lab.tolist() == [1, 1, -1, 0, -1]
    np.testing.assert_allclose(t[1], encode_boxes(anchors[1:2], gt)[0])
    far = np.array([[0.0, 0, 10, 40]])                               # IoU 0.25 at best: still its best anchor
    lab, _ = label_anchors(anchors[:4], far)
    assert lab[2] == 1
    many = np.tile(anchors[:1], (300, 1))
    lab, _ = label_anchors(np.concatenate([many, np.tile(anchors[3:4], (300, 1))]), gt, num=256,
                           rng=np.random.default_rng(0))
    assert (lab == 1).sum() == 128 and (lab == 0).sum() == 128


def test_rpn_loss_matches_numpy_and_gradcheck():
    rng = np.random.default_rng(0)
    obj, deltas = rng.standard_normal((2, 6)), rng.standard_normal((2, 6, 4)) * 0.1
    labels = np.array([[1, 0, -1, 0, 1, -1], [0, -1, -1, 0, 0, 0]])
    targets = rng.standard_normal((2, 6, 4)) * 0.1
    lo, lb = rpn_loss(mc.tensor(obj, dtype=np.float64), mc.tensor(deltas, dtype=np.float64), labels, targets)
    s = labels >= 0
    bce = np.logaddexp(0, obj) - labels * obj
    d = np.abs(deltas - targets)[labels == 1]
    sl1 = np.where(d < 1 / 9, 0.5 * d ** 2 * 9, d - 0.5 / 9)
    assert lo.item() == pytest.approx(bce[s].sum() / s.sum(), rel=1e-12)
    assert lb.item() == pytest.approx(sl1.sum() / s.sum(), rel=1e-12)
    mc.gradcheck(lambda o, d: sum(rpn_loss(o, d, labels, targets), mc.tensor(0.0, dtype=np.float64)), [obj, deltas])


@pytest.mark.parametrize("name, steps", [("fast_rcnn", 40), ("faster_rcnn", 60)])
def test_rcnn_overfits_one_batch(name, steps):
    overfit(name, steps)


def test_ink_proposals_find_the_digits():
    from minicnn.data import MNISTDetection
    from minicnn.models.rcnn import ink_proposals
    ds = MNISTDetection(train=False, size=30)
    found = []
    for i in range(len(ds)):
        image, target = ds[i]
        p = ink_proposals(image[0])
        assert p.shape[1] == 4 and (p[:, 2:] > p[:, :2]).all() and (p >= 0).all() and (p <= 96).all()
        if len(target["boxes"]):
            found.extend(mc.functional.box_iou(target["boxes"].astype(np.float64), p).max(1) >= 0.7)
        else:
            assert len(p) == 0                                       # a blank canvas has no proposals
    assert np.mean(found) > 0.85                                     # recall at IoU 0.7
    two = np.zeros((20, 20))
    two[2:6, 2:6] = two[8:12, 3:7] = 1                               # two strokes 2 px apart, one digit
    boxes = ink_proposals(two, min_area=1)
    assert [2, 2, 6, 6] in boxes.tolist() and [2, 2, 7, 12] in boxes.tolist()   # the regions and their union
