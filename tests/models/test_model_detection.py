"""Fast R-CNN's RoI head and loss, R-CNN's box parametrisation, the YOLOv2 head, decoding, post-processing and
loss: shapes, round trips, NumPy references written from the papers' formulas, gradients, bad input."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn.models import (FastRCNNHead, YOLOv2Head, decode_boxes, encode_boxes, fast_rcnn_loss, yolo_decode,
                            yolo_loss, yolo_postprocess)
from model_checks import check_weight_grads, n_params


def random_boxes(rng, k, size=64.0):
    xy = rng.uniform(0, size / 2, (k, 2))
    return np.concatenate([xy, xy + rng.uniform(2, size / 2, (k, 2))], axis=1)


# ---------------------------------------------------------------- box parametrisation (R-CNN appendix C)

def test_encode_by_hand_and_round_trip():
    p = np.array([[0.0, 0.0, 10.0, 20.0]])
    g = np.array([[5.0, 0.0, 25.0, 10.0]])                 # centre (15, 5) vs (5, 10); size 20 x 10 vs 10 x 20
    np.testing.assert_allclose(encode_boxes(p, g), [[1.0, -0.25, math.log(2), math.log(0.5)]])
    rng = np.random.default_rng(0)
    p, g = random_boxes(rng, 20), random_boxes(rng, 20)
    np.testing.assert_allclose(decode_boxes(p, encode_boxes(p, g)), g, atol=1e-10)


def test_decode_per_class_deltas():
    rng = np.random.default_rng(1)
    p, g1, g2 = random_boxes(rng, 5), random_boxes(rng, 5), random_boxes(rng, 5)
    out = decode_boxes(p, np.concatenate([encode_boxes(p, g1), encode_boxes(p, g2)], axis=1))
    assert out.shape == (5, 8)
    np.testing.assert_allclose(out[:, :4], g1, atol=1e-10)
    np.testing.assert_allclose(out[:, 4:], g2, atol=1e-10)


def test_box_errors():
    with pytest.raises(ValueError, match=r"encode_boxes: proposals and gt .*\(3, 4\) and \(2, 4\)"):
        encode_boxes(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"decode_boxes: deltas must have shape .*\(3, 5\)"):
        decode_boxes(np.ones((3, 4)), np.ones((3, 5)))


# ---------------------------------------------------------------- Fast R-CNN

def make_head(classes=3):
    return FastRCNNHead(in_channels=2, num_classes=classes, roi_size=2, spatial_scale=1 / 4, hidden=6)


def rois():
    return np.array([[0, 0, 0, 15, 15], [1, 4, 4, 12, 20], [0, 8, 2, 30, 30], [1, 0, 0, 31, 31]], np.float64)


def test_head_shapes_and_keys():
    head = make_head()
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 2, 8, 8)))
    cls, box = head(x, rois())
    assert cls.shape == (4, 4) and box.shape == (4, 16)
    assert list(head.state_dict()) == ["fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias", "cls_score.weight",
                                       "cls_score.bias", "bbox_pred.weight", "bbox_pred.bias"]
    assert n_params(head) == (8 * 6 + 6) + (6 * 6 + 6) + (6 * 4 + 4) + (6 * 16 + 16)
    assert abs(head.bbox_pred.weight.numpy().std() - 0.001) < 0.0005   # the paper's initialisation


def fast_rcnn_loss_ref(cls, box, labels, targets, beta):
    """Eq. 1 written out: mean over RoIs of -log softmax[u] + [u >= 1] sum_i smoothL1(t^u_i - v_i)."""
    total = 0.0
    for r in range(len(labels)):
        z = cls[r] - cls[r].max()
        total += -(z[labels[r]] - np.log(np.exp(z).sum()))
        if labels[r] >= 1:
            d = np.abs(box[r, 4 * labels[r]:4 * labels[r] + 4] - targets[r])
            total += np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta).sum()
    return total / len(labels)


@pytest.mark.parametrize("labels", [[0, 2, 3, 1, 2], [0, 0, 0, 0, 0]])
def test_fast_rcnn_loss_matches_reference(labels):
    rng = np.random.default_rng(2)
    cls, box, targets = rng.standard_normal((5, 4)), 2 * rng.standard_normal((5, 16)), rng.standard_normal((5, 4))
    labels = np.array(labels)
    for beta in (1.0, 1 / 9):
        got = fast_rcnn_loss(mc.tensor(cls, dtype=np.float64), mc.tensor(box, dtype=np.float64), labels, targets,
                             beta=beta).item()
        assert got == pytest.approx(fast_rcnn_loss_ref(cls, box, labels, targets, beta), rel=1e-12)


def test_fast_rcnn_loss_gradcheck():
    rng = np.random.default_rng(3)
    labels, targets = np.array([1, 0, 3, 2]), rng.standard_normal((4, 4))
    mc.gradcheck(lambda c, b: fast_rcnn_loss(c, b, labels, targets), [rng.standard_normal((4, 4)),
                                                                     3 * rng.standard_normal((4, 16))])


def test_fast_rcnn_head_and_loss_weight_grads():
    head = make_head()
    head.eval()                                     # dropout off; check_weight_grads re-seeds it anyway
    x = np.random.default_rng(4).standard_normal((2, 2, 8, 8))
    labels, targets = np.array([1, 0, 3, 2]), np.random.default_rng(5).standard_normal((4, 4))

    class WithLoss(mc.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = head

        def forward(self, x):
            return fast_rcnn_loss(*self.head(x, rois()), labels, targets)

    assert check_weight_grads(WithLoss(), x, names=["head.fc6.weight", "head.fc7.bias", "head.cls_score.weight",
                                                    "head.bbox_pred.weight"], per_param=3) == 12


def test_fast_rcnn_loss_errors():
    c, b = mc.tensor(np.zeros((3, 4))), mc.tensor(np.zeros((3, 16)))
    with pytest.raises(ValueError, match=r"fast_rcnn_loss: bbox_targets must be \(R, 4\) = \(3, 4\), got \(3, 8\)"):
        fast_rcnn_loss(c, b, np.array([0, 1, 2]), np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"fast_rcnn_loss: bbox_pred must be \(R, 4K\) = \(3, 16\)"):
        fast_rcnn_loss(c, mc.tensor(np.zeros((3, 12))), np.array([0, 1, 2]), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"fast_rcnn_loss: labels must be \(3,\) integers in \[0, 4\)"):
        fast_rcnn_loss(c, b, np.array([0, 1, 4]), np.zeros((3, 4)))


# ---------------------------------------------------------------- YOLOv2

ANCHORS = np.array([[8.0, 8.0], [16.0, 32.0]])
STRIDE = 8


def test_yolo_head_shape():
    head = YOLOv2Head(in_channels=4, num_anchors=2, num_classes=3)
    assert head(mc.tensor(np.zeros((2, 4, 3, 5)))).shape == (2, 16, 3, 5)
    assert n_params(head) == 4 * 16 + 16


def placed_output(N=1, H=3, W=4, C=3, logit=-10.0):
    """Raw output with every objectness at sigmoid(-10) ~ 0 and all offsets 0."""
    out = np.zeros((N, 2, 5 + C, H, W))
    out[:, :, 4] = logit
    return out


def flat(out):
    """(N, A, 5 + C, H, W) -> the head's (N, A * (5 + C), H, W)."""
    return out.reshape(out.shape[0], -1, *out.shape[3:])


