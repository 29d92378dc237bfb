"""Adaptive average and max pooling, forward and backward: NumPy references, Numba CPU kernels, CUDA kernels.

PyTorch's bins: output ``i`` of ``n_out`` pools input ``floor(i * n_in / n_out) .. ceil((i + 1) * n_in / n_out)``
(end exclusive), per axis.  Bins are never empty and may overlap by one pixel when ``n_out`` does not divide
``n_in``.  Argmax indices are int32 ``iy * W + ix`` into the input plane.

Adaptive pooling sits at the end of networks, on small maps, so one per-element body per direction serves both
devices (``register_jitable``) with run-time bounds.  Backwards are gathers: one thread (CUDA) or loop step (CPU)
per input pixel sums over the few bins that contain it, so nothing is scattered and no atomics are needed.
"""
import math

import numpy as np
from numba import cuda, njit, prange
from numba.extending import register_jitable

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.scalar import like


@register_jitable
def _bin(i, n_in, n_out):
    """Bin [start, end) of output ``i``: floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out)."""
    return i * n_in // n_out, ((i + 1) * n_in + n_out - 1) // n_out


@register_jitable
def _bins_containing(j, n_in, n_out):
    """Outputs lo..hi whose bins hold input ``j``: start(i) <= j <=> i < (j + 1) * n_out / n_in, and
    end(i) > j <=> i + 1 > j * n_out / n_in, so lo = floor(j * n_out / n_in), hi = ceil((j + 1) * n_out / n_in) - 1."""
    return j * n_out // n_in, ((j + 1) * n_out - 1) // n_in


@register_jitable
def _unravel(i, shape):
    hw = shape[2] * shape[3]
    return i // (shape[1] * hw), i // hw % shape[1], i // shape[3] % shape[2], i % shape[3]


# ---- per-element bodies, shared by the CPU and CUDA kernels --------------------------------------------------
@register_jitable
def _bin_mean(x, n, c, oy, ox, OH, OW):
    (y0, y1), (x0, x1) = _bin(oy, x.shape[2], OH), _bin(ox, x.shape[3], OW)
    acc = like(0, x[n, c, 0, 0])                       # in x's dtype (a bare 0.0 would be float64)
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            acc += x[n, c, iy, ix]
    return acc / like((y1 - y0) * (x1 - x0), acc)


@register_jitable
def _bin_max(x, n, c, oy, ox, OH, OW):
    """Max of bin (oy, ox) and where it is; the first maximum wins ties, a NaN wins over numbers (PyTorch)."""
    (y0, y1), (x0, x1) = _bin(oy, x.shape[2], OH), _bin(ox, x.shape[3], OW)
    best, where = like(-math.inf, x[n, c, 0, 0]), -1
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            v = x[n, c, iy, ix]
            if v > best or math.isnan(v):
                best, where = v, iy * x.shape[3] + ix
    return best, where


@register_jitable
def _mean_grad(gy, n, c, iy, ix, H, W):
    """d loss / d x[n, c, iy, ix]: each bin holding the pixel sends gy / its size."""
    (lo_y, hi_y), (lo_x, hi_x) = _bins_containing(iy, H, gy.shape[2]), _bins_containing(ix, W, gy.shape[3])
    acc = like(0, gy[n, c, 0, 0])
    for oy in range(lo_y, hi_y + 1):
        y0, y1 = _bin(oy, H, gy.shape[2])
        for ox in range(lo_x, hi_x + 1):
            x0, x1 = _bin(ox, W, gy.shape[3])
            acc += gy[n, c, oy, ox] / like((y1 - y0) * (x1 - x0), acc)
    return acc


@register_jitable
def _max_grad(gy, arg, n, c, iy, ix, H, W):
    """d loss / d x[n, c, iy, ix]: the sum of gy over the bins that hold the pixel and chose it as their max."""
    (lo_y, hi_y), (lo_x, hi_x) = _bins_containing(iy, H, gy.shape[2]), _bins_containing(ix, W, gy.shape[3])
    acc = like(0, gy[n, c, 0, 0])
    for oy in range(lo_y, hi_y + 1):
        for ox in range(lo_x, hi_x + 1):
            if arg[n, c, oy, ox] == iy * W + ix:
                acc += gy[n, c, oy, ox]
    return acc


# ---- kernels: CPU (one (n, c) plane per task), CUDA (one thread per element written) ---------------------------
@njit(parallel=True, cache=True)
def _avg_fwd_cpu(x, y):
    N, C, OH, OW = y.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for oy in range(OH):
            for ox in range(OW):
                y[n, c, oy, ox] = _bin_mean(x, n, c, oy, ox, OH, OW)


@cuda.jit(cache=True)
def _avg_fwd_gpu(x, y):
    i = cuda.grid(1)
    if i < y.size:
        n, c, oy, ox = _unravel(i, y.shape)
        y[n, c, oy, ox] = _bin_mean(x, n, c, oy, ox, y.shape[2], y.shape[3])


@njit(parallel=True, cache=True)
def _avg_bwd_cpu(gy, gx):
    N, C, H, W = gx.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for iy in range(H):
            for ix in range(W):
                gx[n, c, iy, ix] = _mean_grad(gy, n, c, iy, ix, H, W)


@cuda.jit(cache=True)
def _avg_bwd_gpu(gy, gx):
    i = cuda.grid(1)
    if i < gx.size:
        n, c, iy, ix = _unravel(i, gx.shape)
        gx[n, c, iy, ix] = _mean_grad(gy, n, c, iy, ix, gx.shape[2], gx.shape[3])


