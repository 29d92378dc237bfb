"""Weight initialisation, in place, drawing from ``minicnn.random`` (so ``mc.manual_seed`` fixes it).

Glorot & Bengio (2010): std = gain * sqrt(2 / (fan_in + fan_out)).  He et al. (2015, §2.2): std = gain /
sqrt(fan), gain = sqrt(2 / (1 + a^2)) for leaky ReLU with slope a.  Uniform variants use bound = sqrt(3) * std.
"""
import math

import numpy as np

from minicnn import backend
from minicnn.random import generator

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_"]


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv2d", "sigmoid", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = in_features * receptive field, fan_out = out_features * receptive field (weights (out, in, ...))."""
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in/out need a tensor with at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill(tensor, values):
    tensor.data[...] = backend.to_device(values.astype(tensor.dtype, copy=False), tensor.device)
    return tensor


def _draw_dtype(tensor):
    """Draw float32 tensors in float32 directly: half the work of drawing float64 and casting (big VGGs)."""
    return np.float32 if tensor.dtype == np.float32 else np.float64


def uniform_(tensor, a=0.0, b=1.0):
    u = generator().random(tensor.shape, dtype=_draw_dtype(tensor))
    u *= b - a
    u += a
    return _fill(tensor, u)


def normal_(tensor, mean=0.0, std=1.0):
    z = generator().standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    z *= std
    z += mean
    return _fill(tensor, z)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Normal values redrawn until they fall inside [a, b]."""
    v = generator().normal(mean, std, tensor.shape)
    bad = (v < a) | (v > b)
    while bad.any():
        v[bad] = generator().normal(mean, std, int(bad.sum()))
        bad = (v < a) | (v > b)
    return _fill(tensor, v)


def constant_(tensor, val):
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))
