"""ReLU forward and backward in one pass each: NumPy reference, Numba CPU kernels, Numba CUDA kernels.

NumPy's ``mask = x > 0; y = x * mask`` makes two passes over the data on one thread; ResNet-20 does 19 ReLUs of
up to 8 MB a step, where memory traffic is the whole cost.  The kernels read x once and write y and the mask
together, on every CPU thread: 128x16x32x32 float32 forward 2.5-3.0 -> 1.0-1.5 ms, backward 1.3-1.8 ->
0.6-1.3 ms (AMD EPYC Zen 3, 2 threads; ranges over two runs of a shared machine).

Semantics are those of the reference, and of PyTorch: ``y = x * (x > 0)``, so a NaN stays NaN (``NaN * 0``) and
the gradient at exactly 0 is 0.  The kernels take float32 and float64 data; other dtypes (float16, integers) go
through the reference.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, empty, get_array_module, launch
from minicnn.kernels.im2col import cpu_launch
from minicnn.kernels.scalar import like

__all__ = ["relu_forward", "relu_backward", "relu_forward_ref", "relu_backward_ref"]

BLOCK = 1 << 14
"""Elements per CPU task: a contiguous run, so each task streams through memory and vectorises."""


def relu_forward_ref(x):
    """(y, mask) with mask = x > 0, y = x * mask: the reference."""
    mask = x > 0
    return x * mask, mask


def relu_backward_ref(gy, mask):
    return gy * mask


@njit(parallel=True, cache=True)
def _forward_cpu(x, y, mask):
    n = x.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            m = x[i] > 0
            mask[i] = m
            y[i] = x[i] * like(m, x[i])                      # not a select: NaN * 0 stays NaN


@njit(parallel=True, cache=True)
def _backward_cpu(gy, mask, gx):
    n = gy.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            gx[i] = gy[i] * like(mask[i], gy[i])


@cuda.jit(cache=True)
def _forward_gpu(x, y, mask):
    i = cuda.grid(1)
    if i < x.shape[0]:
        m = x[i] > 0
        mask[i] = m
        y[i] = x[i] * like(m, x[i])


@cuda.jit(cache=True)
def _backward_gpu(gy, mask, gx):
    i = cuda.grid(1)
    if i < gy.shape[0]:
        gx[i] = gy[i] * like(mask[i], gy[i])


def _runs_kernel(a):
    return a.dtype in (np.float32, np.float64) and a.size > 0


def relu_forward(x):
    """x (any shape) -> (y, mask): y of x's dtype and shape, mask bool, both new C-contiguous arrays."""
    if not _runs_kernel(x):
        return relu_forward_ref(x)
    y, mask = empty(x.shape, x), empty(x.shape, x, np.bool_)
    flat = _flat(x), y.reshape(-1), mask.reshape(-1)
    if device_of(x) == "cpu":
        cpu_launch(_forward_cpu, x.size)(*flat)
    else:
        launch(_forward_gpu, x.size)(*flat)
    return y, mask


def relu_backward(gy, mask):
    """gy, mask (from ``relu_forward``) -> gx = gy * mask, a new array of gy's dtype."""
    if not _runs_kernel(gy):
        return relu_backward_ref(gy, mask)
    gx = empty(gy.shape, gy)
    flat = _flat(gy), _flat(mask), gx.reshape(-1)
    if device_of(gy) == "cpu":
        cpu_launch(_backward_cpu, gy.size)(*flat)
    else:
        launch(_backward_gpu, gy.size)(*flat)
    return gx


def _flat(a):
    """a as one contiguous row (a view where it can be, else a copy)."""
    return get_array_module(a).ascontiguousarray(a).reshape(-1)
