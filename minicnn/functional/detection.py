"""Detection helpers: pairwise box IoU and greedy non-maximum suppression (no gradients; kernels/nms.py)."""
import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor
from minicnn.kernels import nms as _nms

__all__ = ["box_iou", "nms"]


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
