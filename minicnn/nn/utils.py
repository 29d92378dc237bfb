"""``nn.utils``: gradient clipping and flattening parameters into one vector, as ``torch.nn.utils``."""
import math

import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor, no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]


def _params(parameters):
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _total_norm(grads, norm_type):
    """The ``norm_type``-norm of all gradients together (float64 on the host, as one number)."""
    if not grads:
        return 0.0
    if norm_type == math.inf:
        return max(float(backend.get_array_module(g).abs(g).max()) for g in grads)
    return float(sum(float((backend.get_array_module(g).abs(g.astype(np.float64)) ** norm_type).sum())
                     for g in grads) ** (1.0 / norm_type))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients by ``max_norm / (total_norm + 1e-6)`` where that is below 1, in place; returns the
    total norm of the gradients (before clipping) as a Tensor."""
    params = [p for p in _params(parameters) if p.grad is not None]
    norm_type = float(norm_type)
    total = _total_norm([p.grad.data for p in params], norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
                           f"({total}), so it cannot be clipped; pass error_if_nonfinite=False to scale anyway")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    for p in params:
        p.grad.data *= p.grad.data.dtype.type(coef)
    return Tensor._make(np.asarray(total, np.float32), params[0].device if params else "cpu")


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clip every gradient elementwise to ``[-clip_value, clip_value]``, in place."""
    c = float(clip_value)
    for p in _params(parameters):
        if p.grad is not None:
            backend.get_array_module(p.grad.data).clip(p.grad.data, -c, c, out=p.grad.data)


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated, in order, into one 1-d Tensor (differentiable)."""
    from minicnn.ops import concat
    params = _params(parameters)
    return concat([p.reshape(-1) for p in params], 0)


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d ``vec`` into the parameters, in order (no gradient)."""
    params = _params(parameters)
    n = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != n:
        raise ValueError(f"vector_to_parameters: expected a 1-d vector of {n} values, got shape {vec.shape}")
    with no_grad():
        start = 0
        for p in params:
            p.data[...] = vec.data[start:start + p.numel()].reshape(p.shape).astype(p.dtype)
            start += p.numel()
