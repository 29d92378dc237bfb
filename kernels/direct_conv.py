"""Direct convolution: the definition as loops, for layers with few channels (ResNet-20's 16-channel stage), where
im2col's columns cost KH*KW times the input's memory traffic and the GEMMs are too skinny for BLAS to run fast.

    y[n, o, oy, ox] = sum over c, ky, kx of W[o, c, ky, kx] * xp[n, c, oy * SH + ky * DH, ox * SW + kx * DW]

with ``xp`` the input zero-padded by (PH, PW) on the top/left (and as far as the output reaches on the
bottom/right), groups 1.  The CPU kernels run on that padded copy, so the inner loops have no bounds tests, and
one task per image keeps a block of rows in cache while every filter tap sweeps it, the innermost loop along a
row.  That loop indexes a view of the row from 0 (``src = row[kx:kx + OW]``, then ``src[ox]``): with an offset
inside the index (``row[ox + kx]``) Numba's negative-index wraparound stops LLVM from vectorising it, measured
6 against 32 GFLOP/s on one core here.

    forward       stride 1: each plane flattened, computed on the padded width (one long loop per tap, below);
                  else acc (OC, OW) for one output row: each input row segment is read once for all OC filters
    input grad    stride 1: the forward of gy with the filters transposed and turned by 180 degrees; else:
                  the adjoint: each gy row adds w * gy into the padded gradient rows it came from (the task owns
                  its image's gradient, so there are no races), cropped at the end
    weight grad   per task (a share of the images) one row of partial sums per weight, part (OC, C, KH, KW, OW),
                  summed over the tasks and the row at the end: the loop vectorises without reassociating a sum

The CUDA kernels take one output element per thread (forward, input gradient as a gather over the taps that reach
the pixel) and one weight per thread (weight gradient, a loop over N * OH * OW: meant for small layers only).
"""
import numba
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch, scratch
from minicnn.kernels.im2col import _geometry, cpu_launch, im2col_ref, pad_into

__all__ = ["conv_forward", "conv_grad_input", "conv_grad_weight", "conv_forward_ref", "MAX_CHANNELS"]

MAX_CHANNELS = 32           # the autotuner tries this algorithm up to this many input channels


def conv_forward_ref(x, W, stride, padding, dilation, out_size):
    """float64 reference through im2col's reference: y (N, OC, OH, OW)."""
    cols = im2col_ref(x, W.shape[2:], stride, padding, dilation, out_size)
    return (W.reshape(W.shape[0], -1).astype(np.float64) @ cols).reshape(x.shape[0], W.shape[0], *out_size)


def padded_size(k, s, d, out_size):
    """(HP, WP): the padded input rows and columns that the outputs read."""
    return tuple((o - 1) * ss + (kk - 1) * dd + 1 for o, kk, ss, dd in zip(out_size, k, s, d))


# ---- CPU kernels: one image per task ----------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _forward_cpu(xp, W, s, d, y):
    N, C = xp.shape[0], xp.shape[1]
    OC, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    (SH, SW), (DH, DW) = s, d
    OH, OW = y.shape[2], y.shape[3]
    for n in prange(N):
        acc = np.empty((OC, OW), y.dtype)                # one output row of every filter
        for oy in range(OH):
            acc[:] = 0
            for c in range(C):
                for ky in range(KH):
                    row = xp[n, c, oy * SH + ky * DH]
                    for kx in range(KW):
                        if SW == 1:
                            src = row[kx * DW:kx * DW + OW]      # a view, indexed from 0: the loop vectorises
                            for o in range(OC):
                                w, a = W[o, c, ky, kx], acc[o]
                                for ox in range(OW):
                                    a[ox] += w * src[ox]
                        else:
                            srcs = row[kx * DW::SW]
                            for o in range(OC):
                                w, a = W[o, c, ky, kx], acc[o]
                                for ox in range(OW):
                                    a[ox] += w * srcs[ox]
            for o in range(OC):
                y[n, o, oy] = acc[o]


@njit(parallel=True, cache=True)
def _forward_flat_cpu(xf, W, d, WP, y):
    """Stride 1: the padded planes flattened, xf (N, C, HP*WP + extra), and each output plane computed on the
    padded width, acc (OH*WP): tap (ky, kx) is then one shift of the whole plane, ``ky * DH * WP + kx * DW``, and
    the inner loop runs over OH*WP values at once.  The WP - OW extra columns per row are computed and dropped."""
    N, C = xf.shape[0], xf.shape[1]
    OC, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    L = OH * WP
    for no in prange(N * OC):
        n, o = no // OC, no % OC
        acc = np.zeros(L, y.dtype)
        for c in range(C):
            plane = xf[n, c]
            for ky in range(KH):
                for kx in range(KW):
                    w, off = W[o, c, ky, kx], ky * d[0] * WP + kx * d[1]
                    src = plane[off:off + L]
                    for j in range(L):
                        acc[j] += w * src[j]
        for oy in range(OH):
            y[n, o, oy] = acc[oy * WP:oy * WP + OW]