def test_yolo_decode_places_a_known_box():
    out = placed_output()
    # anchor 1 (16 x 32) in row 2, column 1: tx = 0 -> centre x = (0.5 + 1) * 8 = 12; ty = log 3 -> sigmoid = 3/4,
    # centre y = (0.75 + 2) * 8 = 22; tw = log 2 -> width 32; th = 0 -> height 32; class 2 by far; to = 0 -> 1/2
    out[0, 1, :, 2, 1] = [0.0, math.log(3), math.log(2), 0.0, 0.0, 0.0, 0.0, 30.0]
    boxes, obj, probs = yolo_decode(mc.tensor(flat(out), dtype=np.float64), ANCHORS, STRIDE)
    assert boxes.shape == (1, 24, 4) and obj.shape == (1, 24) and probs.shape == (1, 24, 3)
    k = 1 * 12 + 2 * 4 + 1                                 # a * H * W + row * W + col
    np.testing.assert_allclose(boxes[0, k], [12 - 16, 22 - 16, 12 + 16, 22 + 16])
    assert obj[0, k] == pytest.approx(0.5) and probs[0, k].argmax() == 2
    np.testing.assert_allclose(probs.sum(-1), 1)
    np.testing.assert_allclose(boxes[0, 0], [0, 0, 8, 8])  # anchor 0, cell (0, 0), all offsets 0


def test_yolo_postprocess_removes_a_duplicate():
    out = placed_output(N=2)
    # sigmoid(+-6) puts a centre at a cell's far or near edge: two cells predict nearly one 8 x 8 box at (16, 16)
    out[0, 0, :, 1, 1] = [6, 6, 0, 0, 5.0, 10, 0, 0]      # class 0, the best score
    out[0, 0, :, 1, 2] = [-6, 6, 0, 0, 4.0, 10, 0, 0]     # same object, class 0, lower score -> dropped
    out[0, 0, :, 2, 1] = [6, -6, 0, 0, 3.0, 0, 10, 0]     # same place but class 1: kept (NMS per class)
    out[1, 0, :, 0, 0] = [0, 0, 0, 0, 3.0, 0, 0, 10]      # image 1: one box of class 2
    results = yolo_postprocess(*yolo_decode(flat(out), ANCHORS, STRIDE), score_threshold=0.5, iou_threshold=0.45)
    (b0, s0, l0), (b1, s1, l1) = results
    np.testing.assert_allclose(b0[0], [12, 12, 20, 20], atol=0.05)
    assert l0.tolist() == [0, 1] and np.all(np.diff(s0) < 0)
    assert l1.tolist() == [2] and s1[0] == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-3)
    with pytest.raises(ValueError, match="yolo_postprocess: need boxes"):
        yolo_postprocess(np.zeros((1, 5, 4)), np.zeros((1, 4)), np.zeros((1, 5, 3)))


