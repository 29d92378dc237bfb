"""Fused optimizer updates: SGD (momentum, dampening, Nesterov, weight decay) and Adam, one pass over a parameter.

Written with array operations, one SGD step with momentum and weight decay is 5-7 elementwise passes (and as many
CUDA kernel launches and temporaries on the GPU) per parameter; Adam about 10.  Here each element is read and
written once: NumPy reference (the formulas, for tests), a Numba CPU kernel and a CUDA kernel over the flattened
parameter, one thread per element.  The hyper-parameters arrive in the parameter's dtype (bias corrections are
computed once on the host in float64), so a float32 parameter is updated in float32 arithmetic throughout.

PyTorch's formulas (``torch.optim.SGD`` / ``Adam``)::

    SGD:  g = grad + wd * p;  buf = g (first step) or momentum * buf + (1 - dampening) * g;
          g = g + momentum * buf (Nesterov) or buf;  p -= lr * g          (momentum 0: p -= lr * g)
    Adam: g = grad + wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""
import math

import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch
from minicnn.kernels.im2col import run_elementwise
from minicnn.kernels.scalar import like

__all__ = ["sgd_step", "adam_step", "sgd_step_ref", "adam_step_ref"]


# ---- NumPy references (the formulas; tests only) --------------------------------------------------------------
def sgd_step_ref(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """Returns the new (p, buf) in float64."""
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    g = g + weight_decay * p
    if momentum:
        buf = g.copy() if first else momentum * np.asarray(buf, np.float64) + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def adam_step_ref(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Returns the new (p, m, v) in float64; ``step`` counts from 1."""
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    g = g + weight_decay * p
    m = beta1 * np.asarray(m, np.float64) + (1 - beta1) * g
    v = beta2 * np.asarray(v, np.float64) + (1 - beta2) * g * g
    return p - lr / (1 - beta1 ** step) * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps), m, v


# ---- the per-element bodies, compiled for the CPU (inlined) and for CUDA -----------------------------------------
def _sgd_one(p, g, buf, i, lr, momentum, keep, wd, nesterov, first):
    """Element i; ``keep`` = 1 - dampening.  buf is only touched when momentum != 0."""
    gi = g[i] + wd * p[i] if wd != 0 else g[i]            # (0 * inf would be nan)
    if momentum != 0:
        b = gi if first else momentum * buf[i] + keep * gi
        buf[i] = b
        gi = gi + momentum * b if nesterov else b
    p[i] -= lr * gi


def _adam_one(p, g, m, v, i, step_size, b1, b2, eps, wd, root_c2):
    """Element i; step_size = lr / (1 - b1^t), root_c2 = sqrt(1 - b2^t)."""
    gi = g[i] + wd * p[i] if wd != 0 else g[i]
    one = like(1, b1)                                      # (1 - b1 with an int 1 would be float64)
    mi = b1 * m[i] + (one - b1) * gi
    vi = b2 * v[i] + (one - b2) * gi * gi
    m[i], v[i] = mi, vi
    p[i] -= step_size * mi / (math.sqrt(vi) / root_c2 + eps)


_sgd_one_cpu, _sgd_one_gpu = njit(inline="always", cache=True)(_sgd_one), cuda.jit(device=True)(_sgd_one)
_adam_one_cpu, _adam_one_gpu = njit(inline="always", cache=True)(_adam_one), cuda.jit(device=True)(_adam_one)


@njit(parallel=True, cache=True)
def _sgd_cpu(p, g, buf, lr, momentum, keep, wd, nesterov, first):
    for i in prange(p.shape[0]):
        _sgd_one_cpu(p, g, buf, i, lr, momentum, keep, wd, nesterov, first)


@njit(parallel=True, cache=True)
def _adam_cpu(p, g, m, v, step_size, b1, b2, eps, wd, root_c2):
    for i in prange(p.shape[0]):
        _adam_one_cpu(p, g, m, v, i, step_size, b1, b2, eps, wd, root_c2)


@cuda.jit(cache=True)
def _sgd_gpu(p, g, buf, lr, momentum, keep, wd, nesterov, first):
    i = cuda.grid(1)
    if i < p.shape[0]:
        _sgd_one_gpu(p, g, buf, i, lr, momentum, keep, wd, nesterov, first)


@cuda.jit(cache=True)
def _adam_gpu(p, g, m, v, step_size, b1, b2, eps, wd, root_c2):
    i = cuda.grid(1)
    if i < p.shape[0]:
        _adam_one_gpu(p, g, m, v, i, step_size, b1, b2, eps, wd, root_c2)


# ---- dispatchers: in place, on arrays of one shape (im2col.run_elementwise) -------------------------------------
def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first, device=None):
    """p -= lr * (SGD direction), in place; ``buf`` (p's shape) is the momentum buffer, written in place when
    ``momentum`` != 0 (``first``: set it to the gradient) and unused otherwise (pass any array, e.g. g)."""
    t = p.dtype.type
    g = g if g.dtype == p.dtype else g.astype(p.dtype)
    run_elementwise(_sgd_cpu, _sgd_gpu, device or device_of(p), [p, g, buf],
         (t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov), bool(first)))


def adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, device=None):
    """One Adam step in place on p, m (first moment) and v (second moment); ``step`` counts from 1."""
    t = p.dtype.type
    g = g if g.dtype == p.dtype else g.astype(p.dtype)
    step_size, root_c2 = lr / (1 - beta1 ** step), math.sqrt(1 - beta2 ** step)
    run_elementwise(_adam_cpu, _adam_gpu, device or device_of(p), [p, g, m, v],
         (t(step_size), t(beta1), t(beta2), t(eps), t(weight_decay), t(root_c2)))
