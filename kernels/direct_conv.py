"""Direct convolution: the definition as loops, for layers with few channels (ResNet-20's 16-channel stage), where
im2col's columns cost KH*KW times the input's memory traffic and the GEMMs are too skinny for BLAS to run fast.

    y[n, o, oy, ox] = sum over c, ky, kx of W[o, c, ky, kx] * x[n, c, oy * SH - PH + ky * DH, ox * SW - PW + kx * DW]

(zero outside the image), groups 1.  The CPU kernels keep one output (or gradient) row in cache and sweep it once
per filter tap, the inner loop running along the row so that it vectorises; every task owns what it writes:

    forward       one task per output plane (n, o)
    input grad    one task per input-gradient plane (n, c): each tap adds its shifted, strided row of gy
    weight grad   one task per filter (o, c): per tap, a row of partial sums (one per output column, summed at
                  the end) so the loop vectorises without reassociating a single sum

The CUDA kernels take one output element per thread (forward, input gradient as a gather over the taps that reach
the pixel) and one weight per thread (weight gradient, a loop over N * OH * OW: meant for small layers only).
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.im2col import cpu_launch, im2col_ref

__all__ = ["conv_forward", "conv_grad_input", "conv_grad_weight", "conv_forward_ref", "MAX_CHANNELS"]

MAX_CHANNELS = 32           # the autotuner tries this algorithm up to this many input channels


def conv_forward_ref(x, W, stride, padding, dilation, out_size):
    """float64 reference through im2col's reference: y (N, OC, OH, OW)."""
    cols = im2col_ref(x, W.shape[2:], stride, padding, dilation, out_size)
    return (W.reshape(W.shape[0], -1).astype(np.float64) @ cols).reshape(x.shape[0], W.shape[0], *out_size)


# ---- CPU kernels ------------------------------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _forward_cpu(x, W, s, p, d, y):
    N, C, H, Wd = x.shape
    OC, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    (SH, SW), (PH, PW), (DH, DW) = s, p, d
    OH, OW = y.shape[2], y.shape[3]
    for no in prange(N * OC):
        n, o = no // OC, no % OC
        out = y[n, o]
        out[:] = 0
        for c in range(C):
            for ky in range(KH):
                for kx in range(KW):
                    w = W[o, c, ky, kx]
                    for oy in range(OH):
                        iy = oy * SH - PH + ky * DH
                        if 0 <= iy < H:
                            row, src = out[oy], x[n, c, iy]
                            for ox in range(OW):
                                ix = ox * SW - PW + kx * DW
                                if 0 <= ix < Wd:
                                    row[ox] += w * src[ix]


@njit(parallel=True, cache=True)
def _grad_input_cpu(gy, W, s, p, d, gx):
    N, C, H, Wd = gx.shape
    OC, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    (SH, SW), (PH, PW), (DH, DW) = s, p, d
    OH, OW = gy.shape[2], gy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = gx[n, c]
        plane[:] = 0
        for o in range(OC):
            for ky in range(KH):
                for kx in range(KW):
                    w = W[o, c, ky, kx]
                    for oy in range(OH):
                        iy = oy * SH - PH + ky * DH
                        if 0 <= iy < H:
                            row, src = plane[iy], gy[n, o, oy]
                            for ox in range(OW):
                                ix = ox * SW - PW + kx * DW
                                if 0 <= ix < Wd:
                                    row[ix] += w * src[ox]


@njit(parallel=True, cache=True)
def _grad_weight_cpu(x, gy, s, p, d, gW):
    N, C, H, Wd = x.shape
    OC, KH, KW = gW.shape[0], gW.shape[2], gW.shape[3]
    (SH, SW), (PH, PW), (DH, DW) = s, p, d
    OH, OW = gy.shape[2], gy.shape[3]
    for oc in prange(OC * C):
        o, c = oc // C, oc % C
        part = np.empty(OW, gW.dtype)                    # part[ox]: this tap's sum over images and rows, per column
        for ky in range(KH):
            for kx in range(KW):
                part[:] = 0
                for n in range(N):
                    for oy in range(OH):
                        iy = oy * SH - PH + ky * DH
                        if 0 <= iy < H:
                            g, src = gy[n, o, oy], x[n, c, iy]
                            for ox in range(OW):
                                ix = ox * SW - PW + kx * DW
                                if 0 <= ix < Wd:
                                    part[ox] += g[ox] * src[ix]
                gW[o, c, ky, kx] = part.sum()


# ---- CUDA kernels -----------------------------------------------------------------------------------------------
@cuda.jit
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


@cuda.jit
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


@cuda.jit
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
def _pairs(*pairs):
    return tuple((int(a), int(b)) for a, b in pairs)


def conv_forward(x, W, stride, padding, dilation, out_size, device=None):
    """x (N, C, H, W), W (OC, C, KH, KW) -> y (N, OC, OH, OW) of x's dtype (no bias)."""
    xp, device = get_array_module(x), device or device_of(x)
    s, p, d = _pairs(stride, padding, dilation)
    x, W = xp.ascontiguousarray(x), xp.ascontiguousarray(W)
    y = xp.empty((x.shape[0], W.shape[0]) + tuple(out_size), x.dtype)
    if device == "cpu":
        cpu_launch(_forward_cpu, y.size)(x, W, s, p, d, y)
    else:
        launch(_forward_gpu, y.size)(x, W, s, p, d, y)
    return y


def conv_grad_input(gy, W, x_shape, stride, padding, dilation, device=None):
    """gy (N, OC, OH, OW), W (OC, C, KH, KW) -> gx of ``x_shape`` (N, C, H, W)."""
    xp, device = get_array_module(gy), device or device_of(gy)
    s, p, d = _pairs(stride, padding, dilation)
    gy, W = xp.ascontiguousarray(gy), xp.ascontiguousarray(W)
    gx = xp.empty(tuple(x_shape), gy.dtype)
    if device == "cpu":
        cpu_launch(_grad_input_cpu, gx.size)(gy, W, s, p, d, gx)
    else:
        launch(_grad_input_gpu, gx.size)(gy, W, s, p, d, gx)
    return gx


def conv_grad_weight(x, gy, W_shape, stride, padding, dilation, device=None):
    """x (N, C, H, W), gy (N, OC, OH, OW) -> gW of ``W_shape`` (OC, C, KH, KW)."""
    xp, device = get_array_module(x), device or device_of(x)
    s, p, d = _pairs(stride, padding, dilation)
    x, gy = xp.ascontiguousarray(x), xp.ascontiguousarray(gy)
    gW = xp.empty(tuple(W_shape), x.dtype)
    if device == "cpu":
        cpu_launch(_grad_weight_cpu, x.size)(x, gy, s, p, d, gW)
    else:
        launch(_grad_weight_gpu, gW.size)(x, gy, s, p, d, gW)
    return gW
