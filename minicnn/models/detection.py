"""Detector heads on the classic backbones: Fast R-CNN's RoI head (Girshick 2015) with its multi-task loss and
R-CNN's box parametrisation, and a YOLOv2 head (Redmon & Farhadi 2017) with decoding, post-processing and a
simple loss.  Boxes are (x1, y1, x2, y2) in image pixels throughout; widths are x2 - x1 (torchvision's
convention, no "+ 1").  Box encoding, decoding and post-processing work on arrays (no gradients)."""
import math

import numpy as np

import minicnn.functional as F
import minicnn.nn as nn
from minicnn import backend
from minicnn.autograd import Tensor

__all__ = ["FastRCNNHead", "fast_rcnn_loss", "encode_boxes", "decode_boxes",
           "YOLOv2Head", "yolo_decode", "yolo_postprocess", "yolo_loss", "Detector", "check_targets"]

BBOX_XFORM_CLIP = math.log(1000.0 / 16)        # torchvision's cap on dw, dh before exp


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _boxes(op, name, x, width=4):
    a = _data(x)
    a = a if hasattr(a, "shape") else np.asarray(a, np.float64)
    if a.ndim != 2 or a.shape[1] % width or a.shape[1] == 0:
        raise ValueError(f"{op}: {name} must have shape (K, {width}) or (K, {width} * n), got {tuple(a.shape)}")
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _centre_size(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


def encode_boxes(proposals, gt):
    """R-CNN appendix C: proposals P and ground truth G, both (K, 4) -> targets (K, 4) of
    dx = (Gx - Px) / Pw, dy = (Gy - Py) / Ph, dw = log(Gw / Pw), dh = log(Gh / Ph), with (x, y) box centres."""
    p, g = _boxes("encode_boxes", "proposals", proposals), _boxes("encode_boxes", "gt", gt)
    if p.shape != g.shape or p.shape[1] != 4:
        raise ValueError(f"encode_boxes: proposals and gt must both be (K, 4), got {tuple(p.shape)} and "
                         f"{tuple(g.shape)}")
    px, py, pw, ph = _centre_size(p)
    gx, gy, gw, gh = _centre_size(g)
    xp = backend.get_array_module(p)
    return xp.stack([(gx - px) / pw, (gy - py) / ph, xp.log(gw / pw), xp.log(gh / ph)], axis=1)


def decode_boxes(proposals, deltas):
    """Inverse of ``encode_boxes``: proposals (K, 4), deltas (K, 4 * n) (one box per class, as ``bbox_pred``)
    -> boxes (K, 4 * n).  dw, dh are capped at log(1000 / 16) before exp, as torchvision does."""
    p, d = _boxes("decode_boxes", "proposals", proposals), _boxes("decode_boxes", "deltas", deltas)
    if p.shape[1] != 4 or d.shape[0] != p.shape[0]:
        raise ValueError(f"decode_boxes: proposals (K, 4) and deltas (K, 4 * n) must agree, got "
                         f"{tuple(p.shape)} and {tuple(d.shape)}")
    xp = backend.get_array_module(d)
    px, py, pw, ph = (v[:, None] for v in _centre_size(p))
    dx, dy = d[:, 0::4], d[:, 1::4]
    dw, dh = xp.minimum(d[:, 2::4], BBOX_XFORM_CLIP), xp.minimum(d[:, 3::4], BBOX_XFORM_CLIP)
    cx, cy, w, h = px + dx * pw, py + dy * ph, pw * xp.exp(dw), ph * xp.exp(dh)
    out = xp.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=2)     # (K, n, 4)
    return out.reshape(d.shape)


