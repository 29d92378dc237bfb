"""Detection helpers: pairwise box IoU and greedy non-maximum suppression (no gradients; kernels/nms.py)."""
import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.kernels import nms as _nms

__all__ = ["box_iou", "nms", "batched_nms", "anchor_grid", "kmeans_anchors"]


def _boxes(op, name, boxes):
    """The array of ``boxes`` (a Tensor or array, (K, 4) of x1, y1, x2, y2), checked, as a floating array."""
    data = boxes.data if isinstance(boxes, Tensor) else boxes
    if not hasattr(data, "shape"):
        data = np.asarray(data, np.float64)
    if data.ndim != 2 or data.shape[1] != 4:
        raise ValueError(f"{op}: {name} must have shape (K, 4) of (x1, y1, x2, y2), got {tuple(data.shape)}")
    if data.dtype.kind != "f":
        data = data.astype(np.float64)
    return data


def _wrap(like, result):
    """A Tensor on like's device when ``like`` is a Tensor, else the array itself."""
    return Tensor._make(result, like.device) if isinstance(like, Tensor) else result


def box_iou(boxes1, boxes2):
    """IoU of every pair: boxes1 (K, 4), boxes2 (L, 4), as (x1, y1, x2, y2) -> (K, L); 0 for an empty union."""
    a, b = _boxes("box_iou", "boxes1", boxes1), _boxes("box_iou", "boxes2", boxes2)
    if backend.device_of(a) != backend.device_of(b):
        raise RuntimeError(f"box_iou: boxes1 and boxes2 must be on one device, "
                           f"got {backend.device_of(a)} and {backend.device_of(b)}")
    dtype = np.promote_types(a.dtype, b.dtype)
    xp = backend.get_array_module(a)
    return _wrap(boxes1, _nms.box_iou(xp.ascontiguousarray(a, dtype), xp.ascontiguousarray(b, dtype),
                                      device=backend.device_of(a)))


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression as torchvision's: int64 indices of the boxes kept, by decreasing score.

    boxes (K, 4) as (x1, y1, x2, y2), scores (K,); a box is dropped when its IoU with a higher-scoring kept box is
    ``> iou_threshold``.  Equal scores keep their input order.  K = 0 gives an empty index array.  Returns a
    Tensor on boxes' device when boxes is a Tensor, else an array.
    """
    b = _boxes("nms", "boxes", boxes)
    s = scores.data if isinstance(scores, Tensor) else scores
    s = s if hasattr(s, "shape") else np.asarray(s, np.float64)
    if s.dtype.kind != "f":
        s = s.astype(np.float64)                           # also keeps -scores right for unsigned integers
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
        raise ValueError(f"nms: scores must have shape ({b.shape[0]},) for boxes {tuple(b.shape)}, "
                         f"got {tuple(s.shape)}")
    if backend.device_of(b) != backend.device_of(s):
        raise RuntimeError(f"nms: boxes and scores must be on one device, "
                           f"got {backend.device_of(b)} and {backend.device_of(s)}")
    if not np.isscalar(iou_threshold) and getattr(iou_threshold, "ndim", None) != 0:
        raise TypeError(f"nms: iou_threshold must be a number, got {type(iou_threshold).__name__}")
    xp = backend.get_array_module(b)
    keep = _nms.nms(xp.ascontiguousarray(b), s, float(iou_threshold), device=backend.device_of(b))
    return _wrap(boxes, keep)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category of ``idxs`` (K,) independently, as torchvision's ``batched_nms``: boxes of
    different categories never suppress each other.  Shifts each category's boxes by an offset larger than all
    boxes so that one ``nms`` call does it.  -> int64 indices kept, by decreasing score."""
    b = _boxes("batched_nms", "boxes", boxes)
    xp = backend.get_array_module(b)
    i = idxs.data if isinstance(idxs, Tensor) else idxs
    i = i if hasattr(i, "shape") else np.asarray(i)
    if i.ndim != 1 or i.shape[0] != b.shape[0]:
        raise ValueError(f"batched_nms: idxs must have shape ({b.shape[0]},) for boxes {tuple(b.shape)}, "
                         f"got {tuple(i.shape)}")
    if b.shape[0] == 0:
        return _wrap(boxes, xp.zeros(0, np.int64))
    offset = (i.astype(b.dtype) * (b.max() - b.min() + 1))[:, None]
    s = scores.data if isinstance(scores, Tensor) else scores
    return _wrap(boxes, nms(b + offset, s, iou_threshold))


