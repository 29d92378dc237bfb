"""Batch normalisation (Ioffe & Szegedy 2015, Algorithm 1 and section 3), fused: few passes over the data.

Per channel c, over the m = N * H * W values of x (N, C, H, W) (any trailing shape works: (N, C, L) views it):

    mean = sum(x) / m,   var = sum((x - mean)^2) / m,   inv_std = 1 / sqrt(var + eps)
    y  = (x - mean) * inv_std * weight + bias  =  x * scale + shift,  scale = weight * inv_std
    backward, with xhat = (x - mean) * inv_std (recomputed, not stored):
    gbias = sum(gy),  gweight = sum(gy * xhat),  gx = scale * (gy - gbias / m - xhat * gweight / m)

NumPy's expressions make about ten passes over the data forward and eight backward (every temporary is one);
the CPU kernels make two forward (the statistics, write y) and two backward (the two sums, write gx), one task
per channel, accumulating in float64 (a float32 running sum over 131,072 values loses digits).  The statistics
take one pass: the sums of d = x - K and d^2 for K = the channel's first value, then mean = K + sum(d) / m and
var = sum(d^2) / m - (sum(d) / m)^2 ("shifted data", Chan, Golub & LeVeque 1983).  Without the shift, the
difference of two large sums cancels when the mean is far from 0 next to the spread; with it, only when the
first value is, and in float64 even values 1000 standard deviations off keep 9 digits of the variance.

``relu=True`` is ``relu(batch_norm(x))`` in the same passes (a block's conv -> BN -> ReLU): the affine pass
writes max(y, 0) (NaN stays NaN, as ``kernels/relu.py``), and the backward recomputes the mask y > 0 from x,
which it reads anyway, so the ReLU costs no pass of its own either way (ResNet-20 has ten such pairs a step).
``residual=r`` is ``relu(batch_norm(x) + r)``, the end of a residual block, in the affine pass too (x and r read,
y and the ReLU's mask written, against an extra y, a sum and a ReLU pass); its backward masks gy as it sums it
(the masked gradient, r's, written in that pass), then writes gx as batch norm's does.

On the GPU the per-channel sums are CuPy reductions (tuned, race-free) and the elementwise passes are CUDA
kernels, one thread per element.  ``batch_stats=False`` (eval) is the affine map alone: gx = gy * scale.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.im2col import cpu_launch
from minicnn.kernels.relu import relu_backward
from minicnn.kernels.scalar import like

__all__ = ["batch_norm_forward", "batch_norm_backward", "batch_norm_forward_ref", "batch_norm_backward_ref"]


# ---- NumPy reference (the formulas above, float64) --------------------------------------------------------------
def batch_norm_forward_ref(x, weight, bias, eps, relu=False, residual=None):
    """x (N, C, L) -> y, mean, var (biased) of each channel."""
    x = x.astype(np.float64)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    xhat = (x - mean[:, None]) / np.sqrt(var[:, None] + eps)
    y = xhat * weight[:, None] + bias[:, None] + (0 if residual is None else residual)
    return (y * (y > 0) if relu else y), mean, var


def batch_norm_backward_ref(x, gy, weight, mean, var, eps, bias=None, relu=False):
    """-> gx, gweight, gbias for batch statistics (``relu``: of relu(batch_norm(x)), with the forward's bias)."""
    x, gy, m = x.astype(np.float64), gy.astype(np.float64), x.shape[0] * x.shape[2]
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None]) * inv_std[:, None]
    if relu:
        gy = gy * (xhat * weight[:, None] + bias[:, None] > 0)
    gbias, gweight = gy.sum(axis=(0, 2)), (gy * xhat).sum(axis=(0, 2))
    gx = (weight * inv_std)[:, None] * (gy - gbias[:, None] / m - xhat * gweight[:, None] / m)
    return gx, gweight, gbias


# ---- elementwise pieces shared by the CPU and CUDA kernels --------------------------------------------------------
def _affine_one(v, a, b, relu):
    """y = v * a + b, or relu(y) = y * (y > 0) (not a select: NaN * 0 stays NaN)."""
    y = v * a + b
    return y * like(y > 0, y) if relu else y


