"""RoI max pooling (Fast R-CNN, Girshick 2015, section 2.1) with torchvision's ``roi_pool`` semantics: NumPy
reference, Numba CPU kernels, Numba CUDA kernels.

A RoI ``(batch index, x1, y1, x2, y2)`` in image coordinates maps to feature-map cells ``round(x1 * scale) ..
round(x2 * scale)`` inclusive (C's ``roundf``: halves away from zero), at least one cell wide; its ``PH x PW`` bins
are ``floor(p * bin) .. ceil((p + 1) * bin)`` (end exclusive) with ``bin = roi size / P``, offset by the RoI's start
and clipped to the map.  Bins may overlap, and may be empty (a RoI off the map): an empty bin outputs 0 with
argmax -1.  As torchvision, the bin arithmetic runs in the feature map's dtype (float32 rounds ``p * bin``
differently from float64 near integers), and a NaN never wins a bin (strict ``>``).

The bins depend on the RoIs only, so ``roi_bins`` computes them once, vectorised (NumPy or CuPy), and the kernels
just take maxima.  Backwards without races or atomics: on the CPU each task owns one channel of every image and
scatters the RoIs' gradients into it (RoIs of one image overlap, but a channel is never shared between tasks); on
CUDA one thread per input element gathers over its own image's RoIs (grouped by image with a device sort, so a
thread never scans the other images' RoIs) and the bins covering it.
"""
import math

import numpy as np
from numba import cuda, njit, prange
from numba.extending import register_jitable

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.scalar import like


def _round_half_away(v, xp):
    """C's ``roundf``: halves go away from zero (``xp.rint`` sends them to the even neighbour)."""
    t = xp.trunc(v)
    return xp.where(xp.abs(v - t) == 0.5, t + xp.sign(v), xp.rint(v))


def roi_bins(rois, output_size, spatial_scale, H, W, dtype):
    """rois (R, 5) -> batch (R,) int32, rows (R, PH, 2) and cols (R, PW, 2) int32: each bin's [start, end) on the
    H x W map, computed in ``dtype`` as torchvision does."""
    xp, t = get_array_module(rois), np.dtype(dtype).type
    scaled = rois[:, 1:].astype(dtype) * t(spatial_scale)                  # x1, y1, x2, y2 on the map
    start = _round_half_away(scaled[:, :2], xp).astype(np.int64)
    size = xp.maximum(_round_half_away(scaled[:, 2:], xp).astype(np.int64) - start + 1, 1)
    edges = []
    for axis, P, limit in ((1, output_size[0], H), (0, output_size[1], W)):   # rows (y), then columns (x)
        step = size[:, axis].astype(dtype)[:, None] / t(P)                    # the bin size, in dtype
        p = xp.arange(P, dtype=dtype)[None, :]
        lo, hi = xp.floor(p * step).astype(np.int64), xp.ceil((p + 1) * step).astype(np.int64)
        off = start[:, axis, None]
        edges.append(xp.clip(xp.stack([lo + off, hi + off], axis=2), 0, limit).astype(np.int32))
    return rois[:, 0].astype(np.int32), edges[0], edges[1]


@register_jitable
def _unravel(i, shape):
    hw = shape[2] * shape[3]
    return i // (shape[1] * hw), i // hw % shape[1], i // shape[3] % shape[2], i % shape[3]


@register_jitable
def _bin_max(x, batch, rows, cols, r, c, ph, pw):
    """Max of bin (ph, pw) of RoI r in channel c and where it is (h * W + w); an empty bin gives (0, -1)."""
    h0, h1, w0, w1 = rows[r, ph, 0], rows[r, ph, 1], cols[r, pw, 0], cols[r, pw, 1]
    if h1 <= h0 or w1 <= w0:
        return like(0, x[0, 0, 0, 0]), -1                              # in x's dtype, not float64
    best, where = like(-math.inf, x[0, 0, 0, 0]), -1
    for h in range(h0, h1):
        for w in range(w0, w1):
            if x[batch[r], c, h, w] > best:                            # strict: the first maximum wins ties
                best, where = x[batch[r], c, h, w], h * x.shape[3] + w
    return best, where


@njit(parallel=True, cache=True)
def _fwd_cpu(x, batch, rows, cols, y, argmax):
    R, C, PH, PW = y.shape
    for rc in prange(R * C):                                           # one (RoI, channel) per task
        r, c = rc // C, rc % C
        for ph in range(PH):
            for pw in range(PW):
                y[r, c, ph, pw], argmax[r, c, ph, pw] = _bin_max(x, batch, rows, cols, r, c, ph, pw)


@cuda.jit(cache=True)
def _fwd_gpu(x, batch, rows, cols, y, argmax):
    i = cuda.grid(1)                                                   # one thread per output element
    if i < y.size:
        r, c, ph, pw = _unravel(i, y.shape)
        y[r, c, ph, pw], argmax[r, c, ph, pw] = _bin_max(x, batch, rows, cols, r, c, ph, pw)


