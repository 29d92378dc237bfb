"""The tensor algebra: elementwise arithmetic with NumPy broadcasting, reductions, shape ops, indexing.

None of these has a hot loop of its own (NumPy or CuPy does the work), so each Function is a few lines:
forward on arrays, backward on arrays.  Broadcasting is undone in backward by summing the gradient over
the broadcast axes (``unbroadcast``).  These functions are attached to ``Tensor`` as methods and operators.
"""
import builtins

import numpy as np

from minicnn import backend
from minicnn.autograd import Function, Tensor, constant


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
        _broadcast_shape("matmul", Tensor._make(np.empty(a.shape[:-2] + (0, 0)), "cpu"),
                         Tensor._make(np.empty(b.shape[:-2] + (0, 0)), "cpu"))
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


# ---- shape ----------------------------------------------------------------------------------------------
class ReshapeFn(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.src = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.src)


class TransposeFn(Function):
    def __init__(self, perm):
        self.perm = perm

    def forward(self, x):
        return x.transpose(self.perm)

    def backward(self, gy):
        return gy.transpose(np.argsort(self.perm))


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    try:
        np.empty((x.numel(),), np.int8).reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape tensor of shape {x.shape} ({x.numel()} elements) "
                         f"into {shape}") from None
    return ReshapeFn(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    s, e = start_dim % builtins.max(x.ndim, 1), end_dim % builtins.max(x.ndim, 1)
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.ndim else reshape(x, (1,))


def permute(x, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    if sorted(d % x.ndim for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of shape {x.shape}")
    return TransposeFn(tuple(d % x.ndim for d in dims))(x)


def transpose(x, dim0, dim1):
    perm = list(range(x.ndim))
    perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
    return TransposeFn(tuple(perm))(x)


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dim = dim % x.ndim
    return reshape(x, x.shape[:dim] + x.shape[dim + 1:]) if x.shape[dim] == 1 else x


def unsqueeze(x, dim):
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class ExpandFn(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.src = x.shape
        return backend.get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return unbroadcast(gy, self.src)


def expand(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = tuple(x.shape[i - len(shape) + x.ndim] if n == -1 else n for i, n in enumerate(shape))
    return ExpandFn(shape)(x)


# ---- indexing, joining, padding -------------------------------------------------------------------------
class GetItemFn(Function):
    """x[index] for ints, slices, None, Ellipsis and integer/boolean arrays; backward scatters with add.at,
    so repeated integer indices accumulate."""
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, self.dtype)
        xp.add.at(gx, self.index, gy)             # CuPy >= 12 has ufunc.at too
        return gx


def _index_to_device(index, device):
    if isinstance(index, tuple):
        return tuple(_index_to_device(i, device) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, (list, np.ndarray)) or backend.device_of(index) == "cuda":
        arr = backend.to_device(np.asarray(index) if isinstance(index, list) else index, device)
        return backend.to_cpu(arr) if device == "cuda" and backend.SIMULATED else arr
    return index


def getitem(x, index):
    index = _index_to_device(index, x.device)
    try:
        np.empty(x.shape, np.int8)[index if not isinstance(index, tuple) else index]
    except IndexError as e:
        raise IndexError(f"getitem: index out of range for tensor of shape {x.shape}: {e}") from None
    return GetItemFn(index)(x)


class ConcatFn(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.splits = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return backend.get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        return tuple(backend.get_array_module(gy).split(gy, self.splits, axis=self.axis))


def concat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    ref = tensors[0]
    axis = dim % ref.ndim
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or t.shape[:axis] + t.shape[axis + 1:] != ref.shape[:axis] + ref.shape[axis + 1:]:
            raise ValueError(f"concat: tensor {i} has shape {t.shape}, which does not match {ref.shape} "
                             f"outside dim {dim}")
    return ConcatFn(axis)(*tensors)


def stack(tensors, dim=0):
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape}")
    return concat([unsqueeze(t, dim) for t in tensors], dim)


def split(x, split_size_or_sections, dim=0):
    """Like torch.split: an int is the size of each chunk, a list the sizes of all chunks."""
    n = x.shape[dim]
    sizes = ([split_size_or_sections] * (n // split_size_or_sections) +
             ([n % split_size_or_sections] if n % split_size_or_sections else [])
             if isinstance(split_size_or_sections, int) else list(split_size_or_sections))
    if builtins.sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim} of {x.shape}")
    out, start = [], 0
    for s in sizes:
        index = (slice(None),) * (dim % x.ndim) + (slice(start, start + s),)
        out.append(getitem(x, index))
        start += s
    return tuple(out)


class PadFn(Function):
    """Constant padding; ``pad`` as NumPy's pad_width: one (before, after) pair per dimension."""
    def __init__(self, pad_width, value):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        return backend.get_array_module(x).pad(x, self.pad_width, constant_values=self.value)

    def backward(self, gy):
        return gy[tuple(slice(b, gy.shape[i] - a) for i, (b, a) in enumerate(self.pad_width))]


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad: ``pad`` lists (left, right) pairs starting from the *last* dimension."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim or builtins.min(pad, default=0) < 0:
        raise ValueError(f"pad: pad {tuple(pad)} must be non-negative (left, right) pairs for at most "
                         f"{x.ndim} dims of shape {x.shape}")
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return PadFn(tuple(pairs), value)(x)


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


def _compare(op):
    def compare(a, b):                           # comparisons give boolean tensors and no gradient
        b = b.data if isinstance(b, Tensor) else b
        return Tensor._make(op(a.data, b), a.device)
    return compare


def argmax(x, dim=None, keepdim=False):
    y = x.data.argmax(axis=dim)
    return Tensor._make(y if not keepdim or dim is None else
                        backend.get_array_module(y).expand_dims(y, dim), x.device)


def _attach():
    """Give Tensor its operators and methods (torch names: ``dim``/``keepdim`` as well as ``axis``)."""
    def reducer(f):
        def method(self, dim=None, keepdim=False, *args, axis=None, keepdims=None):
            return f(self, dim if axis is None else axis, keepdim if keepdims is None else keepdims, *args)
        return method

    T = Tensor
    T.__add__, T.__radd__ = add, lambda s, o: add(o, s)
    T.__sub__, T.__rsub__ = sub, lambda s, o: sub(o, s)
    T.__mul__, T.__rmul__ = mul, lambda s, o: mul(o, s)
    T.__truediv__, T.__rtruediv__ = div, lambda s, o: div(o, s)
    T.__pow__, T.__rpow__ = pow, lambda s, o: pow(o, s)
    T.__matmul__, T.__rmatmul__ = matmul, lambda s, o: matmul(o, s)
    T.__neg__, T.__abs__, T.__getitem__ = neg, abs, getitem
    T.__lt__, T.__le__ = _compare(lambda a, b: a < b), _compare(lambda a, b: a <= b)
    T.__gt__, T.__ge__ = _compare(lambda a, b: a > b), _compare(lambda a, b: a >= b)
    T.eq, T.ne = _compare(lambda a, b: a == b), _compare(lambda a, b: a != b)
    T.exp, T.log, T.sqrt, T.abs, T.clip, T.clamp = exp, log, sqrt, abs, clip, clip
    T.sum, T.mean, T.max, T.min = reducer(sum), reducer(mean), reducer(max), reducer(min)
    T.var = reducer(var)
    T.argmax = argmax
    T.reshape, T.view, T.flatten, T.permute, T.transpose = reshape, reshape, flatten, permute, transpose
    T.squeeze, T.unsqueeze, T.expand = squeeze, unsqueeze, expand
    T.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))


_attach()
