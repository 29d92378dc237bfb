"""Gather/scatter, masking, sorting, norms and the other tensor functions a PyTorch training script calls.

Differentiable ones have a Function (gather, scatter, scatter_add, norm) or are composed of existing ops
(masked_fill = where, repeat = reshape + expand, topk/sort values = gather).  Index outputs (argmin, sort and
topk indices, nonzero) are int64 and carry no gradient.
"""
import builtins
from collections import namedtuple

import numpy as np

from minicnn import backend
from minicnn.autograd import Function, Tensor, constant
from minicnn.ops.elementwise import abs, cast, clip, maximum, minimum, pow, where
from minicnn.ops.reduce import max as _max, min as _min, sum as _sum
from minicnn.ops.shape import expand, reshape, split

__all__ = ["gather", "scatter", "scatter_add", "masked_fill", "topk", "sort", "argsort", "argmin", "norm",
           "repeat", "chunk", "nonzero", "allclose", "isclose", "equal", "torch_max", "torch_min", "eq", "ne", "lt",
           "le", "gt", "ge", "clamp", "torch_where", "GatherFn", "ScatterFn", "NormFn"]

_ValuesIndices = {name: namedtuple(name, ["values", "indices"]) for name in ("topk", "sort", "max", "min")}


def _dim(op, x, dim):
    n = builtins.max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {x.ndim} dimensions")
    return dim % n


def _index_array(op, x, dim, index):
    """``index`` as an integer array on ``x``'s device, checked: same number of dims, in range, and no larger
    than ``x`` outside ``dim`` (PyTorch's rule for gather/scatter)."""
    idx = index.data if isinstance(index, Tensor) else backend.to_device(np.asarray(index), x.device)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"{op}: index has {idx.ndim} dims but the tensor has {x.ndim} (shape {x.shape})")
    for d in range(x.ndim):
        if d != dim and idx.shape[d] > x.shape[d]:
            raise ValueError(f"{op}: index shape {tuple(idx.shape)} is larger than the tensor {x.shape} "
                             f"in dim {d}")
    if idx.size and (int(idx.min()) < -x.shape[dim] or int(idx.max()) >= x.shape[dim]):
        raise IndexError(f"{op}: index out of range for dim {dim} of size {x.shape[dim]}")
    return idx % builtins.max(x.shape[dim], 1)


def _grid(idx, dim):
    """The full advanced index (open mesh over every dim, ``idx`` along ``dim``) that addresses what
    ``take_along_axis(x, idx, dim)`` reads."""
    xp = backend.get_array_module(idx)
    return tuple(idx if d == dim else
                 xp.arange(n).reshape([-1 if e == d else 1 for e in range(idx.ndim)]) for d, n in enumerate(idx.shape))


class GatherFn(Function):
    """y[i][j][k] = x[i][index[i][j][k]][k] (dim 1); backward adds each gradient back to the element it read
    (repeated indices accumulate)."""
    def __init__(self, dim, index):
        self.dim, self.index = dim, index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[_grid(self.index, self.dim)]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, gy.dtype)
        xp.add.at(gx, _grid(self.index, self.dim), gy)
        return gx


def gather(input, dim, index):
    dim = _dim("gather", input, dim)
    return GatherFn(dim, _index_array("gather", input, dim, index))(input)


class ScatterFn(Function):
    """out = input with src written (or, ``add``, added) at ``index`` along ``dim``.  Written places take no
    gradient from input; src[j] gets the gradient of the place it went to."""
    def __init__(self, dim, index, add):
        self.dim, self.index, self.add = dim, index, add

    def forward(self, x, src):
        xp = backend.get_array_module(x)
        grid, self.src_shape = _grid(self.index, self.dim), src.shape
        src = xp.broadcast_to(src, self.index.shape) if src.ndim == 0 else src[self._part()]
        out = x.copy()
        if self.add:
            xp.add.at(out, grid, src.astype(x.dtype))
        else:
            out[grid] = src
        return out

    def _part(self):                              # the corner of src that index addresses
        return tuple(slice(0, n) for n in self.index.shape)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        grid = _grid(self.index, self.dim)
        gx = gy.copy()
        if not self.add:
            gx[grid] = 0
        if len(self.src_shape) == 0:
            return gx, gy[grid].sum().reshape(())
        gs = xp.zeros(self.src_shape, gy.dtype)
        gs[self._part()] = gy[grid]
        return gx, gs