@njit(parallel=True, cache=True)
def _bwd_cpu(gy, argmax, batch, gx):
    N, C, H, W = gx.shape
    R, _, PH, PW = gy.shape
    gx = gx.reshape(N, C, H * W)
    for c in prange(C):                                                # a task owns channel c of every image
        for n in range(N):
            gx[n, c] = 0
        for r in range(R):
            for ph in range(PH):
                for pw in range(PW):
                    if argmax[r, c, ph, pw] >= 0:
                        gx[batch[r], c, argmax[r, c, ph, pw]] += gy[r, c, ph, pw]


@cuda.jit(cache=True)
def _bwd_gpu(gy, argmax, order, starts, rows, cols, gx):
    i = cuda.grid(1)                                                   # one thread per input element: a gather
    if i < gx.size:
        n, c, h, w = _unravel(i, gx.shape)
        acc = like(0, gy[0, 0, 0, 0])
        for k in range(starts[n], starts[n + 1]):                      # only image n's RoIs (grouped by image)
            r = order[k]
            for ph in range(rows.shape[1]):
                if rows[r, ph, 0] <= h and h < rows[r, ph, 1]:
                    for pw in range(cols.shape[1]):
                        if cols[r, pw, 0] <= w and w < cols[r, pw, 1] and argmax[r, c, ph, pw] == h * gx.shape[3] + w:
                            acc += gy[r, c, ph, pw]
        gx[n, c, h, w] = acc


def roi_pool_forward(x, rois, output_size, spatial_scale=1.0, device=None):
    """x (N, C, H, W), rois (R, 5) -> y (R, C, PH, PW) of x's dtype, argmax (R, C, PH, PW) int32 (h * W + w,
    -1 for empty bins).  ``output_size`` (PH, PW)."""
    xp, device = get_array_module(x), device or device_of(x)
    batch, rows, cols = roi_bins(xp.asarray(rois), output_size, spatial_scale, *x.shape[2:], x.dtype)
    x, y = xp.ascontiguousarray(x), xp.empty((rows.shape[0], x.shape[1]) + tuple(output_size), x.dtype)
    argmax = xp.empty(y.shape, np.int32)
    if device == "cpu":
        _fwd_cpu(x, batch, rows, cols, y, argmax)
    else:
        launch(_fwd_gpu, y.size)(x, batch, rows, cols, y, argmax)
    return y, argmax


def roi_pool_backward(gy, argmax, rois, x_shape, spatial_scale=1.0, device=None):
    """gy, argmax (R, C, PH, PW) -> gx (x_shape): each bin's gradient goes to its argmax pixel."""
    xp, device = get_array_module(gy), device or device_of(gy)
    batch, rows, cols = roi_bins(xp.asarray(rois), gy.shape[2:], spatial_scale, *x_shape[2:], gy.dtype)
    gy, argmax, gx = xp.ascontiguousarray(gy), xp.ascontiguousarray(argmax), xp.empty(tuple(x_shape), gy.dtype)
    if device == "cpu":
        _bwd_cpu(gy, argmax, batch, gx)
    else:
        order = xp.argsort(batch).astype(np.int32)                     # RoIs grouped by image, on the device:
        starts = xp.searchsorted(batch[order], xp.arange(x_shape[0] + 1, dtype=np.int32)).astype(np.int32)
        launch(_bwd_gpu, gx.size)(gy, argmax, order, starts, rows, cols, gx)
    return gx


# ---- NumPy references (slow, obviously right; tests only) ----------------------------------------------------
def _roundf(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_pool_forward_ref(x, rois, output_size, spatial_scale=1.0):
    """torchvision's loops, one RoI and bin at a time, in x's dtype ``t``."""
    (N, C, H, W), (PH, PW), t = x.shape, output_size, x.dtype.type
    y, argmax = np.zeros((len(rois), C, PH, PW), x.dtype), np.full((len(rois), C, PH, PW), -1, np.int32)
    for r, roi in enumerate(np.asarray(rois)):
        n = int(roi[0])
        x1, y1, x2, y2 = (_roundf(float(t(v) * t(spatial_scale))) for v in roi[1:])
        bin_h, bin_w = t(max(y2 - y1 + 1, 1)) / t(PH), t(max(x2 - x1 + 1, 1)) / t(PW)
        for ph in range(PH):
            h0 = min(max(math.floor(t(ph) * bin_h) + y1, 0), H)
            h1 = min(max(math.ceil(t(ph + 1) * bin_h) + y1, 0), H)
            for pw in range(PW):
                w0 = min(max(math.floor(t(pw) * bin_w) + x1, 0), W)
                w1 = min(max(math.ceil(t(pw + 1) * bin_w) + x1, 0), W)
                if h0 < h1 and w0 < w1:
                    window = x[n, :, h0:h1, w0:w1].reshape(C, -1)
                    j = np.argmax(window, axis=1)                      # the first maximum, row-major
                    y[r, :, ph, pw] = window[np.arange(C), j]
                    argmax[r, :, ph, pw] = (h0 + j // (w1 - w0)) * W + w0 + j % (w1 - w0)
    return y, argmax


def roi_pool_backward_ref(gy, argmax, rois, x_shape):
    gx = np.zeros(x_shape, gy.dtype)
    for r, roi in enumerate(np.asarray(rois)):
        for c in range(x_shape[1]):
            hit = argmax[r, c] >= 0
            np.add.at(gx[int(roi[0]), c].reshape(-1), argmax[r, c][hit], gy[r, c][hit])
    return gx
