"""im2col / col2im: unfold every receptive field of an NCHW image into a column, and fold columns back.

Geometry per axis: kernel ``(KH, KW)``, stride ``(SH, SW)``, padding ``(PH, PW)`` (top/left), dilation
``(DH, DW)``, output size ``(OH, OW)``.  Passing the output size lets the bottom/right padding differ from the
top/left one (``padding="same"`` with an even kernel): reads past the image are zeros, whatever their side.

Two layouts of the columns, with row = (c * KH + ky) * KW + kx and l = oy * OW + ox::

    per image ("batched"):  cols[n, row, l] = x[n, c, oy * SH - PH + ky * DH, ox * SW - PW + kx * DW]
    whole batch ("gemm"):   cols[row, n, l] = the same

(zero where the index falls outside the image).  Per image, a convolution is one batched GEMM,
``W.reshape(OC, C*KH*KW) @ cols -> (N, OC, OH*OW)``, already NCHW; over the whole batch it is one big GEMM on
``(C*KH*KW, N*OH*OW)`` columns, whose output (OC, N, OH*OW) needs a transposing copy.  Which is faster depends on
the machine and the shape (an AVX-512 Intel machine favoured per image at N=64, 64 channels, 32x32; a 2-core AMD
one the big GEMM), so ``minicnn.functional.conv`` times both.

``col2im`` is the adjoint (the backward of im2col): every image element receives the sum of the column entries
that were copied from it.  It is written as a gather: one CUDA thread per image element, looping over the
kernel taps that can reach it; one CPU task per ``(n, c)`` image plane, which sums every tap into its own plane
(the same sums, in an order that reads the columns contiguously).  No two threads write the same element, so
there are no atomics and no races.
"""
import numba
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch

__all__ = ["im2col", "col2im", "im2col_ref", "col2im_ref", "pad_input", "pad_into", "tap_window",
           "conv_output_size", "cpu_launch"]


def conv_output_size(size, kernel_size, stride, padding, dilation):
    """Output length of one axis: ``(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1``."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


# ---- NumPy reference (slow, obviously right; for tests) ---------------------------------------------------------
def pad_input(x, k, s, p, d, out_size):
    """x zero-padded by p on the top/left and as much as the output size reaches on the bottom/right."""
    (KH, KW), (SH, SW), (PH, PW), (DH, DW), (OH, OW) = k, s, p, d, out_size
    N, C, H, W = x.shape
    HP = max(H + PH, (OH - 1) * SH + (KH - 1) * DH + 1)
    WP = max(W + PW, (OW - 1) * SW + (KW - 1) * DW + 1)
    xp = np.zeros((N, C, HP, WP), np.result_type(x.dtype, np.float32))
    xp[:, :, PH:PH + H, PW:PW + W] = x
    return xp


def tap_window(ky, kx, s, d, out_size):
    """(rows, cols) slices of the padded image that kernel tap (ky, kx) reads for all OH x OW outputs."""
    (SH, SW), (DH, DW), (OH, OW) = s, d, out_size
    return slice(ky * DH, ky * DH + (OH - 1) * SH + 1, SH), slice(kx * DW, kx * DW + (OW - 1) * SW + 1, SW)


def im2col_ref(x, k, s, p, d, out_size):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW) (the per-image layout): tap (ky, kx) sees the padded image
    shifted and strided."""
    (KH, KW), (OH, OW) = k, out_size
    N, C = x.shape[:2]
    xp = pad_input(x, k, s, p, d, out_size)
    cols = np.empty((N, C, KH, KW, OH, OW), xp.dtype)
    for ky in range(KH):
        for kx in range(KW):
            cols[:, :, ky, kx] = xp[(..., *tap_window(ky, kx, s, d, out_size))]
    return cols.reshape(N, C * KH * KW, OH * OW)


def col2im_ref(cols, x_shape, k, s, p, d, out_size):
    """cols (N, C*KH*KW, OH*OW) -> gx (N, C, H, W): each tap adds its columns back where im2col took them."""
    (KH, KW), (PH, PW), (OH, OW) = k, p, out_size
    N, C, H, W = x_shape
    gp = pad_input(np.zeros(x_shape, cols.dtype), k, s, p, d, out_size)
    cols = cols.reshape(N, C, KH, KW, OH, OW)
    for ky in range(KH):
        for kx in range(KW):                 # a strided slice never repeats an index, so += is exact here
            gp[(..., *tap_window(ky, kx, s, d, out_size))] += cols[:, :, ky, kx]
    return gp[:, :, PH:PH + H, PW:PW + W]


# ---- the per-element body of im2col, compiled once for the CPU and once for CUDA --------------------------------
def _pixel(x, n, c, iy, ix):
    """x[n, c, iy, ix], or 0 in the zero padding around the image."""
    return x[n, c, iy, ix] if 0 <= iy < x.shape[2] and 0 <= ix < x.shape[3] else 0