def yolo_loss_ref(out, anchors, stride, gt, label, ignore):
    """One image, one ground-truth box, written from the documented rule with plain loops."""
    _, A, D, H, W = out.shape
    sig = lambda v: 1 / (1 + math.exp(-v))                                      # noqa: E731
    gx, gy, gw, gh = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2, gt[2] - gt[0], gt[3] - gt[1]
    ious = [min(gw, pw) * min(gh, ph) / (gw * gh + pw * ph - min(gw, pw) * min(gh, ph)) for pw, ph in anchors]
    a0, i0, j0 = int(np.argmax(ious)), int(gy // stride), int(gx // stride)
    total = 0.0
    for a in range(A):
        for i in range(H):
            for j in range(W):
                t = out[0, a, :, i, j]
                p = sig(t[4])
                if (a, i, j) == (a0, i0, j0):
                    total += -math.log(p)
                    total += (sig(t[0]) - (gx / stride - j)) ** 2 + (sig(t[1]) - (gy / stride - i)) ** 2
                    total += (t[2] - math.log(gw / anchors[a, 0])) ** 2 + (t[3] - math.log(gh / anchors[a, 1])) ** 2
                    z = t[5:] - t[5:].max()
                    total += -(z[label] - math.log(np.exp(z).sum()))
                    continue
                cx, cy = (sig(t[0]) + j) * stride, (sig(t[1]) + i) * stride
                w, h = anchors[a, 0] * math.exp(t[2]), anchors[a, 1] * math.exp(t[3])
                iw = max(0.0, min(cx + w / 2, gt[2]) - max(cx - w / 2, gt[0]))
                ih = max(0.0, min(cy + h / 2, gt[3]) - max(cy - h / 2, gt[1]))
                if iw * ih / (w * h + gw * gh - iw * ih) <= ignore:
                    total += -math.log(1 - p)
    return total


def test_yolo_loss_matches_reference_and_ignores_good_guesses():
    rng = np.random.default_rng(6)
    out = 0.5 * rng.standard_normal((1, 2, 8, 3, 4))
    gt = np.array([13.0, 4.0, 27.0, 30.0])                 # centre (20, 17): cell row 2, col 2; tall -> anchor 1
    out[0, 0, :4, 2, 2] = [0.0, math.log(1 / 7), math.log(1.75), math.log(3.25)]  # anchor 0 decodes to gt: ignored
    for ignore in (0.6, 1.0):
        got = yolo_loss(mc.tensor(out.reshape(1, 16, 3, 4), dtype=np.float64), ANCHORS, STRIDE,
                        [(gt[None], np.array([1]))], ignore_threshold=ignore).item()
        assert got == pytest.approx(yolo_loss_ref(out, ANCHORS, STRIDE, gt, 1, ignore), rel=1e-10)
    assert yolo_loss_ref(out, ANCHORS, STRIDE, gt, 1, 0.6) < yolo_loss_ref(out, ANCHORS, STRIDE, gt, 1, 1.0)


def test_yolo_loss_gradcheck():
    rng = np.random.default_rng(7)
    targets = [(np.array([[13.0, 4.0, 27.0, 30.0], [1.0, 1.0, 9.0, 7.0]]), np.array([1, 2])),
               (np.zeros((0, 4)), np.zeros(0, np.int64))]
    mc.gradcheck(lambda o: yolo_loss(o, ANCHORS, STRIDE, targets), [rng.standard_normal((2, 16, 3, 4))])


def test_yolo_errors():
    out = mc.tensor(np.zeros((1, 15, 3, 4)))
    with pytest.raises(ValueError, match=r"yolo_decode: output must be \(N, A \* \(5 \+ C\), H, W\) with A = 2"):
        yolo_decode(out, ANCHORS, STRIDE)
    with pytest.raises(ValueError, match=r"yolo_loss: anchors must be \(A, 2\)"):
        yolo_loss(out, np.ones(4), STRIDE, [])
    with pytest.raises(ValueError, match=r"yolo_loss: need one \(boxes, labels\) target per image, got 0"):
        yolo_loss(mc.tensor(np.zeros((1, 16, 3, 4))), ANCHORS, STRIDE, [])
    with pytest.raises(ValueError, match=r"yolo_loss: image 0: labels must be \(1,\) in \[0, 3\)"):
        yolo_loss(mc.tensor(np.zeros((1, 16, 3, 4))), ANCHORS, STRIDE, [(np.ones((1, 4)), np.array([3]))])