@njit(parallel=True, cache=True)
def _max_fwd_cpu(x, y, arg):
    N, C, OH, OW = y.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for oy in range(OH):
            for ox in range(OW):
                y[n, c, oy, ox], arg[n, c, oy, ox] = _bin_max(x, n, c, oy, ox, OH, OW)


@cuda.jit(cache=True)
def _max_fwd_gpu(x, y, arg):
    i = cuda.grid(1)
    if i < y.size:
        n, c, oy, ox = _unravel(i, y.shape)
        y[n, c, oy, ox], arg[n, c, oy, ox] = _bin_max(x, n, c, oy, ox, y.shape[2], y.shape[3])


@njit(parallel=True, cache=True)
def _max_bwd_cpu(gy, arg, gx):
    N, C, H, W = gx.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for iy in range(H):
            for ix in range(W):
                gx[n, c, iy, ix] = _max_grad(gy, arg, n, c, iy, ix, H, W)


@cuda.jit(cache=True)
def _max_bwd_gpu(gy, arg, gx):
    i = cuda.grid(1)
    if i < gx.size:
        n, c, iy, ix = _unravel(i, gx.shape)
        gx[n, c, iy, ix] = _max_grad(gy, arg, n, c, iy, ix, gx.shape[2], gx.shape[3])


# ---- dispatchers ---------------------------------------------------------------------------------------------
def adaptive_avg_pool_forward(x, out_hw, device=None):
    """x (N, C, H, W) -> y (N, C, OH, OW): the mean of each adaptive bin."""
    xp, device = get_array_module(x), device or device_of(x)
    x, y = xp.ascontiguousarray(x), xp.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    if device == "cpu":
        _avg_fwd_cpu(x, y)
    else:
        launch(_avg_fwd_gpu, y.size)(x, y)
    return y


def adaptive_avg_pool_backward(gy, x_shape, device=None):
    """gy (N, C, OH, OW) -> gx (x_shape)."""
    xp, device = get_array_module(gy), device or device_of(gy)
    gy, gx = xp.ascontiguousarray(gy), xp.empty(tuple(x_shape), gy.dtype)
    if device == "cpu":
        _avg_bwd_cpu(gy, gx)
    else:
        launch(_avg_bwd_gpu, gx.size)(gy, gx)
    return gx


def adaptive_max_pool_forward(x, out_hw, device=None):
    """x (N, C, H, W) -> y (N, C, OH, OW) and arg (N, C, OH, OW) int32, iy * W + ix of each bin's max."""
    xp, device = get_array_module(x), device or device_of(x)
    x, y = xp.ascontiguousarray(x), xp.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    arg = xp.empty(y.shape, np.int32)
    if device == "cpu":
        _max_fwd_cpu(x, y, arg)
    else:
        launch(_max_fwd_gpu, y.size)(x, y, arg)
    return y, arg


def adaptive_max_pool_backward(gy, arg, x_shape, device=None):
    """gy, arg (N, C, OH, OW) -> gx (x_shape): each bin's gradient goes to its argmax."""
    xp, device = get_array_module(gy), device or device_of(gy)
    gy, arg, gx = xp.ascontiguousarray(gy), xp.ascontiguousarray(arg), xp.empty(tuple(x_shape), gy.dtype)
    if device == "cpu":
        _max_bwd_cpu(gy, arg, gx)
    else:
        launch(_max_bwd_gpu, gx.size)(gy, arg, gx)
    return gx


# ---- NumPy references (slow, obviously right; tests only) ----------------------------------------------------
def _ref_bins(n_in, n_out):
    return [(math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out)) for i in range(n_out)]


def adaptive_avg_pool_forward_ref(x, out_hw):
    y = np.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    for oy, (y0, y1) in enumerate(_ref_bins(x.shape[2], out_hw[0])):
        for ox, (x0, x1) in enumerate(_ref_bins(x.shape[3], out_hw[1])):
            y[:, :, oy, ox] = x[:, :, y0:y1, x0:x1].astype(np.float64).mean(axis=(2, 3))
    return y


def adaptive_avg_pool_backward_ref(gy, x_shape):
    gx = np.zeros(x_shape)
    for oy, (y0, y1) in enumerate(_ref_bins(x_shape[2], gy.shape[2])):
        for ox, (x0, x1) in enumerate(_ref_bins(x_shape[3], gy.shape[3])):
            gx[:, :, y0:y1, x0:x1] += gy[:, :, oy, ox, None, None] / ((y1 - y0) * (x1 - x0))
    return gx.astype(gy.dtype)


def adaptive_max_pool_forward_ref(x, out_hw):
    (N, C, H, W), y = x.shape, np.empty(x.shape[:2] + tuple(out_hw), x.dtype)
    arg = np.empty(y.shape, np.int32)
    for oy, (y0, y1) in enumerate(_ref_bins(H, out_hw[0])):
        for ox, (x0, x1) in enumerate(_ref_bins(W, out_hw[1])):
            window = x[:, :, y0:y1, x0:x1].reshape(N, C, -1)
            j = np.argmax(window, axis=2)                              # the first maximum, row-major
            y[:, :, oy, ox] = np.take_along_axis(window, j[..., None], 2)[..., 0]
            arg[:, :, oy, ox] = (y0 + j // (x1 - x0)) * W + x0 + j % (x1 - x0)
    return y, arg