_pixel_cpu = njit(inline="always", cache=True)(_pixel)
_pixel_gpu = cuda.jit(device=True)(_pixel)


# ---- CPU kernels ------------------------------------------------------------------------------------------------
# Bounds are tested per element on purpose: after ``0 <= ix`` LLVM knows the index is not negative, drops Numba's
# negative-index wraparound and vectorises the loop.  Precomputed valid ranges and row slices (``out[:lo] = 0``,
# a copy loop over ``[lo, hi)``) measured slower: 13.3 ms against 8.0 ms for im2col at N=64, 64 channels, 32x32,
# 3x3 on the 2-core AMD development machine (rows of 32 pixels are too short to pay for the slicing).  col2im
# is the other way round: its per-element test guards a store, which does not vectorise, so at stride 1 it adds
# each row's valid run [lo, hi) through views indexed from 0 (7.6 ms against 11.5 ms at the same size).
@njit(parallel=True, cache=True)
def _im2col_cpu(x, k, s, p, d, cols, batch_first):
    N, C = x.shape[0], x.shape[1]
    KH, KW, SH, SW, PH, PW, DH, DW = k + s + p + d
    OH, OW = cols.shape[2], cols.shape[3]
    R = C * KH * KW
    for r in prange(N * R):                               # one task per column row (n, c, ky, kx), in memory order
        n, row = (r // R, r % R) if batch_first else (r % N, r // N)
        c, ky, kx = row // (KH * KW), row // KW % KH, row % KW
        dst = cols[n, row] if batch_first else cols[row, n]   # (OH, OW)
        for oy in range(OH):
            for ox in range(OW):
                dst[oy, ox] = _pixel_cpu(x, n, c, oy * SH - PH + ky * DH, ox * SW - PW + kx * DW)


@njit(parallel=True, cache=True)
def _col2im_cpu(cols, k, s, p, d, gx, batch_first):
    N, C, H, W = gx.shape
    KH, KW, SH, SW, PH, PW, DH, DW = k + s + p + d
    OH, OW = cols.shape[2], cols.shape[3]
    for nc in prange(N * C):                              # one task owns one (n, c) plane of gx: no races
        n, c = nc // C, nc % C
        plane = gx[n, c]
        plane[:] = 0
        for ky in range(KH):                              # sum every tap into the plane, in cols' order
            for kx in range(KW):
                row = (c * KH + ky) * KW + kx
                src = cols[n, row] if batch_first else cols[row, n]
                off = kx * DW - PW                        # ix = ox * SW + off
                lo, hi = max(0, -off), min(OW, W - off)   # outputs whose ix is inside the image (SW == 1)
                for oy in range(OH):
                    iy = oy * SH - PH + ky * DH
                    if iy < 0 or iy >= H:
                        continue
                    if SW == 1:                           # a contiguous run: views indexed from 0 vectorise
                        dst, run = plane[iy, lo + off:hi + off], src[oy, lo:hi]
                        for j in range(hi - lo):
                            dst[j] += run[j]
                    else:
                        for ox in range(OW):
                            ix = ox * SW + off
                            if 0 <= ix < W:
                                plane[iy, ix] += src[oy, ox]


# ---- CUDA kernels: one thread per element written ---------------------------------------------------------------
@cuda.jit(cache=True)
def _im2col_gpu(x, k, s, p, d, cols, batch_first):
    i = cuda.grid(1)
    A, B, OH, OW = cols.shape
    if i < A * B * OH * OW:                               # the grid is rounded up: always guard
        a, b, oy, ox = i // (B * OH * OW), i // (OH * OW) % B, i // OW % OH, i % OW
        n, row = (a, b) if batch_first else (b, a)
        c, ky, kx = row // (k[0] * k[1]), row // k[1] % k[0], row % k[1]
        cols[a, b, oy, ox] = _pixel_gpu(x, n, c, oy * s[0] - p[0] + ky * d[0], ox * s[1] - p[1] + kx * d[1])


@cuda.jit(cache=True)
def _col2im_gpu(cols, k, s, p, d, gx, batch_first):
    i = cuda.grid(1)
    N, C, H, W = gx.shape
    OH, OW = cols.shape[2], cols.shape[3]
    if i < N * C * H * W:
        n, c, iy, ix = i // (C * H * W), i // (H * W) % C, i // W % H, i % W
        acc = gx.dtype.type(0)                             # accumulate in the gradient's own dtype
        for ky in range(k[0]):
            ty = iy + p[0] - ky * d[0]                     # tap ky reaches row iy from output row oy = ty / SH
            oy = ty // s[0]
            if ty >= 0 and oy * s[0] == ty and oy < OH:
                for kx in range(k[1]):
                    tx = ix + p[1] - kx * d[1]
                    ox = tx // s[1]
                    if tx >= 0 and ox * s[1] == tx and ox < OW:
                        row = (c * k[0] + ky) * k[1] + kx
                        acc += cols[n, row, oy, ox] if batch_first else cols[row, n, oy, ox]
        gx[n, c, iy, ix] = acc


# ---- dispatchers ------------------------------------------------------------------------------------------------
PARALLEL_MIN = 1 << 16


def cpu_launch(kernel, n):
    """The parallel CPU ``kernel``, for a job of ``n`` elements: run on the calling thread alone when ``n`` is below
    ``PARALLEL_MIN``.  Waking Numba's other threads takes microseconds on an idle machine but milliseconds on a busy
    one (8-20 ms per call measured here with the two cores shared), far more than a small loop takes."""
    if n >= PARALLEL_MIN:
        return kernel

    def on_this_thread(*args):
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(threads)
    return on_this_thread


def run_elementwise(cpu_kernel, gpu_kernel, device, arrays, scalars=()):
    """Run an elementwise kernel (one index per element, CPU and CUDA versions) over the flattened ``arrays`` (all
    of one shape), then ``scalars``.  A non-contiguous array goes in as a contiguous copy that is written back
    afterwards, so kernels may update their arrays in place; pass inputs contiguous to spare them the write."""
    xp = get_array_module(arrays[0])
    flat = [a.reshape(-1) if a.flags.c_contiguous else xp.ascontiguousarray(a).reshape(-1) for a in arrays]
    if device == "cpu":
        cpu_launch(cpu_kernel, flat[0].size)(*flat, *scalars)
    elif flat[0].size:
        launch(gpu_kernel, flat[0].size)(*flat, *scalars)
    for a, f in zip(arrays, flat):
        if not a.flags.c_contiguous:
            a[...] = f.reshape(a.shape)


def _geometry(*pairs):
    return tuple((int(a), int(b)) for a, b in pairs)


def pad_into(x, top, left, out):
    """x (N, C, H, W) at (top, left) in ``out`` (N, C, HP, WP), zeros around it (what lies past HP, WP is cut off).
    Only the border is zeroed: the kernels that read padded copies (winograd.py, direct_conv.py) reuse buffers."""
    H, W, HP, WP = x.shape[2], x.shape[3], out.shape[2], out.shape[3]
    h, w = min(H, HP - top), min(W, WP - left)
    out[:, :, :top] = 0
    out[:, :, top + h:] = 0
    out[:, :, top:top + h, :left] = 0
    out[:, :, top:top + h, left + w:] = 0
    out[:, :, top:top + h, left:left + w] = x[:, :, :h, :w]
    return out


def im2col(x, kernel_size, stride, padding, dilation, out_size, device=None, out=None, layout="batched"):
    """x (N, C, H, W) -> cols of x's dtype, (N, C*KH*KW, OH*OW) for ``layout="batched"`` or (C*KH*KW, N*OH*OW)
    for ``"gemm"``; every geometry argument is a pair (per axis).

    ``out``: an optional C-contiguous buffer of that size and dtype to write into (see ``backend.scratch``)."""
    xp, device = get_array_module(x), device or device_of(x)
    k, s, p, d, (OH, OW) = _geometry(kernel_size, stride, padding, dilation, out_size)
    N, C = x.shape[:2]
    R, batch_first = C * k[0] * k[1], layout == "batched"
    shape = (N, R, OH, OW) if batch_first else (R, N, OH, OW)
    cols = xp.empty(shape, x.dtype) if out is None else out.reshape(shape)
    x = xp.ascontiguousarray(x)                            # one compiled layout; the simulator needs it
    if device == "cpu":
        cpu_launch(_im2col_cpu, cols.size)(x, k, s, p, d, cols, batch_first)
    else:
        launch(_im2col_gpu, cols.size)(x, k, s, p, d, cols, batch_first)
    return cols.reshape(N, R, OH * OW) if batch_first else cols.reshape(R, N * OH * OW)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation, out_size, device=None, layout="batched",
           out=None):
    """cols (N, C*KH*KW, OH*OW) (``layout="batched"``) or (C*KH*KW, N*OH*OW) (``"gemm"``) -> gx of ``x_shape``
    (N, C, H, W), cols' dtype: the adjoint of ``im2col``.  ``out``: an optional C-contiguous gx to write into."""
    xp, device = get_array_module(cols), device or device_of(cols)
    k, s, p, d, (OH, OW) = _geometry(kernel_size, stride, padding, dilation, out_size)
    N, R = x_shape[0], x_shape[1] * k[0] * k[1]
    batch_first = layout == "batched"
    cols = xp.ascontiguousarray(cols).reshape((N, R, OH, OW) if batch_first else (R, N, OH, OW))
    gx = xp.empty(tuple(x_shape), cols.dtype) if out is None else out
    if device == "cpu":
        cpu_launch(_col2im_cpu, cols.size)(cols, k, s, p, d, gx, batch_first)
    else:
        launch(_col2im_gpu, gx.size)(cols, k, s, p, d, gx, batch_first)
    return gx