def anchor_grid(feature_size, stride, sizes, aspect_ratios=(1.0,)):
    """Faster R-CNN's anchors (Ren et al. 2015, §3.1.1) over an H x W feature map of the given ``stride``:
    at every cell centre ((col + 0.5) * stride, (row + 0.5) * stride) one box per (aspect ratio r = h / w,
    size s) with w = s / sqrt(r), h = s * sqrt(r) (area s^2), ratios outer and sizes inner as torchvision.
    -> (H * W * A, 4) float64 (x1, y1, x2, y2), anchor index (row * W + col) * A + a."""
    H, W = feature_size
    r = np.sqrt(np.asarray(aspect_ratios, np.float64))
    s = np.asarray(sizes, np.float64)
    ws, hs = (s[None, :] / r[:, None]).ravel(), (s[None, :] * r[:, None]).ravel()     # (A,)
    base = np.stack([-ws, -hs, ws, hs], axis=1) / 2                                      # (A, 4) around 0
    cy, cx = np.meshgrid((np.arange(H) + 0.5) * stride, (np.arange(W) + 0.5) * stride, indexing="ij")
    centres = np.stack([cx, cy, cx, cy], axis=-1).reshape(-1, 1, 4)                      # (H*W, 1, 4)
    return (centres + base[None]).reshape(-1, 4)


def _wh_iou(wh, centroids):
    """IoU of box sizes (N, 2) with centroid sizes (K, 2), all sharing one centre -> (N, K)."""
    inter = np.minimum(wh[:, None, 0], centroids[None, :, 0]) * np.minimum(wh[:, None, 1], centroids[None, :, 1])
    return inter / (wh.prod(1)[:, None] + centroids.prod(1)[None, :] - inter)


def kmeans_anchors(boxes, k, iters=100, seed=0):
    """YOLOv2's dimension clusters (Redmon & Farhadi 2017, §2): k-means on the boxes' (width, height) with the
    distance d(box, centroid) = 1 - IoU(box, centroid), both centred at one point.  boxes (N, 4) as (x1, y1,
    x2, y2) or (N, 2) sizes; centroids start at k distinct sizes drawn with ``seed`` and move to the mean size
    of their members until no assignment changes (at most ``iters`` rounds); an empty cluster keeps its
    centroid.  -> (k, 2) float64 (width, height), by increasing area."""
    a = np.asarray(boxes.data if isinstance(boxes, Tensor) else boxes, np.float64)
    if a.ndim != 2 or a.shape[1] not in (2, 4):
        raise ValueError(f"kmeans_anchors: boxes must be (N, 4) boxes or (N, 2) sizes, got {a.shape}")
    wh = a if a.shape[1] == 2 else a[:, 2:] - a[:, :2]
    if (wh <= 0).any():
        raise ValueError("kmeans_anchors: every box needs a positive width and height")
    distinct = np.unique(wh, axis=0)
    if not 1 <= k <= len(distinct):
        raise ValueError(f"kmeans_anchors: k = {k} must be in [1, {len(distinct)}] (the distinct box sizes)")
    centroids = distinct[np.random.default_rng(seed).choice(len(distinct), k, replace=False)]
    assign = None
    for _ in range(iters):
        new = _wh_iou(wh, centroids).argmax(axis=1)             # nearest = largest IoU
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            if (assign == c).any():
                centroids[c] = wh[assign == c].mean(axis=0)
    return centroids[np.argsort(centroids.prod(1), kind="stable")]