def _scatter(op, input, dim, index, src, add):
    dim = _dim(op, input, dim)
    idx = _index_array(op, input, dim, index)
    src = constant(src, input.device, input)
    if src.ndim and (src.ndim != input.ndim or any(i > s for i, s in zip(idx.shape, src.shape))):
        raise ValueError(f"{op}: src of shape {src.shape} must be a number or at least as large as index "
                         f"{tuple(idx.shape)} in every dim")
    return ScatterFn(dim, idx, add)(input, src)


def scatter(input, dim, index, src=None, value=None):
    """Out-of-place ``scatter_``: a copy of ``input`` with ``src`` (a tensor, or a number ``value``) written at
    ``index``; where two indices hit the same place one of the values wins."""
    return _scatter("scatter", input, dim, index, value if src is None else src, add=False)


def scatter_add(input, dim, index, src):
    """A copy of ``input`` with ``src`` added at ``index`` (repeated indices accumulate)."""
    return _scatter("scatter_add", input, dim, index, src, add=True)


def masked_fill(input, mask, value):
    """``value`` where the boolean ``mask`` (broadcast to ``input``'s shape) is true, ``input`` elsewhere."""
    m = mask.data if isinstance(mask, Tensor) else backend.to_device(np.asarray(mask), input.device)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    try:
        if np.broadcast_shapes(m.shape, input.shape) != input.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast to the input's "
                         f"{input.shape}") from None
    value = value.item() if isinstance(value, Tensor) else value
    return where(m, constant(np.asarray(value, input.dtype), input.device), input)


# ---- sorting ----------------------------------------------------------------------------------------------
def argsort(input, dim=-1, descending=False, stable=False):
    dim = _dim("argsort", input, dim)
    xp, a = backend.get_array_module(input.data), input.data
    if descending:
        a = -(a.astype(np.int64) if a.dtype.kind in "ub" else a)      # a stable descending order keeps ties
    return Tensor._make(xp.argsort(a, axis=dim, kind="stable").astype(np.int64), input.device)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along ``dim``; ties keep their order.  ``values`` is differentiable."""
    idx = argsort(input, dim, descending)
    return _ValuesIndices["sort"](gather(input, dim, idx), idx)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the ``k`` largest (``largest=False``: smallest) along ``dim``, best first."""
    d = _dim("topk", input, dim)
    if not 0 <= k <= (input.shape[d] if input.ndim else 1):
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {input.shape[d] if input.ndim else 1}")
    order = argsort(input, d, descending=largest)
    idx = Tensor._make(order.data[(slice(None),) * d + (slice(0, k),)], input.device)
    return _ValuesIndices["topk"](gather(input, d, idx), idx)


def argmin(input, dim=None, keepdim=False):
    y = input.data.argmin(axis=dim)
    return Tensor._make(y if not keepdim or dim is None else
                        backend.get_array_module(y).expand_dims(y, dim), input.device)


