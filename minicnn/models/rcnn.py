"""Fast R-CNN (Girshick 2015) and Faster R-CNN (Ren et al. 2015) on a small backbone for 96 x 96 MNISTDetection
canvases.  Both share the stride-8 feature map, RoI max pooling and ``FastRCNNHead``; Fast R-CNN classifies
given proposals (here sliding windows: the paper's selective search has no counterpart on plain canvases),
Faster R-CNN its own, from a region proposal network trained jointly.  Torchvision's contract (``Detector``);
class 0 of the heads is the background, so dataset label c is head class c + 1."""
import numpy as np

import minicnn.functional as F
import minicnn.nn as nn
from minicnn import backend
from minicnn import random as mc_random
from minicnn.models.darknet import ConvBNLeaky, _init
from minicnn.models.detection import Detector, FastRCNNHead, decode_boxes, encode_boxes, fast_rcnn_loss
from minicnn.models.yolo import _stack

__all__ = ["FastRCNN", "FasterRCNN", "RPN", "fast_rcnn", "faster_rcnn", "sample_rois", "label_anchors", "rpn_loss",
           "ink_proposals"]

BOX_STD = np.array([0.1, 0.1, 0.2, 0.2])        # Fast R-CNN's normalised box targets (torchvision's 10, 10, 5, 5)


def _iou(a, b):
    return np.asarray(F.box_iou(a, b)) if len(a) and len(b) else np.zeros((len(a), len(b)))


def sample_rois(proposals, gt, labels, num, fg_fraction=0.25, fg_iou=0.5, bg_iou=(0.1, 0.5), rng=None):
    """Fast R-CNN's minibatch sampling (§2.3): from proposals plus the ground truth boxes, up to
    ``fg_fraction * num`` foreground RoIs (IoU >= fg_iou with some box: label = that box's class + 1) and
    background ones (max IoU in [bg_iou)) for the rest; when the image has too few in [0.1, 0.5) (an empty
    canvas has none) the rest comes from below 0.1.  -> rois (R, 4), head labels (R,), box targets (R, 4)
    (encoded against the best box and divided by BOX_STD; zero for background)."""
    rng = rng or mc_random.generator()
    cand = np.concatenate([proposals, gt]) if len(gt) else proposals
    iou = _iou(cand, gt)
    best = iou.max(1) if len(gt) else np.zeros(len(cand))
    which = iou.argmax(1) if len(gt) else np.zeros(len(cand), int)
    fg = np.flatnonzero(best >= fg_iou)
    bg = np.flatnonzero((best >= bg_iou[0]) & (best < bg_iou[1]))
    low = np.flatnonzero(best < bg_iou[0])
    n_fg = min(int(round(fg_fraction * num)), len(fg))
    fg = rng.choice(fg, n_fg, replace=False) if n_fg < len(fg) else fg
    n_bg = min(num - n_fg, len(bg) + len(low))
    bg = rng.choice(bg, n_bg, replace=False) if n_bg <= len(bg) else \
        np.concatenate([bg, rng.choice(low, n_bg - len(bg), replace=False)])
    keep = np.concatenate([fg, bg]).astype(np.int64)
    rois = cand[keep]
    head_labels = np.zeros(len(keep), np.int64)
    targets = np.zeros((len(keep), 4))
    if n_fg:
        head_labels[:n_fg] = labels[which[fg]] + 1
        targets[:n_fg] = encode_boxes(cand[fg], gt[which[fg]]) / BOX_STD
    return rois, head_labels, targets