def _masked_one(g, v, a, b, relu):
    """The upstream gradient g where the ReLU after y = v * a + b passed it (y > 0), else 0; g without ``relu``.
    The same expression as the forward's, so the mask is the forward's, bit for bit.  A select: where the ReLU
    was off the gradient is 0 even if g is not finite."""
    if relu and not v * a + b > 0:
        return like(0, g)
    return g


_affine_one_cpu, _masked_one_cpu = (njit(inline="always", cache=True)(f) for f in (_affine_one, _masked_one))
_affine_one_gpu, _masked_one_gpu = (cuda.jit(device=True)(f) for f in (_affine_one, _masked_one))


# ---- CPU kernels: one channel per task ----------------------------------------------------------------------------
# The sums run along a row of float64 partial sums, one per position (acc[i] += row[i]), summed at the end: lanes
# are independent, so the loop vectorises; one running scalar would wait on each add (2.7 ms against 0.9 ms for
# the statistics of 128 x 16 x 32 x 32 here).
@njit(parallel=True, cache=True)
def _stats_cpu(x, mean, var):
    N, C, L = x.shape
    for c in prange(C):
        K = np.float64(x[0, c, 0])                               # the shift (module docstring)
        s1, s2 = np.zeros(L, np.float64), np.zeros(L, np.float64)
        for n in range(N):
            row = x[n, c]
            for i in range(L):
                d = row[i] - K
                s1[i] += d
                s2[i] += d * d
        d_mean = s1.sum() / (N * L)
        mean[c], var[c] = K + d_mean, max(s2.sum() / (N * L) - d_mean * d_mean, 0.0)


@njit(parallel=True, cache=True)
def _affine_cpu(x, scale, shift, relu, y):
    N, C, L = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        a, b, src, dst = scale[c], shift[c], x[n, c], y[n, c]
        if relu:                                                 # two loops: no test per element
            for i in range(L):
                dst[i] = _affine_one_cpu(src[i], a, b, True)
        else:
            for i in range(L):
                dst[i] = _affine_one_cpu(src[i], a, b, False)


@njit(parallel=True, cache=True)
def _affine_add_relu_cpu(x, scale, shift, r, y, mask):
    """y = relu(x * scale + shift + r), mask = y > 0 (for the ReLU's backward)."""
    N, C, L = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        a, b, src, res, dst, m = scale[c], shift[c], x[n, c], r[n, c], y[n, c], mask[n, c]
        for i in range(L):
            v = src[i] * a + b + res[i]
            m[i] = v > 0
            dst[i] = v * like(m[i], v)


@njit(parallel=True, cache=True)
def _grad_sums_cpu(x, gy, mean, inv_std, scale, shift, relu, gbias, gweight):
    N, C, L = x.shape
    for c in prange(C):
        sb, sw = np.zeros(L, np.float64), np.zeros(L, np.float64)
        mu, k, a, b = mean[c], inv_std[c], scale[c], shift[c]
        for n in range(N):
            g, row = gy[n, c], x[n, c]
            for i in range(L):
                gi = _masked_one_cpu(g[i], row[i], a, b, relu)
                sb[i] += gi
                sw[i] += gi * ((row[i] - mu) * k)
        gbias[c], gweight[c] = sb.sum(), sw.sum()


@njit(parallel=True, cache=True)
def _masked_grad_sums_cpu(x, gy, mask, mean, inv_std, g, gbias, gweight):
    """``_grad_sums_cpu`` for relu(batch_norm(x) + r) with the forward's mask: g = gy where the mask is set, else 0
    (the gradient of batch_norm's output and of r) written as it is summed."""
    N, C, L = x.shape
    for c in prange(C):
        sb, sw = np.zeros(L, np.float64), np.zeros(L, np.float64)
        mu, k = mean[c], inv_std[c]
        for n in range(N):
            src, row, keep, dst = gy[n, c], x[n, c], mask[n, c], g[n, c]
            for i in range(L):
                gi = src[i] if keep[i] else like(0, src[i])
                dst[i] = gi
                sb[i] += gi
                sw[i] += gi * ((row[i] - mu) * k)
        gbias[c], gweight[c] = sb.sum(), sw.sum()