class FastRCNNHead(nn.Module):
    """Fast R-CNN's RoI head (Fig. 1): RoI max pooling to roi_size x roi_size, fc6 and fc7 (ReLU, dropout), then
    ``cls_score`` (num_classes + 1, class 0 the background) and ``bbox_pred`` (4 per class, background
    included, as torchvision).  features (N, C, H, W), rois (K, 5) = (batch index, x1, y1, x2, y2) in pixels ->
    (cls_score (K, num_classes + 1), bbox_pred (K, 4 * (num_classes + 1)))."""
    def __init__(self, in_channels, num_classes, roi_size=7, spatial_scale=1 / 16, hidden=4096, dropout=0.5):
        super().__init__()
        self.roi_size, self.spatial_scale = roi_size, spatial_scale
        self.fc6 = nn.Linear(in_channels * roi_size * roi_size, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * (num_classes + 1))
        # §2.3: the new layers are drawn from N(0, 0.01^2) (classifier) and N(0, 0.001^2) (box regressor)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, features, rois):
        x = F.roi_pool(features, rois, self.roi_size, self.spatial_scale)     # (K, C, S, S)
        x = x.reshape(x.shape[0], -1)
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.fc7(x)))                                 # (K, hidden)
        return self.cls_score(x), self.bbox_pred(x)


def fast_rcnn_loss(cls_score, bbox_pred, labels, bbox_targets, beta=1.0):
    """Eq. 1 with lambda = 1: L = L_cls(p, u) + [u >= 1] L_loc(t^u, v), averaged over the R RoIs.

    cls_score (R, K), bbox_pred (R, 4K), labels (R,) ints in [0, K) with 0 the background, bbox_targets (R, 4)
    the encoded ground truth v of each RoI (rows of background RoIs are ignored).  L_cls is the mean
    cross-entropy; L_loc the smooth L1 (eq. 3, threshold ``beta``) of the true class's 4 deltas, summed over
    foreground RoIs and divided by R (all RoIs, as the paper's average and torchvision's fastrcnn_loss)."""
    op = "fast_rcnn_loss"
    if cls_score.ndim != 2:
        raise ValueError(f"{op}: cls_score must be (R, K), got {cls_score.shape}")
    R, K = cls_score.shape
    if tuple(bbox_pred.shape) != (R, 4 * K):
        raise ValueError(f"{op}: bbox_pred must be (R, 4K) = {(R, 4 * K)} for cls_score {cls_score.shape}, "
                         f"got {bbox_pred.shape}")
    lab = backend.to_cpu(_data(labels))
    if lab.shape != (R,) or lab.dtype.kind not in "iu" or (R and (lab.min() < 0 or lab.max() >= K)):
        raise ValueError(f"{op}: labels must be ({R},) integers in [0, {K}), got shape {lab.shape} dtype "
                         f"{lab.dtype}")
    tgt = backend.to_cpu(_data(bbox_targets))
    if tgt.shape != (R, 4):
        raise ValueError(f"{op}: bbox_targets must be (R, 4) = {(R, 4)}, got {tgt.shape}")
    loss_cls = F.cross_entropy(cls_score, lab)
    fg = np.flatnonzero(lab > 0)
    if fg.size == 0:
        return loss_cls + (bbox_pred * 0).sum()
    deltas = bbox_pred.reshape(R, K, 4)[fg, lab[fg]]                         # (F, 4): t^u of each foreground RoI
    target = tgt[fg].astype(bbox_pred.dtype)
    return loss_cls + F.smooth_l1_loss(deltas, target, reduction="sum", beta=beta) / R


class YOLOv2Head(nn.Module):
    """The detection layer of YOLOv2 (§2, "Convolutional With Anchor Boxes"): a 1 x 1 conv predicting, for each
    of A anchors in every cell, (tx, ty, tw, th, to) and C class scores.  (N, in_channels, H, W) ->
    (N, A * (5 + C), H, W), channel a * (5 + C) + k the k-th number of anchor a."""
    def __init__(self, in_channels, num_anchors, num_classes):
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.conv = nn.Conv2d(in_channels, num_anchors * (5 + num_classes), 1)

    def forward(self, x):
        return self.conv(x)