def label_anchors(anchors, gt, num=256, pos_iou=0.7, neg_iou=0.3, rng=None):
    """Faster R-CNN's anchor labels (§3.1.2): positive for IoU > pos_iou with some box and for each box's
    best-matching anchor(s), negative below neg_iou, the rest ignored; then ``num`` anchors sampled with up to
    half positives.  -> labels (A,) in {1, 0, -1 (not sampled)}, box targets (A, 4) against the best box."""
    rng = rng or mc_random.generator()
    lab = np.full(len(anchors), -1)
    targets = np.zeros((len(anchors), 4))
    if len(gt) == 0:
        lab[:] = 0
    else:
        iou = _iou(anchors, gt)
        best = iou.max(1)
        lab[best < neg_iou] = 0
        lab[best > pos_iou] = 1
        lab[np.flatnonzero((iou == iou.max(0, keepdims=True)) & (iou > 0)) // len(gt)] = 1
        pos = lab == 1
        targets[pos] = encode_boxes(anchors[pos], gt[iou.argmax(1)[pos]])
    pos, neg = np.flatnonzero(lab == 1), np.flatnonzero(lab == 0)
    n_pos = min(num // 2, len(pos))
    if len(pos) > n_pos:
        lab[rng.choice(pos, len(pos) - n_pos, replace=False)] = -1
    n_neg = min(num - n_pos, len(neg))
    if len(neg) > n_neg:
        lab[rng.choice(neg, len(neg) - n_neg, replace=False)] = -1
    return lab, targets


def rpn_loss(obj, deltas, labels, box_targets):
    """The RPN's loss (eq. 1 of Ren et al., as torchvision normalises it): binary cross-entropy of the
    objectness logits obj (N, A) of the sampled anchors (labels (N, A) in {1, 0}; -1: not sampled) and smooth L1
    (beta 1/9) of the deltas (N, A, 4) of the positive ones against box_targets (N, A, 4), both summed and
    divided by the number of sampled anchors.  -> (objectness loss, box loss)."""
    sampled, pos = np.nonzero(labels >= 0), np.nonzero(labels == 1)
    n = max(len(sampled[0]), 1)
    dtype = obj.dtype
    loss_obj = F.binary_cross_entropy_with_logits(obj[sampled], labels[sampled].astype(dtype), reduction="sum") / n
    if len(pos[0]) == 0:
        return loss_obj, (deltas * 0).sum()
    return loss_obj, F.smooth_l1_loss(deltas[pos], box_targets[pos].astype(dtype), reduction="sum", beta=1 / 9) / n


class Backbone(nn.Module):
    """3 x 3 convs with 1 x 1 reductions (BN, leaky ReLU) and three max pools: (N, 1, H, W) -> (N, 8c, H/8, W/8)."""
    stride = 8

    def __init__(self, width=8):
        super().__init__()
        c = width
        self.features, self.out_channels = _stack([c, "M", 2 * c, "M", 4 * c, (2 * c, 1), 4 * c, "M",
                                                   8 * c, (4 * c, 1), 8 * c], 1)

    def forward(self, x):
        return self.features(x)


class RCNN(Detector):
    """What Fast and Faster R-CNN share: backbone, RoI head, RoI sampling, head loss and detection."""

    def __init__(self, num_classes, width=8, roi_size=5, hidden=256, rois_per_image=32):
        super().__init__(num_classes)
        self.backbone = Backbone(width)
        self.rois_per_image = rois_per_image
        self.roi_heads = FastRCNNHead(self.backbone.out_channels, num_classes, roi_size,
                                      1 / self.backbone.stride, hidden, dropout=0.0)

    def head_losses(self, features, proposals, targets):
        rois, labels, box_t = [], [], []
        for n, (props, (gt, lab)) in enumerate(zip(proposals, targets)):
            r, l, t = sample_rois(props, gt, lab, self.rois_per_image)
            rois.append(np.column_stack([np.full(len(r), n), r]))
            labels.append(l)
            box_t.append(t)
        rois = np.concatenate(rois).astype(features.dtype)
        if len(rois) == 0:                       # blank canvases and no proposals: nothing to classify
            return (features * 0).sum()
        cls, box = self.roi_heads(features, backend.to_device(rois, features.device))
        return fast_rcnn_loss(cls, box, np.concatenate(labels), np.concatenate(box_t).astype(features.dtype),
                              beta=1 / 9)

    def head_detect(self, features, proposals, image_size):
        rois = np.concatenate([np.column_stack([np.full(len(p), n), p]) for n, p in enumerate(proposals)])
        cls, box = self.roi_heads(features, backend.to_device(rois.astype(features.dtype), features.device))
        cls = np.asarray(backend.to_cpu(cls.data), np.float64)
        prob = np.exp(cls - cls.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        deltas = np.asarray(backend.to_cpu(box.data), np.float64) * np.tile(BOX_STD, self.num_classes + 1)
        boxes = decode_boxes(rois[:, 1:], deltas).reshape(len(rois), -1, 4)[:, 1:]     # (R, K, 4): no background
        out, start = [], 0
        K = self.num_classes
        for p in proposals:
            sl = slice(start, start + len(p))
            start += len(p)
            out.append(self.finish(boxes[sl].reshape(-1, 4), prob[sl, 1:].reshape(-1),
                                   np.tile(np.arange(K), len(p)), image_size))
        return out


def _components(mask):
    """Labels of the 8-connected regions of a boolean image (0: background), by repeated 3 x 3 minimum."""
    H, W = mask.shape
    big = H * W + 1
    lab = np.where(mask, np.arange(1, H * W + 1).reshape(H, W), big)
    while True:
        p = np.pad(lab, 1, constant_values=big)
        near = np.minimum.reduce([p[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)])
        new = np.where(mask, np.minimum(lab, near), big)
        if np.array_equal(new, lab):
            return np.where(mask, lab, 0)
        lab = new


def ink_proposals(image, threshold=0.2, max_size=48, min_area=4):
    """Class-agnostic proposals for one (H, W) canvas in [0, 1], in the spirit of selective search (Uijlings et
    al. 2013: start from regions, merge neighbours): the boxes of the connected ink regions (pixels >
    ``threshold``), the unions of every two regions that fit in ``max_size`` px (a digit drawn in two
    strokes), and each of these boxes shifted by 20% of its size and scaled by 0.8 and 1.25 (as a proposal
    method's near misses).  -> (P, 4) float64 (x1, y1, x2, y2)."""
    lab = _components(np.asarray(image) > threshold)
    boxes = []
    for v in np.unique(lab[lab > 0]):
        ys, xs = np.nonzero(lab == v)
        if len(ys) >= min_area:
            boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    regions = np.asarray(boxes, np.float64).reshape(-1, 4)
    unions = [np.r_[np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])] for i, a in enumerate(regions)
              for b in regions[i + 1:]]
    unions = [u for u in unions if (u[2:] - u[:2]).max() <= max_size]
    base = np.concatenate([regions, np.asarray(unions).reshape(-1, 4)])
    c, wh = (base[:, :2] + base[:, 2:]) / 2, base[:, 2:] - base[:, :2]
    variants = [(0, 0, 1), (0.2, 0, 1), (-0.2, 0, 1), (0, 0.2, 1), (0, -0.2, 1), (0, 0, 0.8), (0, 0, 1.25)]
    out = [np.concatenate([c + np.array([dx, dy]) * wh - s * wh / 2, c + np.array([dx, dy]) * wh + s * wh / 2], 1)
           for dx, dy, s in variants]
    H, W = np.shape(image)
    out = np.concatenate(out) if len(base) else np.zeros((0, 4))
    return np.unique(np.clip(out, 0, [W, H, W, H]), axis=0)


class FastRCNN(RCNN):
    """Fast R-CNN (Fig. 1): RoI pooling of given proposals on the shared feature map, the K + 1-way classifier
    and class-specific box regression (eq. 1).  Proposals come from outside the network, as selective search's
    did: ``ink_proposals`` of each image; in training the ground truth boxes join them (as torchvision does)."""

    def _proposals(self, x, images):
        return [ink_proposals(im[0]) for im in images]

    def forward(self, images, targets=None):
        self._images = np.asarray(backend.to_cpu(images.data if hasattr(images, "data") else images), np.float32)
        try:
            return super().forward(images, targets)
        finally:
            self._images = None

    def losses(self, x, targets):
        return {"loss_fast_rcnn": self.head_losses(self.backbone(x), self._proposals(x, self._images), targets)}

    def detect(self, x):
        props = self._proposals(x, self._images)
        if not any(len(p) for p in props):
            return [self.finish(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), x.shape[2:]) for _ in props]
        return self.head_detect(self.backbone(x), props, x.shape[2:])