@njit(parallel=True, cache=True)
def _grad_input_cpu(x, gy, mean, inv_std, scale, shift, relu, gbias, gweight, gx):
    N, C, L = x.shape
    m = N * L
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        mu, k, a, b = mean[c], inv_std[c], scale[c], shift[c]
        sb, sw = gbias[c] / m, gweight[c] / m
        g, row, dst = gy[n, c], x[n, c], gx[n, c]
        for i in range(L):
            dst[i] = a * (_masked_one_cpu(g[i], row[i], a, b, relu) - sb - (row[i] - mu) * k * sw)


# ---- CUDA kernels: one thread per element (the sums are CuPy reductions) -------------------------------------------
@cuda.jit(cache=True)
def _affine_gpu(x, scale, shift, relu, y):
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < x.size:
        n, c, j = i // (C * L), i // L % C, i % L
        y[n, c, j] = _affine_one_gpu(x[n, c, j], scale[c], shift[c], relu)


@cuda.jit(cache=True)
def _affine_add_relu_gpu(x, scale, shift, r, y, mask):
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < x.size:
        n, c, j = i // (C * L), i // L % C, i % L
        v = x[n, c, j] * scale[c] + shift[c] + r[n, c, j]
        mask[n, c, j] = v > 0
        y[n, c, j] = v * like(v > 0, v)


@cuda.jit(cache=True)
def _masked_gpu(x, gy, scale, shift, out):
    """out = gy where the ReLU after the affine map passed it, else 0 (for the CuPy sums)."""
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < x.size:
        n, c, j = i // (C * L), i // L % C, i % L
        out[n, c, j] = _masked_one_gpu(gy[n, c, j], x[n, c, j], scale[c], shift[c], True)


@cuda.jit(cache=True)
def _grad_input_gpu(x, gy, mean, inv_std, scale, shift, relu, gbias, gweight, gx):
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < x.size:
        n, c, j = i // (C * L), i // L % C, i % L
        m = gx.dtype.type(N * L)
        xhat = (x[n, c, j] - mean[c]) * inv_std[c]
        g = _masked_one_gpu(gy[n, c, j], x[n, c, j], scale[c], shift[c], relu)
        gx[n, c, j] = scale[c] * (g - gbias[c] / m - xhat * gweight[c] / m)


# ---- dispatchers ------------------------------------------------------------------------------------------------
def _nc_l(a):
    xp = get_array_module(a)
    return xp.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def batch_norm_forward(x, mean, var, weight, bias, eps, batch_stats, relu=False, residual=None):
    """x (N, C, *) -> (y, mean, var, inv_std): y in x's dtype; mean and var are the batch's own (biased) statistics
    when ``batch_stats``, else the given ones (running statistics) and only the affine map runs.  ``relu``: y is
    relu(batch_norm(x)).  ``residual`` (x's shape; with ``relu`` only): y is relu(batch_norm(x) + residual), and
    the result is (y, mean, var, inv_std, mask) with the ReLU's mask for ``relu_backward``."""
    xp, device = get_array_module(x), device_of(x)
    x3 = _nc_l(x)
    if batch_stats:
        if device == "cpu":
            mean, var = np.empty(x.shape[1], np.float64), np.empty(x.shape[1], np.float64)
            cpu_launch(_stats_cpu, x3.size)(x3, mean, var)
            mean, var = mean.astype(x.dtype), var.astype(x.dtype)
        else:
            mean = x3.mean(axis=(0, 2))
            var = ((x3 - mean[None, :, None]) ** 2).mean(axis=(0, 2))
    inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype)
    scale, shift = _scale_shift(mean, inv_std, weight, bias, x.dtype)
    y = xp.empty_like(x3)
    if residual is not None:
        if not relu:
            raise ValueError("batch_norm_forward: a residual is added only before a ReLU (relu=True)")
        mask, r3 = xp.empty(x3.shape, np.bool_), _nc_l(residual)
        if device == "cpu":
            cpu_launch(_affine_add_relu_cpu, x3.size)(x3, scale, shift, r3, y, mask)
        else:
            launch(_affine_add_relu_gpu, y.size)(x3, scale, shift, r3, y, mask)
        return y.reshape(x.shape), mean, var, inv_std, mask.reshape(x.shape)
    if device == "cpu":
        cpu_launch(_affine_cpu, x3.size)(x3, scale, shift, relu, y)
    else:
        launch(_affine_gpu, y.size)(x3, scale, shift, relu, y)
    return y.reshape(x.shape), mean, var, inv_std