@njit(parallel=True, cache=True)
def _grad_input_cpu(gy, W, s, d, gp):
    N, C = gp.shape[0], gp.shape[1]
    OC, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    (SH, SW), (DH, DW) = s, d
    OH, OW = gy.shape[2], gy.shape[3]
    for n in prange(N):                                  # the task owns gp[n]: no races
        gp[n] = 0
        for oy in range(OH):
            for o in range(OC):
                g = gy[n, o, oy]
                for c in range(C):
                    for ky in range(KH):
                        row = gp[n, c, oy * SH + ky * DH]
                        for kx in range(KW):
                            w = W[o, c, ky, kx]
                            if SW == 1:
                                dst = row[kx * DW:kx * DW + OW]
                                for ox in range(OW):
                                    dst[ox] += w * g[ox]
                            else:
                                dsts = row[kx * DW::SW]
                                for ox in range(OW):
                                    dsts[ox] += w * g[ox]


@njit(parallel=True, cache=True)
def _grad_weight_cpu(xp, gy, s, d, part):
    T, OC, C, KH, KW, OW = part.shape
    N, OH = gy.shape[0], gy.shape[2]
    (SH, SW), (DH, DW) = s, d
    for t in prange(T):                                  # task t: images t, t + T, t + 2T, ...
        acc = part[t]
        acc[:] = 0
        for n in range(t, N, T):
            for oy in range(OH):
                for o in range(OC):
                    g = gy[n, o, oy]
                    for c in range(C):
                        for ky in range(KH):
                            row = xp[n, c, oy * SH + ky * DH]
                            for kx in range(KW):
                                a = acc[o, c, ky, kx]
                                if SW == 1:
                                    src = row[kx * DW:kx * DW + OW]
                                    for ox in range(OW):
                                        a[ox] += g[ox] * src[ox]
                                else:
                                    srcs = row[kx * DW::SW]
                                    for ox in range(OW):
                                        a[ox] += g[ox] * srcs[ox]


# ---- CUDA kernels -----------------------------------------------------------------------------------------------
@cuda.jit(cache=True)
def _forward_gpu(x, W, s, p, d, y):
    i = cuda.grid(1)
    N, OC, OH, OW = y.shape
    if i < y.size:
        n, o, oy, ox = i // (OC * OH * OW), i // (OH * OW) % OC, i // OW % OH, i % OW
        acc = y.dtype.type(0)
        for c in range(x.shape[1]):
            for ky in range(W.shape[2]):
                iy = oy * s[0] - p[0] + ky * d[0]
                if 0 <= iy < x.shape[2]:
                    for kx in range(W.shape[3]):
                        ix = ox * s[1] - p[1] + kx * d[1]
                        if 0 <= ix < x.shape[3]:
                            acc += W[o, c, ky, kx] * x[n, c, iy, ix]
        y[n, o, oy, ox] = acc


@cuda.jit(cache=True)
def _grad_input_gpu(gy, W, s, p, d, gx):
    i = cuda.grid(1)
    N, C, H, Wd = gx.shape
    if i < gx.size:
        n, c, iy, ix = i // (C * H * Wd), i // (H * Wd) % C, i // Wd % H, i % Wd
        acc = gx.dtype.type(0)
        for ky in range(W.shape[2]):
            ty = iy + p[0] - ky * d[0]                   # tap ky reaches row iy from output row ty / SH
            oy = ty // s[0]
            if ty >= 0 and oy * s[0] == ty and oy < gy.shape[2]:
                for kx in range(W.shape[3]):
                    tx = ix + p[1] - kx * d[1]
                    ox = tx // s[1]
                    if tx >= 0 and ox * s[1] == tx and ox < gy.shape[3]:
                        for o in range(W.shape[0]):
                            acc += W[o, c, ky, kx] * gy[n, o, oy, ox]
        gx[n, c, iy, ix] = acc


@cuda.jit(cache=True)
def _grad_weight_gpu(x, gy, s, p, d, gW):
    i = cuda.grid(1)
    OC, C, KH, KW = gW.shape
    if i < gW.size:
        o, c, ky, kx = i // (C * KH * KW), i // (KH * KW) % C, i // KW % KH, i % KW
        acc = gW.dtype.type(0)
        for n in range(x.shape[0]):
            for oy in range(gy.shape[2]):
                iy = oy * s[0] - p[0] + ky * d[0]
                if 0 <= iy < x.shape[2]:
                    for ox in range(gy.shape[3]):
                        ix = ox * s[1] - p[1] + kx * d[1]
                        if 0 <= ix < x.shape[3]:
                            acc += gy[n, o, oy, ox] * x[n, c, iy, ix]
        gW[o, c, ky, kx] = acc


