"""Elementwise arithmetic with NumPy broadcasting, matmul, casts and device moves.

Broadcasting is undone in backward by summing the gradient over the broadcast axes (``unbroadcast``).
"""
import numpy as np

from minicnn import backend
from minicnn.autograd import Function, Tensor, constant

__all__ = ["unbroadcast", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "matmul", "neg", "exp",
           "log", "sqrt", "abs", "clip", "cast", "compare", "AddFn", "SubFn", "MulFn", "DivFn", "PowFn",
           "MaximumFn", "MinimumFn", "WhereFn", "MatMulFn", "NegFn", "ExpFn", "LogFn", "SqrtFn", "AbsFn", "ClipFn",
           "CastFn", "ToDeviceFn"]


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the gradient of broadcasting an array of ``shape`` to ``g.shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _broadcast_shape(op, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def _binary(fn_cls, op, a, b):
    like = a if isinstance(a, Tensor) else b
    a, b = constant(a, like.device, like), constant(b, like.device, like)
    _broadcast_shape(op, a, b)
    return fn_cls()(a, b)


# ---- elementwise, two inputs ----------------------------------------------------------------------------
class AddFn(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class SubFn(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class MulFn(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return unbroadcast(gy * self.b, self.a.shape), unbroadcast(gy * self.a, self.b.shape)


class DivFn(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = gy / self.b
        return unbroadcast(ga, self.a.shape), unbroadcast(-ga * self.a / self.b, self.b.shape)


class PowFn(Function):
    """a ** b; the gradient for b uses log(a) and is taken only where a > 0."""
    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        ga = gy * self.b * self.a ** (self.b - 1)
        gb = gy * self.y * xp.log(xp.where(self.a > 0, self.a, 1))
        return unbroadcast(ga, self.a.shape), unbroadcast(gb, self.b.shape)


class MaximumFn(Function):
    """Elementwise max; where a == b the gradient goes to a (as NumPy's choice of value, a tie sends it left)."""
    def forward(self, a, b):
        self.shapes, self.left = (a.shape, b.shape), a >= b
        return backend.get_array_module(a).maximum(a, b)

    def backward(self, gy):
        return unbroadcast(gy * self.left, self.shapes[0]), unbroadcast(gy * ~self.left, self.shapes[1])


class MinimumFn(MaximumFn):
    def forward(self, a, b):
        self.shapes, self.left = (a.shape, b.shape), a <= b
        return backend.get_array_module(a).minimum(a, b)


class WhereFn(Function):
    """where(cond, a, b); cond is a boolean array, not differentiated."""
    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return backend.get_array_module(a).where(self.cond, a, b)

    def backward(self, gy):
        return unbroadcast(gy * self.cond, self.shapes[0]), unbroadcast(gy * ~self.cond, self.shapes[1])


class MatMulFn(Function):
    """a @ b with NumPy's rules: 1-d operands are promoted and the stack dimensions broadcast."""
    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        a, b, xp = self.a, self.b, backend.get_array_module(gy)
        a2 = a[None, :] if a.ndim == 1 else a                   # promote 1-d operands as NumPy does:
        b2 = b[:, None] if b.ndim == 1 else b                   # (k,) @ B -> (1, k) @ B,  A @ (k,) -> A @ (k, 1)
        g2 = gy.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        ga = g2 @ xp.swapaxes(b2, -1, -2)
        gb = xp.swapaxes(a2, -1, -2) @ g2
        return unbroadcast(ga, a2.shape).reshape(a.shape), unbroadcast(gb, b2.shape).reshape(b.shape)


def matmul(a, b):
    a, b = (x if isinstance(x, Tensor) else constant(x, (a if isinstance(a, Tensor) else b).device) for x in (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}")
    k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape} has {k_a} columns, b {b.shape} has {k_b} rows")
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: the batch dimensions of {a.shape} and {b.shape} cannot be broadcast "
                             f"together") from None
    return MatMulFn()(a, b)


# ---- elementwise, one input -----------------------------------------------------------------------------
class NegFn(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class ExpFn(Function):
    def forward(self, x):
        self.y = backend.get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class LogFn(Function):
    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class SqrtFn(Function):
    def forward(self, x):
        self.y = backend.get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class AbsFn(Function):
    """|x|; the subgradient at 0 is 0, as in NumPy's sign."""
    def forward(self, x):
        self.sign = backend.get_array_module(x).sign(x)
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * self.sign


class ClipFn(Function):
    """clip(x, lo, hi); the gradient passes where lo <= x <= hi."""
    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        lo = -np.inf if self.lo is None else self.lo
        hi = np.inf if self.hi is None else self.hi
        self.inside = (x >= lo) & (x <= hi)
        return backend.get_array_module(x).clip(x, lo, hi)

    def backward(self, gy):
        return gy * self.inside


class CastFn(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.src)


class ToDeviceFn(Function):
    """Move to another device; the gradient moves back."""
    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return backend.to_device(gy, self.src)

    def __call__(self, x):                      # the output lives on the target device, unlike other ops
        out = Function.__call__(self, x)
        out.device, out.data = self.device, backend.to_device(out.data, self.device)
        return out


def cast(x, dtype):
    if dtype.kind != "f":
        return Tensor._make(x.data.astype(dtype), x.device)
    return CastFn(dtype)(x)


def where(cond, a, b):
    like = a if isinstance(a, Tensor) else b
    a, b = constant(a, like.device, like), constant(b, like.device, like)
    cond = cond.data if isinstance(cond, Tensor) else backend.to_device(np.asarray(cond), like.device)
    return WhereFn(cond.astype(bool))(a, b)


def add(a, b):
    return _binary(AddFn, "add", a, b)


def sub(a, b):
    return _binary(SubFn, "sub", a, b)


def mul(a, b):
    return _binary(MulFn, "mul", a, b)


def div(a, b):
    return _binary(DivFn, "div", a, b)


def pow(a, b):
    return _binary(PowFn, "pow", a, b)


def maximum(a, b):
    return _binary(MaximumFn, "maximum", a, b)


def minimum(a, b):
    return _binary(MinimumFn, "minimum", a, b)


def neg(x):
    return NegFn()(x)


def exp(x):
    return ExpFn()(x)


def log(x):
    return LogFn()(x)


def sqrt(x):
    return SqrtFn()(x)


def abs(x):
    return AbsFn()(x)


def clip(x, min=None, max=None):
    return ClipFn(min, max)(x)


def compare(op):
    def compare(a, b):                           # comparisons give boolean tensors and no gradient
        b = b.data if isinstance(b, Tensor) else np.asarray(b) if isinstance(b, (list, tuple)) else b
        if hasattr(b, "shape") and not isinstance(b, np.generic) and backend.device_of(b) != a.device:
            b = backend.to_device(b, a.device)   # CuPy's ufuncs refuse NumPy operands
        return Tensor._make(op(a.data, b), a.device)
    return compare
