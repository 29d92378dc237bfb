"""Reductions over axes: sum, mean, max, min, var (and argmax, which has no gradient)."""
import builtins

import numpy as np

from minicnn import backend
from minicnn.autograd import Function, Tensor

__all__ = ["sum", "mean", "max", "min", "var", "argmax", "SumFn", "MeanFn", "MaxFn", "VarFn"]


# ---- reductions -----------------------------------------------------------------------------------------
def _axes(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: dim {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % builtins.max(ndim, 1) for a in axes))


def _expand(g, shape, axes, keepdims):
    """Give a reduced gradient back its reduced axes (size 1) so it broadcasts against the input."""
    return g if keepdims else g.reshape([1 if i in axes else n for i, n in enumerate(shape)])


class SumFn(Function):
    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        return xp.broadcast_to(_expand(gy, self.shape, self.axes, self.keepdims), self.shape).copy()


class MeanFn(SumFn):
    def forward(self, x):
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        return SumFn.forward(self, x) / self.count

    def backward(self, gy):
        return SumFn.backward(self, gy / self.count)


class MaxFn(Function):
    """max over axes; the gradient is shared equally by tied maxima (so it is still a valid subgradient)."""
    def __init__(self, axes, keepdims, use_min=False):
        self.axes, self.keepdims, self.use_min = axes, keepdims, use_min

    def forward(self, x):
        y = (x.min if self.use_min else x.max)(axis=self.axes, keepdims=True)
        self.hit = x == y
        self.shape = x.shape
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        g = _expand(gy, self.shape, self.axes, self.keepdims)
        return self.hit * (g / self.hit.sum(axis=self.axes, keepdims=True))


class VarFn(Function):
    """Variance with ``correction`` (1 = unbiased, PyTorch's default)."""
    def __init__(self, axes, keepdims, correction):
        self.axes, self.keepdims, self.correction = axes, keepdims, correction

    def forward(self, x):
        count = int(np.prod([x.shape[a] for a in self.axes]))
        self.centered = x - x.mean(axis=self.axes, keepdims=True)
        self.div = builtins.max(count - self.correction, 0)
        return (self.centered ** 2).sum(axis=self.axes, keepdims=self.keepdims) / self.div

    def backward(self, gy):
        return _expand(gy, self.centered.shape, self.axes, self.keepdims) * 2 * self.centered / self.div


def _reduce(fn_cls, op, x, axis, keepdims, *args):
    return fn_cls(_axes(axis, x.ndim, op), keepdims, *args)(x)


def sum(x, axis=None, keepdims=False):
    return _reduce(SumFn, "sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating-point tensor, got dtype {x.dtype}")
    return _reduce(MeanFn, "mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    return _reduce(MaxFn, "max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    return _reduce(MaxFn, "min", x, axis, keepdims, True)


def var(x, axis=None, keepdims=False, correction=1):
    return _reduce(VarFn, "var", x, axis, keepdims, correction)


def argmax(x, dim=None, keepdim=False):
    y = x.data.argmax(axis=dim)
    return Tensor._make(y if not keepdim or dim is None else
                        backend.get_array_module(y).expand_dims(y, dim), x.device)