# ---- dispatchers ------------------------------------------------------------------------------------------------
def _padded(x, p, size):
    """x (N, C, H, W) at (PH, PW) in a zero (N, C, HP, WP) reused buffer (what lies past HP, WP is never read)."""
    return pad_into(x, p[0], p[1], scratch("direct_pad", x.shape[:2] + tuple(size), x.dtype, x))


def conv_forward(x, W, stride, padding, dilation, out_size, device=None):
    """x (N, C, H, W), W (OC, C, KH, KW) -> y (N, OC, OH, OW) of x's dtype (no bias)."""
    xp, device = get_array_module(x), device or device_of(x)
    s, p, d = _geometry(stride, padding, dilation)
    W = xp.ascontiguousarray(W)
    y = xp.empty((x.shape[0], W.shape[0]) + tuple(out_size), x.dtype)
    if device == "cpu" and s == (1, 1):
        (N, C), (KH, KW) = x.shape[:2], W.shape[2:]
        HP, WP = padded_size((KH, KW), s, d, out_size)
        xf = scratch("direct_flat", (N, C, HP * WP + (KW - 1) * d[1]), x.dtype, x)
        xf[:, :, HP * WP:] = 0
        pad_into(x, p[0], p[1], xf[:, :, :HP * WP].reshape(N, C, HP, WP))
        cpu_launch(_forward_flat_cpu, y.size)(xf, W, d, WP, y)
    elif device == "cpu":
        xpad = _padded(x, p, padded_size(W.shape[2:], s, d, out_size))
        cpu_launch(_forward_cpu, y.size)(xpad, W, s, d, y)
    else:
        launch(_forward_gpu, y.size)(xp.ascontiguousarray(x), W, s, p, d, y)
    return y


def conv_grad_input(gy, W, x_shape, stride, padding, dilation, device=None):
    """gy (N, OC, OH, OW), W (OC, C, KH, KW) -> gx of ``x_shape`` (N, C, H, W)."""
    xp, device = get_array_module(gy), device or device_of(gy)
    s, p, d = _geometry(stride, padding, dilation)
    gy, W = xp.ascontiguousarray(gy), xp.ascontiguousarray(W)
    (KH, KW), (DH, DW) = W.shape[2:], d
    flipped_pad = ((KH - 1) * DH - p[0], (KW - 1) * DW - p[1])
    if device == "cpu" and s == (1, 1) and min(flipped_pad) >= 0:
        # stride 1: tap ky reaches input row iy from output row iy + PH - ky * DH, so gx is the correlation of gy,
        # padded by (KH - 1) * DH - PH, with the filters transposed (OC <-> C) and turned by 180 degrees
        Wf = np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        return conv_forward(gy, Wf, s, flipped_pad, d, tuple(x_shape[2:]))
    if device == "cpu":
        (N, C, H, Wd), (PH, PW) = x_shape, p
        HP, WP = padded_size(W.shape[2:], s, d, gy.shape[2:])
        gp = scratch("direct_gpad", (N, C, max(HP, PH + H), max(WP, PW + Wd)), gy.dtype, gy)
        cpu_launch(_grad_input_cpu, gp.size)(gy, W, s, d, gp)
        return gp[:, :, PH:PH + H, PW:PW + Wd].copy()         # a copy: gp is a reused buffer
    gx = xp.empty(tuple(x_shape), gy.dtype)
    launch(_grad_input_gpu, gx.size)(gy, W, s, p, d, gx)
    return gx


def conv_grad_weight(x, gy, W_shape, stride, padding, dilation, device=None):
    """x (N, C, H, W), gy (N, OC, OH, OW) -> gW of ``W_shape`` (OC, C, KH, KW)."""
    xp, device = get_array_module(x), device or device_of(x)
    s, p, d = _geometry(stride, padding, dilation)
    gy = xp.ascontiguousarray(gy)
    if device == "cpu":
        xpad = _padded(x, p, padded_size(W_shape[2:], s, d, gy.shape[2:]))
        T = max(1, min(numba.get_num_threads(), x.shape[0]))
        part = scratch("direct_part", (T,) + tuple(W_shape) + (gy.shape[3],), x.dtype, x)
        cpu_launch(_grad_weight_cpu, x.size)(xpad, gy, s, d, part)
        return part.sum(axis=(0, 5))
    gW = xp.empty(tuple(W_shape), x.dtype)
    launch(_grad_weight_gpu, gW.size)(xp.ascontiguousarray(x), gy, s, p, d, gW)
    return gW