def _max_min(op, reduce, elementwise, input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """torch.max/min: over everything (a scalar); with an int ``dim``, (values, indices); with a Tensor
    second argument, elementwise.  ``axis=`` keeps minicnn's values-only reduction."""
    if isinstance(dim, Tensor):
        return elementwise(input, dim)
    if axis is not None or keepdims is not None or dim is None or isinstance(dim, (tuple, list)):
        return reduce(input, dim if axis is None else axis, keepdim if keepdims is None else keepdims)
    d = _dim(op, input, dim)
    values = reduce(input, d, keepdim)
    arg = (input.data.argmax if op == "max" else input.data.argmin)(axis=d)
    if keepdim:
        arg = backend.get_array_module(arg).expand_dims(arg, d)
    return _ValuesIndices[op](values, Tensor._make(arg.astype(np.int64), input.device))


def torch_max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return _max_min("max", _max, maximum, input, dim, keepdim, axis=axis, keepdims=keepdims)


def torch_min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return _max_min("min", _min, minimum, input, dim, keepdim, axis=axis, keepdims=keepdims)


# ---- norms ------------------------------------------------------------------------------------------------
class NormFn(Function):
    """sqrt(sum x^2) over ``axes``; the gradient x / norm is taken as 0 where the norm is 0 (a subgradient)."""
    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.x = x
        self.y = xp.sqrt((x * x).sum(axis=self.axes, keepdims=True))
        return self.y if self.keepdims else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = gy.reshape(self.y.shape)
        return xp.where(self.y > 0, g * self.x / xp.where(self.y > 0, self.y, 1), 0).astype(self.x.dtype)


def norm(input, p="fro", dim=None, keepdim=False):
    """The p-norm over ``dim`` (all elements by default): 2 / 'fro', 1, inf, -inf, 0 or any other p > 0."""
    if input.dtype.kind != "f":
        raise TypeError(f"norm: needs a floating-point tensor, got dtype {input.dtype}")
    axes = tuple(range(input.ndim)) if dim is None else tuple(
        sorted(_dim("norm", input, d) for d in ((dim,) if isinstance(dim, int) else dim)))
    if p in ("fro", 2, 2.0):
        return NormFn(axes, keepdim)(input)
    if p in (np.inf, float("inf")):
        return _max(abs(input), axes, keepdim)
    if p in (-np.inf, float("-inf")):
        return _min(abs(input), axes, keepdim)
    if p == 0:
        return cast(_sum(Tensor._make(input.data != 0, input.device), axes, keepdim), input.dtype)
    if p == 1:
        return _sum(abs(input), axes, keepdim)
    if not isinstance(p, (int, float)) or p < 0:
        raise ValueError(f"norm: p must be 'fro', a number >= 0 or +-inf, got {p!r}")
    return pow(_sum(pow(abs(input), p), axes, keepdim), 1.0 / p)


# ---- shapes -----------------------------------------------------------------------------------------------
def repeat(input, *sizes):
    """Tile ``input`` ``sizes[i]`` times along each dim (NumPy's ``tile``); more sizes than dims add leading
    dims.  Built from reshape + expand, so the gradient sums over the copies."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes for a tensor of {input.ndim} dims (shape {input.shape}); "
                         f"give at least one per dim")
    shape = (1,) * (len(sizes) - input.ndim) + input.shape
    inter = tuple(v for n in shape for v in (1, n))                    # (1, n0, 1, n1, ...)
    big = tuple(v for r, n in zip(sizes, shape) for v in (r, n))       # (r0, n0, r1, n1, ...)
    return reshape(expand(reshape(input, inter), big), tuple(r * n for r, n in zip(sizes, shape)))


def chunk(input, chunks, dim=0):
    """Split into ``chunks`` pieces of ceil(n / chunks) along ``dim`` (the last smaller; maybe fewer pieces)."""
    if chunks < 1:
        raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
    n = input.shape[_dim("chunk", input, dim)]
    return split(input, builtins.max(-(-n // chunks), 1), dim)


def nonzero(input, as_tuple=False):
    """Indices of the nonzero elements: ``(N, ndim)`` int64, or one index tensor per dim with ``as_tuple``."""
    xp = backend.get_array_module(input.data)
    idx = [i.astype(np.int64) for i in xp.nonzero(input.data)]
    if as_tuple:
        return tuple(Tensor._make(i, input.device) for i in idx)
    return Tensor._make(xp.stack(idx, axis=1) if idx else xp.zeros((0, 0), np.int64), input.device)


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


def isclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False):
    a = input.data if isinstance(input, Tensor) else input
    b = other.data if isinstance(other, Tensor) else other
    xp = backend.get_array_module(a)
    dev = input.device if isinstance(input, Tensor) else other.device
    return Tensor._make(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan), dev)


def equal(input, other):
    """True if both have the same shape and the same values."""
    return input.shape == other.shape and bool((input.data == other.data).all())


def _comparison(op):
    def f(input, other):
        device = input.device if isinstance(input, Tensor) else other.device
        a, b = (t.data if isinstance(t, Tensor) else np.asarray(t) if isinstance(t, (list, tuple)) else t
                for t in (input, other))
        # operands on the comparison's device (as ops.compare does): CuPy refuses NumPy arrays in its ufuncs
        a, b = (backend.to_device(v, device) if hasattr(v, "shape") and not isinstance(v, np.generic)
                and backend.device_of(v) != device else v for v in (a, b))
        return Tensor._make(op(a, b), device)
    return f


eq, ne = _comparison(lambda a, b: a == b), _comparison(lambda a, b: a != b)
lt, le = _comparison(lambda a, b: a < b), _comparison(lambda a, b: a <= b)
gt, ge = _comparison(lambda a, b: a > b), _comparison(lambda a, b: a >= b)


def clamp(input, min=None, max=None):
    """Clip to ``[min, max]`` (numbers or tensors broadcast against ``input``); the gradient passes inside."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input if min is None else maximum(input, min)
        return out if max is None else minimum(out, max)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return clip(input, min, max)



def torch_where(condition, input=None, other=None):
    """``where(cond, a, b)``: a where cond, else b (differentiable in a and b); ``where(cond)``: the indices of
    the true elements, one int64 tensor per dim (``nonzero(as_tuple=True)``)."""
    if input is None and other is None:
        cond = condition if isinstance(condition, Tensor) else Tensor._make(np.asarray(condition), "cpu")
        return nonzero(cond, as_tuple=True)
    return where(condition, input, other)
