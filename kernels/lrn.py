"""Local response normalization across channels (AlexNet, Krizhevsky et al. 2012, section 3.3).

PyTorch's formula, which minicnn follows (``F.local_response_norm(x, size, alpha, beta, k)``)::

    scale_c = k + alpha / size * sum_{c' in window(c)} x_{c'}^2        y_c = x_c * scale_c ** -beta

``window(c)`` is ``c - size // 2 .. c + (size - 1) // 2``, clipped to the channels that exist.  PyTorch pads the
squared input with ``size // 2`` zero channels before and ``(size - 1) // 2`` after and average-pools it with
``count_include_pad``, so the divisor is always ``size``, also at the borders, exactly as above.

The paper writes ``scale = k + alpha * sum(...)``: its alpha is *not* divided by the window size ``n``.  The
paper's setting ``k=2, n=5, alpha=1e-4, beta=0.75`` is therefore ``local_response_norm(x, 5, alpha=5e-4,
beta=0.75, k=2)`` here (and in PyTorch).

Gradient, with ``s_c = scale_c`` and ``y_c / s_c = x_c * s_c ** (-beta - 1)``::

    dL/dx_j = gy_j * s_j ** -beta  -  (2 * alpha * beta / size) * x_j * sum_{c : j in window(c)} gy_c * y_c / s_c

The channels whose window contains ``j`` are ``j - (size - 1) // 2 .. j + size // 2``: the backward kernel is a
gather, one thread per input-gradient element, so no two threads write the same place.

Kernels see every input as ``(N, C, M)``: the spatial dimensions flattened (contiguous), whatever their number.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.scalar import like

__all__ = ["lrn_forward", "lrn_backward", "lrn_forward_ref", "lrn_backward_ref"]


# ---- NumPy reference (slow, obviously right; for tests) -------------------------------------------------------
def lrn_forward_ref(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """x (N, C, *) -> (y, scale), both of x's shape, computed in float64: a zero-padded channel window sum."""
    x = np.asarray(x, np.float64)
    C = x.shape[1]
    padded = np.zeros((x.shape[0], C + size - 1) + x.shape[2:])
    padded[:, size // 2:size // 2 + C] = x ** 2             # size // 2 zeros before, (size - 1) // 2 after
    total = sum(padded[:, d:d + C] for d in range(size))    # channel c sums padded channels c .. c + size - 1
    scale = k + alpha / size * total
    return x * scale ** -beta, scale


def lrn_backward_ref(x, gy, size, alpha=1e-4, beta=0.75, k=1.0):
    """gx (N, C, *) in float64, written as the scatter: every output channel c sends to each j in its window."""
    x, gy = np.asarray(x, np.float64), np.asarray(gy, np.float64)
    y, scale = lrn_forward_ref(x, size, alpha, beta, k)
    gx = gy * scale ** -beta
    C = x.shape[1]
    for c in range(C):
        for j in range(max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1)):
            gx[:, j] -= 2 * alpha * beta / size * x[:, j] * gy[:, c] * y[:, c] / scale[:, c]
    return gx