def _scale_shift(mean, inv_std, weight, bias, dtype):
    """The affine map y = x * scale + shift per channel, in the data's dtype (the backward's ReLU mask is
    recomputed from the very same numbers)."""
    scale = (weight * inv_std).astype(dtype)
    return scale, (bias - mean * scale).astype(dtype)


def batch_norm_backward(x, gy, mean, inv_std, weight, batch_stats, bias=None, relu=False, mask=None):
    """-> (gx, gweight, gbias) of ``batch_norm_forward``'s y for the upstream gradient gy.  ``relu`` (the forward's,
    with its ``bias``): gy is masked where the forward's ReLU was 0.  ``mask`` (the forward's with a residual):
    gy is masked by it, and the result is (gx, gweight, gbias, g) with g the masked gy, the residual's gradient."""
    xp, device = get_array_module(x), device_of(x)
    x3, gy3 = _nc_l(x), _nc_l(gy)
    scale, shift = _scale_shift(mean, inv_std, weight, xp.zeros_like(weight) if bias is None else bias, x.dtype)
    if mask is None:
        g, gbias, gweight = _grad_sums(device, x3, gy3, mean, inv_std, scale, shift, relu)
    else:
        g, gbias, gweight = _masked_grad_sums(device, x3, gy3, _nc_l(mask), mean, inv_std)
        relu = False                               # g is masked already
    gx = xp.empty_like(x3)
    sums = (gbias, gweight) if batch_stats else (xp.zeros_like(gbias), xp.zeros_like(gweight))
    if device == "cpu":                            # eval (constant statistics): gx = scale * (masked) gy
        cpu_launch(_grad_input_cpu, x3.size)(x3, g, mean, inv_std, scale, shift, relu, *sums, gx)
    else:                                          # g is masked already: the kernel's mask would pass it all
        launch(_grad_input_gpu, gx.size)(x3, g, mean, inv_std, scale, shift, False, *sums, gx)
    grads = gx.reshape(x.shape), gweight, gbias
    return grads if mask is None else grads + (g.reshape(x.shape),)


def _grad_sums(device, x3, gy3, mean, inv_std, scale, shift, relu):
    """(g, gbias, gweight): the per-channel sums of g and g * xhat, g = gy through the ReLU (``relu``), on ``device``
    (x's: ``_nc_l``'s contiguous copy of a simulated-device array is a plain one).  On the CPU the kernel masks gy
    as it sums it and g is gy itself (the gx kernel masks it again); on the GPU g is gy masked by a kernel of its
    own, then summed by CuPy."""
    if device == "cpu":
        C = x3.shape[1]
        gbias, gweight = np.empty(C, np.float64), np.empty(C, np.float64)
        cpu_launch(_grad_sums_cpu, x3.size)(x3, gy3, mean, inv_std, scale, shift, relu, gbias, gweight)
        return gy3, gbias.astype(x3.dtype), gweight.astype(x3.dtype)
    if relu:
        masked = get_array_module(x3).empty_like(gy3)
        launch(_masked_gpu, gy3.size)(x3, gy3, scale, shift, masked)
        gy3 = masked
    xhat = (x3 - mean[None, :, None]) * inv_std[None, :, None]
    return gy3, gy3.sum(axis=(0, 2)), (gy3 * xhat).sum(axis=(0, 2))


def _masked_grad_sums(device, x3, gy3, mask3, mean, inv_std):
    """``_grad_sums`` through the forward's stored mask (with a residual): g = gy where the mask is set, else 0,
    which is the residual's gradient too.  On the CPU g is written in the pass that sums it; on the GPU it is
    ReLU's own backward."""
    if device != "cpu":
        return _grad_sums(device, x3, relu_backward(gy3, mask3), mean, inv_std, None, None, False)
    C, g = x3.shape[1], np.empty_like(gy3)
    gbias, gweight = np.empty(C, np.float64), np.empty(C, np.float64)
    cpu_launch(_masked_grad_sums_cpu, x3.size)(x3, gy3, mask3, mean, inv_std, g, gbias, gweight)
    return g, gbias.astype(x3.dtype), gweight.astype(x3.dtype)