def _split(op, output, anchors):
    """output (N, A(5+C), H, W) -> (N, A, H, W, 5 + C) array, anchors (A, 2) array."""
    out, anc = _data(output), np.asarray(backend.to_cpu(_data(anchors)), np.float64)
    if anc.ndim != 2 or anc.shape[1] != 2:
        raise ValueError(f"{op}: anchors must be (A, 2) of (width, height) in pixels, got {anc.shape}")
    A = anc.shape[0]
    if out.ndim != 4 or out.shape[1] % A or out.shape[1] // A < 6:
        raise ValueError(f"{op}: output must be (N, A * (5 + C), H, W) with A = {A} anchors and C >= 1, got "
                         f"{tuple(out.shape)}")
    N, _, H, W = out.shape
    return out.reshape(N, A, -1, H, W), anc


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def yolo_decode(output, anchors, stride, logistic=False):
    """YOLOv2 eq. (§2, "Direct location prediction"): bx = (sigmoid(tx) + cx) * stride, bw = pw exp(tw), with
    (cx, cy) the cell's column and row and anchors (A, 2) the priors' (pw, ph) in pixels.
    output (N, A(5+C), H, W) -> boxes (N, A*H*W, 4) as (x1, y1, x2, y2) pixels, objectness (N, A*H*W) =
    sigmoid(to), class_probs (N, A*H*W, C) = softmax (``logistic``: one sigmoid per class, YOLOv3 §2.2);
    prediction index a * H * W + row * W + col.  NumPy arrays."""
    o, anc = _split("yolo_decode", output, anchors)
    o = np.asarray(backend.to_cpu(o), np.float64)
    N, A, _, H, W = o.shape
    cy, cx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")                    # (H, W)
    x = (_sigmoid(o[:, :, 0]) + cx) * stride                                             # (N, A, H, W)
    y = (_sigmoid(o[:, :, 1]) + cy) * stride
    w = anc[None, :, 0, None, None] * np.exp(np.minimum(o[:, :, 2], BBOX_XFORM_CLIP))
    h = anc[None, :, 1, None, None] * np.exp(np.minimum(o[:, :, 3], BBOX_XFORM_CLIP))
    boxes = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1).reshape(N, A * H * W, 4)
    if logistic:
        probs = _sigmoid(o[:, :, 5:])
    else:
        scores = o[:, :, 5:] - o[:, :, 5:].max(axis=2, keepdims=True)
        probs = np.exp(scores) / np.exp(scores).sum(axis=2, keepdims=True)               # (N, A, C, H, W)
    probs = probs.transpose(0, 1, 3, 4, 2).reshape(N, A * H * W, -1)
    return boxes, _sigmoid(o[:, :, 4]).reshape(N, -1), probs


def yolo_postprocess(boxes, objectness, class_probs, score_threshold=0.25, iou_threshold=0.45):
    """Per image: score = objectness x the best class probability; keep scores > score_threshold; NMS per class
    (``F.nms`` on boxes shifted apart by class, torchvision's batched_nms trick).  Inputs as ``yolo_decode``
    returns them.  -> list of N (boxes (K, 4), scores (K,), labels (K,)), by decreasing score."""
    if boxes.ndim != 3 or boxes.shape[2] != 4 or objectness.shape != boxes.shape[:2] or \
            class_probs.ndim != 3 or class_probs.shape[:2] != boxes.shape[:2]:
        raise ValueError(f"yolo_postprocess: need boxes (N, P, 4), objectness (N, P), class_probs (N, P, C), "
                         f"got {boxes.shape}, {objectness.shape}, {class_probs.shape}")
    results = []
    for b, obj, cp in zip(boxes, objectness, class_probs):
        labels = cp.argmax(axis=1)
        scores = obj * cp.max(axis=1)
        keep = np.flatnonzero(scores > score_threshold)
        b, scores, labels = b[keep], scores[keep], labels[keep]
        shift = (labels * (np.abs(b).max() + 1 if b.size else 0))[:, None]
        keep = np.asarray(F.nms(b + shift, scores, iou_threshold), np.int64)
        results.append((b[keep], scores[keep], labels[keep]))
    return results


