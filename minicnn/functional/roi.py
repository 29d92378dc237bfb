"""RoI max pooling (Fast R-CNN's RoI pooling layer) as ``torchvision.ops.roi_pool``; loops in
``kernels/roi_pool.py``."""
import numpy as np

from minicnn.autograd import Function, Tensor
from minicnn.backend import to_cpu
from minicnn.kernels import roi_pool as kernel

__all__ = ["roi_pool", "RoIPoolFn"]


class RoIPoolFn(Function):
    """x (N, C, H, W), rois (R, 5) -> y (R, C, PH, PW); the argmax (int32, -1 for empty bins) is kept for
    backward.  The RoIs take no gradient (their bins are rounded)."""
    def __init__(self, output_size, spatial_scale):
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, x, rois):
        y, self.argmax = kernel.roi_pool_forward(x, rois, self.output_size, self.spatial_scale)
        self.rois, self.x_shape = rois, x.shape
        return y

    def backward(self, gy):                      # each bin sends its gradient to the pixel that won it
        return kernel.roi_pool_backward(gy, self.argmax, self.rois, self.x_shape, self.spatial_scale), None


def _host(op, name, b):
    a = to_cpu(b.data if isinstance(b, Tensor) else np.asarray(b))
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{op}: {name} must hold numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def _rois(op, boxes, N):
    """(R, 5) float64 host array of checked RoIs from a (R, 5) Tensor/array or a list of (Ki, 4) per image."""
    if isinstance(boxes, (list, tuple)):
        if len(boxes) > N:
            raise ValueError(f"{op}: got a list of {len(boxes)} box sets for a batch of {N} images")
        sets = [_host(op, f"boxes[{n}]", b) for n, b in enumerate(boxes)]
        for n, b in enumerate(sets):
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"{op}: boxes[{n}] must be (K, 4) [x1, y1, x2, y2], got shape {b.shape}")
        rois = np.concatenate([np.concatenate([np.full((len(b), 1), n), b], axis=1) for n, b in enumerate(sets)]
                              + [np.zeros((0, 5))])
    else:
        rois = _host(op, "boxes", boxes)
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(f"{op}: boxes must be (K, 5) [batch_index, x1, y1, x2, y2] or a list of (K, 4) "
                             f"tensors, one per image; got shape {rois.shape}")
    bad = ~np.isfinite(rois).all(axis=1)
    if bad.any():
        raise ValueError(f"{op}: boxes row {int(np.argmax(bad))} is not finite: {rois[bad][0].tolist()}")
    batch = rois[:, 0]
    bad = (batch != np.floor(batch)) | (batch < 0) | (batch >= N)
    if bad.any():
        raise ValueError(f"{op}: boxes row {int(np.argmax(bad))} has batch index {batch[bad][0]:g}, not an "
                         f"integer in [0, {N}) for input batch size {N}")
    bad = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
    if bad.any():
        raise ValueError(f"{op}: boxes row {int(np.argmax(bad))} has x2 < x1 or y2 < y1: "
                         f"{rois[bad][0, 1:].tolist()} (boxes are x1, y1, x2, y2)")
    return rois


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """Max pooling of each RoI into ``output_size`` (PH, PW) bins, as ``torchvision.ops.roi_pool``.

    input (N, C, H, W); boxes a (K, 5) Tensor or array of (batch index, x1, y1, x2, y2) in image coordinates,
    or a list of (Ki, 4) boxes per image; ``spatial_scale`` maps image to feature-map coordinates (1/16 for
    VGG16's conv5).  Returns (K, C, PH, PW).  Cells are rounded as torchvision (see ``kernels/roi_pool.py``);
    bins wholly off the map output 0."""
    op = "roi_pool"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f" or input.ndim != 4:
        raise ValueError(f"{op}: input must be a 4-d (N, C, H, W) floating-point tensor, got shape {input.shape} "
                         f"dtype {input.dtype}")
    size = (output_size, output_size) if isinstance(output_size, (int, np.integer)) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in size):
        raise ValueError(f"{op}: output_size must be a positive int or a pair of them, got {output_size!r}")
    if not np.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"{op}: spatial_scale must be a positive number, got {spatial_scale!r}")
    rois = _rois(op, boxes, input.shape[0]).astype(input.dtype)
    return RoIPoolFn(tuple(int(v) for v in size), float(spatial_scale))(input, rois)
