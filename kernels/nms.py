"""Pairwise box IoU and greedy non-maximum suppression; boxes are (x1, y1, x2, y2) with x1 <= x2, y1 <= y2.

Greedy NMS as torchvision's ``nms``: visit the boxes by decreasing score (ties keep their input order: a stable
sort) and keep a box unless its IoU with a box already kept is ``> iou_threshold``.

A pair whose union has zero area (two degenerate boxes) has IoU 0 here: torchvision divides 0 by 0 and gets NaN,
which never exceeds a threshold either, so the kept set is the same; only ``box_iou`` reports 0 instead of NaN.

CPU: one serial sweep that computes an IoU only when it is needed (the box is still alive), as torchvision's CPU
code does.  CUDA: one thread per pair (i, j) of score-sorted boxes writes ``suppress[i, j] = IoU > threshold``
(K x K bytes), then the greedy sweep itself, inherently serial, runs on the host over that matrix: row i is read
only if box i survived.  (torchvision packs the matrix into 64-bit words; bytes keep the kernel readable.)
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch, to_cpu
from minicnn.kernels.scalar import like

__all__ = ["box_iou", "nms", "box_iou_ref", "nms_ref"]


# ---- NumPy reference (vectorised IoU, plain-Python greedy loop; for tests) --------------------------------------
def box_iou_ref(a, b):
    """a (K, 4), b (L, 4) -> IoU (K, L) in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms_ref(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept, by decreasing score."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    iou = box_iou_ref(boxes, boxes)
    keep = []
    for i in order:
        if all(iou[i, j] <= iou_threshold for j in keep):
            keep.append(i)
    return np.array(keep, np.int64)


# ---- the IoU of one pair, compiled for the CPU and for CUDA -----------------------------------------------------
def _iou(a, i, b, j):
    """IoU of box a[i] and box b[j] (0 where the union is empty)."""
    w = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
    h = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
    zero = like(0, w)                                      # in the boxes' dtype (0.0 would be float64)
    inter = max(w, zero) * max(h, zero)
    union = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
    return inter / union if union > zero else zero


_iou_cpu = njit(inline="always", cache=True)(_iou)
_iou_gpu = cuda.jit(device=True)(_iou)


# ---- CPU kernels -----------------------------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _box_iou_cpu(a, b, out):
    for i in prange(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = _iou_cpu(a, i, b, j)


@njit(cache=True)
def _nms_cpu(boxes, order, iou_threshold, keep):
    """Greedy sweep over ``order``; writes the kept indices to ``keep`` and returns how many."""
    removed = np.zeros(boxes.shape[0], np.bool_)
    kept = 0
    for a in range(order.shape[0]):
        i = order[a]
        if removed[i]:
            continue
        keep[kept] = i
        kept += 1
        for b in range(a + 1, order.shape[0]):             # box i survived: it suppresses the lower scores
            j = order[b]
            if not removed[j] and _iou_cpu(boxes, i, boxes, j) > iou_threshold:
                removed[j] = True
    return kept


@njit(cache=True)
def _sweep_cpu(suppress, keep):
    """Greedy sweep over a score-sorted suppression matrix; keep[:kept] gets sorted positions."""
    K = suppress.shape[0]
    removed = np.zeros(K, np.bool_)
    kept = 0
    for i in range(K):
        if removed[i]:
            continue
        keep[kept] = i
        kept += 1
        for j in range(i + 1, K):
            if suppress[i, j]:
                removed[j] = True
    return kept


# ---- CUDA kernels: one thread per pair ---------------------------------------------------------------------------
@cuda.jit(cache=True)
def _box_iou_gpu(a, b, out):
    t = cuda.grid(1)
    K, L = out.shape
    if t < K * L:
        i, j = t // L, t % L
        out[i, j] = _iou_gpu(a, i, b, j)


@cuda.jit(cache=True)
def _suppress_gpu(sorted_boxes, iou_threshold, suppress):
    """suppress[i, j] = 1 where j ranks below i (j > i) and their IoU exceeds the threshold."""
    t = cuda.grid(1)
    K = suppress.shape[0]
    if t < K * K:
        i, j = t // K, t % K
        hit = j > i and _iou_gpu(sorted_boxes, i, sorted_boxes, j) > iou_threshold
        suppress[i, j] = 1 if hit else 0


# ---- dispatchers ---------------------------------------------------------------------------------------------------
def box_iou(a, b, device=None):
    """a (K, 4), b (L, 4) -> IoU (K, L) in a's dtype (floating)."""
    xp, device = get_array_module(a), device or device_of(a)
    out = xp.empty((a.shape[0], b.shape[0]), a.dtype)
    if device == "cpu":
        _box_iou_cpu(a, b, out)
    else:
        launch(_box_iou_gpu, out.size)(a, b, out)
    return out


def nms(boxes, scores, iou_threshold, device=None):
    """boxes (K, 4), scores (K,) -> int64 indices of the kept boxes by decreasing score, on boxes' device."""
    xp, device = get_array_module(boxes), device or device_of(boxes)
    order = xp.argsort(-scores, kind="stable") if xp is np else xp.argsort(-scores)   # CuPy's sort is stable
    if device == "cpu":
        keep = np.empty(boxes.shape[0], np.int64)
        return keep[:_nms_cpu(boxes, order, float(iou_threshold), keep)]
    sorted_boxes = xp.ascontiguousarray(boxes[order])
    suppress = xp.empty((boxes.shape[0], boxes.shape[0]), np.uint8)
    if suppress.size:
        threshold = sorted_boxes.dtype.type(iou_threshold)  # compared in the boxes' dtype, as torchvision
        launch(_suppress_gpu, suppress.size)(sorted_boxes, threshold, suppress)
    keep = np.empty(boxes.shape[0], np.int64)
    kept = _sweep_cpu(to_cpu(suppress), keep)               # the serial greedy step, on the host
    return order[xp.asarray(keep[:kept])]