def _wh_iou(wh, anchors):
    """IoU of boxes and anchors of sizes (G, 2) and (A, 2) sharing one centre -> (G, A)."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh.prod(1)[:, None] + anchors.prod(1)[None, :] - inter)


def yolo_loss(output, anchors, stride, targets, ignore_threshold=0.6, logistic=False, ignore_boxes=None):
    """A YOLOv2-style loss, summed over predictions and averaged over the N images.

    targets: one (boxes (G, 4) pixels, labels (G,) in [0, C)) pair per image.  Assignment (YOLOv2): a ground
    truth box is the responsibility of the cell holding its centre and, in it, of the anchor whose shape (both
    centred) has the highest IoU with it; when two boxes pick the same cell and anchor the later one wins.
    For responsible predictions: squared error of (sigmoid(tx), sigmoid(ty)) against the centre's offset in the
    cell and of (tw, th) against log(gw / pw), log(gh / ph); cross-entropy of the class scores; objectness BCE
    towards 1.  Every other prediction: objectness BCE towards 0, unless its decoded box overlaps some ground
    truth by IoU > ignore_threshold (then it adds nothing).  All terms weigh 1.  ``logistic`` (YOLOv3 §2.2):
    the classes by one binary cross-entropy each instead of a softmax.  ``ignore_boxes`` (one (G', 4) array per
    image, default the targets' boxes): the boxes that the ignore rule compares with (YOLOv3: those of every
    scale, while ``targets`` holds the boxes this scale is responsible for)."""
    op = "yolo_loss"
    o, anc = _split(op, output, anchors)
    N, A, D, H, W = o.shape
    if len(targets) != N:
        raise ValueError(f"{op}: need one (boxes, labels) target per image, got {len(targets)} for N = {N}")
    pred = output.reshape(N, A, D, H, W).permute(0, 1, 3, 4, 2)                        # (N, A, H, W, 5 + C)
    boxes = yolo_decode(output, anchors, stride)[0].reshape(N, A, H, W, 4)
    obj_target, obj_weight = np.zeros((N, A, H, W)), np.ones((N, A, H, W))
    chosen = {}                                                                          # (n, a, i, j) -> t
    for n, (gt, lab) in enumerate(targets):
        gt = np.asarray(backend.to_cpu(_data(gt)), np.float64).reshape(-1, 4)
        lab = np.asarray(backend.to_cpu(_data(lab))).reshape(-1)
        if lab.shape[0] != gt.shape[0] or (lab.size and (lab.min() < 0 or lab.max() >= D - 5)):
            raise ValueError(f"{op}: image {n}: labels must be ({gt.shape[0]},) in [0, {D - 5}), got {lab}")
        near = gt if ignore_boxes is None else np.asarray(backend.to_cpu(_data(ignore_boxes[n])),
                                                                 np.float64).reshape(-1, 4)
        if near.shape[0]:
            iou = np.asarray(F.box_iou(boxes[n].reshape(-1, 4), near)).max(axis=1).reshape(A, H, W)
            obj_weight[n][iou > ignore_threshold] = 0
        if gt.shape[0] == 0:
            continue
        gx, gy, gw, gh = _centre_size(gt)
        best = _wh_iou(np.stack([gw, gh], 1), anc).argmax(axis=1)
        for g in range(gt.shape[0]):
            j, i = min(int(gx[g] // stride), W - 1), min(int(gy[g] // stride), H - 1)
            a = int(best[g])
            chosen[(n, a, i, j)] = (gx[g] / stride - j, gy[g] / stride - i,
                                    math.log(gw[g] / anc[a, 0]), math.log(gh[g] / anc[a, 1]), int(lab[g]))
    for key in chosen:
        obj_target[key], obj_weight[key] = 1, 1
    dtype = output.dtype
    loss = F.binary_cross_entropy_with_logits(pred[..., 4], obj_target.astype(dtype),
                                              weight=obj_weight.astype(dtype), reduction="sum")
    if chosen:
        n, a, i, j = (np.array(v) for v in zip(*chosen))
        t = np.array([v[:4] for v in chosen.values()], dtype)
        labels = np.array([v[4] for v in chosen.values()], np.int64)
        sel = pred[n, a, i, j]                                                           # (G, 5 + C)
        loss = loss + F.mse_loss(F.sigmoid(sel[:, :2]), t[:, :2], reduction="sum") \
            + F.mse_loss(sel[:, 2:4], t[:, 2:], reduction="sum") \
            + (F.binary_cross_entropy_with_logits(sel[:, 5:], np.eye(D - 5, dtype=dtype)[labels], reduction="sum")
               if logistic else F.cross_entropy(sel[:, 5:], labels, reduction="sum"))
    return loss / N


# ---- the detectors' common contract (torchvision's): train -> dict of losses, eval -> list of detections ------
IMAGE_MEAN, IMAGE_STD = 0.047, 0.186          # of MNISTDetection's 96 x 96 training canvases (seed 0)


def check_targets(op, targets, num_images, num_classes):
    """Validate torchvision-style targets, one ``{"boxes": (G, 4) x1, y1, x2, y2, "labels": (G,)}`` per image,
    -> list of (boxes float64 (G, 4), labels int64 (G,)) NumPy pairs.  Errors name the image and the problem."""
    if not isinstance(targets, (list, tuple)) or len(targets) != num_images:
        got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"{op}: targets must be a list of {num_images} dicts (one per image), got {got}")
    out = []
    for n, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"{op}: target {n} must be a dict with 'boxes' and 'labels'")
        b = np.asarray(backend.to_cpu(_data(t["boxes"])), np.float64)
        lab = np.asarray(backend.to_cpu(_data(t["labels"])))
        if b.size == 0 and lab.size == 0:
            out.append((np.zeros((0, 4)), np.zeros(0, np.int64)))
            continue
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"{op}: target {n}: boxes must have shape (G, 4), got {b.shape}")
        if lab.shape != (b.shape[0],) or lab.dtype.kind not in "iu":
            raise ValueError(f"{op}: target {n}: labels must be ({b.shape[0]},) integers, got shape {lab.shape} "
                             f"dtype {lab.dtype}")
        bad = np.flatnonzero((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]) | ~np.isfinite(b).all(1))
        if bad.size:
            raise ValueError(f"{op}: target {n}: box {int(bad[0])} = {b[bad[0]].tolist()} needs x2 > x1 and "
                             f"y2 > y1 (x1, y1, x2, y2 in pixels)")
        if lab.min() < 0 or lab.max() >= num_classes:
            raise ValueError(f"{op}: target {n}: labels must be in [0, {num_classes}), got {lab.tolist()}")
        out.append((b, lab.astype(np.int64)))
    return out


class Detector(nn.Module):
    """Base of the detectors: images (N, 1, H, W) float32 in [0, 1] (Tensor or array) are normalised inside the
    model; ``model(images, targets)`` in training mode -> dict of loss Tensors (``losses``), in eval mode
    ``model(images)`` -> one ``{"boxes" (K, 4) float32 pixels, "scores" (K,) float32, "labels" (K,) int64}``
    of NumPy arrays per image (``detect``), by decreasing score."""
    score_thresh, nms_thresh, detections_per_img = 0.05, 0.5, 100     # torchvision's box_* defaults

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, images, targets=None):
        op = type(self).__name__
        x = images if isinstance(images, Tensor) else Tensor(np.asarray(images, np.float32))
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"{op}: images must be (N, 1, H, W) in [0, 1], got {tuple(x.shape)}")
        x = (x - IMAGE_MEAN) * (1.0 / IMAGE_STD)
        if self.training:
            if targets is None:
                raise ValueError(f"{op}: training mode needs targets (call model.eval() to detect)")
            return self.losses(x, check_targets(op, targets, x.shape[0], self.num_classes))
        return self.detect(x)

    def finish(self, boxes, scores, labels, image_size):
        """One image's candidates -> its detections: clip to the image, drop scores <= ``score_thresh`` and
        empty boxes, NMS per class at ``nms_thresh``, keep the best ``detections_per_img``."""
        H, W = image_size
        boxes = np.column_stack([np.clip(boxes[:, 0], 0, W), np.clip(boxes[:, 1], 0, H),
                                 np.clip(boxes[:, 2], 0, W), np.clip(boxes[:, 3], 0, H)]) if len(boxes) else \
            np.zeros((0, 4))
        keep = np.flatnonzero((scores > self.score_thresh) & (boxes[:, 2] > boxes[:, 0] + 1e-3) &
                              (boxes[:, 3] > boxes[:, 1] + 1e-3))
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = np.asarray(F.batched_nms(boxes, scores, labels, self.nms_thresh), np.int64)[:self.detections_per_img]
        return {"boxes": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
                "labels": labels[keep].astype(np.int64)}