# ---- the per-element bodies, compiled once for the CPU and once for CUDA --------------------------------------
def _lrn_one(x, n, c, m, size, alpha, beta, k):
    """(y, scale) of element (n, c, m)."""
    C = x.shape[1]
    acc = like(0, x[n, c, m])                              # in x's dtype: alpha, beta, k come in it too
    for cc in range(max(0, c - size // 2), min(C, c + (size - 1) // 2 + 1)):
        acc += x[n, cc, m] * x[n, cc, m]
    scale = k + alpha / like(size, acc) * acc
    return x[n, c, m] * scale ** -beta, scale


def _lrn_grad_one(x, y, scale, gy, n, j, m, size, alpha, beta):
    """dL/dx of element (n, j, m): its own term plus the channels c whose window holds j."""
    C = x.shape[1]
    acc = like(0, x[n, j, m])
    for c in range(max(0, j - (size - 1) // 2), min(C, j + size // 2 + 1)):
        acc += gy[n, c, m] * y[n, c, m] / scale[n, c, m]
    return gy[n, j, m] * scale[n, j, m] ** -beta - like(2, acc) * alpha * beta / like(size, acc) * x[n, j, m] * acc


_lrn_one_cpu = njit(inline="always", cache=True)(_lrn_one)
_lrn_one_gpu = cuda.jit(device=True)(_lrn_one)
_lrn_grad_one_cpu = njit(inline="always", cache=True)(_lrn_grad_one)
_lrn_grad_one_gpu = cuda.jit(device=True)(_lrn_grad_one)


# ---- CPU kernels: one (n, c) row of M contiguous elements per task --------------------------------------------
@njit(parallel=True, cache=True)
def _lrn_fwd_cpu(x, size, alpha, beta, k, y, scale):
    N, C, M = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for m in range(M):
            y[n, c, m], scale[n, c, m] = _lrn_one_cpu(x, n, c, m, size, alpha, beta, k)


@njit(parallel=True, cache=True)
def _lrn_bwd_cpu(x, y, scale, gy, size, alpha, beta, gx):
    N, C, M = x.shape
    for nj in prange(N * C):
        n, j = nj // C, nj % C
        for m in range(M):
            gx[n, j, m] = _lrn_grad_one_cpu(x, y, scale, gy, n, j, m, size, alpha, beta)


# ---- CUDA kernels: one thread per output (forward) / per input-gradient element (backward) --------------------
@cuda.jit(cache=True)
def _lrn_fwd_gpu(x, size, alpha, beta, k, y, scale):
    i = cuda.grid(1)
    N, C, M = x.shape
    if i < N * C * M:                                      # the grid is rounded up: always guard
        n, c, m = i // (C * M), i // M % C, i % M
        y[n, c, m], scale[n, c, m] = _lrn_one_gpu(x, n, c, m, size, alpha, beta, k)


@cuda.jit(cache=True)
def _lrn_bwd_gpu(x, y, scale, gy, size, alpha, beta, gx):
    i = cuda.grid(1)
    N, C, M = x.shape
    if i < N * C * M:
        n, j, m = i // (C * M), i // M % C, i % M
        gx[n, j, m] = _lrn_grad_one_gpu(x, y, scale, gy, n, j, m, size, alpha, beta)


# ---- dispatchers ------------------------------------------------------------------------------------------------
def _rows(xp, a):
    """(N, C, *) -> a contiguous (N, C, M) view (or copy)."""
    return xp.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def lrn_forward(x, size, alpha=1e-4, beta=0.75, k=1.0, device=None):
    """x (N, C, *) -> (y, scale), both of x's shape and dtype; ``scale`` is kept for the backward pass."""
    xp, device = get_array_module(x), device or device_of(x)
    x3 = _rows(xp, x)
    y, scale = xp.empty(x3.shape, x.dtype), xp.empty(x3.shape, x.dtype)
    t = x.dtype.type                                       # the constants in x's dtype: no float64 in the kernel
    args = (x3, int(size), t(alpha), t(beta), t(k), y, scale)
    if device == "cpu":
        _lrn_fwd_cpu(*args)
    else:
        launch(_lrn_fwd_gpu, y.size)(*args)
    return y.reshape(x.shape), scale.reshape(x.shape)


def lrn_backward(x, y, scale, gy, size, alpha=1e-4, beta=0.75, device=None):
    """gx (N, C, *) from the input x, the forward's y and scale, and the upstream gradient gy (all x's shape)."""
    xp, device = get_array_module(x), device or device_of(x)
    x3, y3, s3, gy3 = (_rows(xp, a) for a in (x, y, scale, gy))
    gx = xp.empty(x3.shape, x.dtype)
    t = x.dtype.type
    args = (x3, y3, s3, gy3, int(size), t(alpha), t(beta), gx)
    if device == "cpu":
        _lrn_bwd_cpu(*args)
    else:
        launch(_lrn_bwd_gpu, gx.size)(*args)
    return gx.reshape(x.shape)