class RPN(nn.Module):
    """The region proposal network (§3.1): a 3 x 3 conv and sibling 1 x 1 convs giving, per cell and anchor, an
    objectness logit (``cls_logits``, A channels) and 4 box deltas (``bbox_pred``, 4A channels)."""

    def __init__(self, in_channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1)
        for m in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        """(N, C, H, W) -> objectness (N, H*W*A), deltas (N, H*W*A, 4), index (row * W + col) * A + a."""
        h = F.relu(self.conv(x))
        N, _, H, W = x.shape
        obj = self.cls_logits(h).permute(0, 2, 3, 1).reshape(N, -1)
        deltas = self.bbox_pred(h).reshape(N, -1, 4, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, 4)
        return obj, deltas


class FasterRCNN(RCNN):
    """Faster R-CNN: the RPN over ``anchor_sizes`` x ``anchor_ratios`` anchors at each stride-8 cell proposes
    boxes (decoded, clipped, the best ``pre_nms_top_n`` by objectness, NMS at 0.7, the best ``post_nms_top_n``),
    which the Fast R-CNN head classifies and refines; both trained jointly (approximate joint training, §3.2:
    no gradient through the proposals' coordinates).  Losses: RPN objectness (binary cross-entropy over 256
    sampled anchors) and box regression (smooth L1 over the positive ones, divided by the sample), and the
    head's eq. 1."""

    def __init__(self, num_classes=10, anchor_sizes=(16, 26, 40), anchor_ratios=(1.0, 1.8, 3.2),
                 pre_nms_top_n=(600, 300), post_nms_top_n=(300, 100), **kwargs):
        super().__init__(num_classes, **kwargs)
        self.rpn = RPN(self.backbone.out_channels, len(anchor_sizes) * len(anchor_ratios))
        self.anchor_sizes, self.anchor_ratios = anchor_sizes, anchor_ratios
        self.pre_nms_top_n, self.post_nms_top_n = pre_nms_top_n, post_nms_top_n

    def _anchors(self, image_size):
        s = self.backbone.stride
        return F.anchor_grid((image_size[0] // s, image_size[1] // s), s, self.anchor_sizes, self.anchor_ratios)

    def propose(self, obj, deltas, image_size):
        """Per image: (P, 4) proposals from the RPN outputs (arrays), by decreasing objectness."""
        H, W = image_size
        mode = 1 - int(self.training)
        anchors, out = self._anchors(image_size), []
        for o, d in zip(obj, deltas):
            top = np.argsort(-o, kind="stable")[:self.pre_nms_top_n[mode]]
            b = decode_boxes(anchors[top], d[top])
            b = np.column_stack([b[:, 0].clip(0, W), b[:, 1].clip(0, H), b[:, 2].clip(0, W), b[:, 3].clip(0, H)])
            ok = np.flatnonzero((b[:, 2] - b[:, 0] >= 2) & (b[:, 3] - b[:, 1] >= 2))
            keep = np.asarray(F.nms(b[ok], o[top][ok], 0.7), np.int64)[:self.post_nms_top_n[mode]]
            out.append(b[ok][keep])
        return out

    def _rpn(self, features, image_size):
        obj, deltas = self.rpn(features)
        arrays = (np.asarray(backend.to_cpu(obj.data), np.float64), np.asarray(backend.to_cpu(deltas.data), np.float64))
        return obj, deltas, self.propose(*arrays, image_size)

    def losses(self, x, targets):
        features = self.backbone(x)
        obj, deltas, proposals = self._rpn(features, x.shape[2:])
        anchors = self._anchors(x.shape[2:])
        labels, box_t = zip(*(label_anchors(anchors, gt) for gt, _ in targets))
        loss_obj, loss_box = rpn_loss(obj, deltas, np.stack(labels), np.stack(box_t))
        return {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box,
                "loss_fast_rcnn": self.head_losses(features, proposals, targets)}

    def detect(self, x):
        features = self.backbone(x)
        return self.head_detect(features, self._rpn(features, x.shape[2:])[2], x.shape[2:])


def fast_rcnn(num_classes=10, **kwargs):
    """Fast R-CNN for MNISTDetection: stride-8 backbone, 5 x 5 RoI pooling, sliding-window proposals."""
    return FastRCNN(num_classes, **kwargs)


def faster_rcnn(num_classes=10, **kwargs):
    """Faster R-CNN for MNISTDetection: the Fast R-CNN head fed by an RPN with 9 anchors per stride-8 cell."""
    return FasterRCNN(num_classes, **kwargs)
