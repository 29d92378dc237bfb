"""In-place ops (``add_``, ``mul_``, ``copy_``, ...) and the PyTorch-named Tensor methods built on the op library.

An in-place op outside a graph (``with no_grad()``, or no input requiring grad) writes into the tensor's own
array, so views and ``from_numpy`` arrays see the change.  Inside a graph it is recorded like its out-of-place
twin and the tensor takes the result's place in the graph, as PyTorch's version of it; as in PyTorch, a leaf
that requires grad cannot be changed in place, and (stricter than PyTorch, which only checks saved values) a
tensor that an earlier op of the graph already read cannot either: its gradient would be routed wrongly.
"""
import numpy as np

from minicnn import autograd, backend
from minicnn import random as mc_random
from minicnn.autograd import Function, Tensor, constant
from minicnn.dtypes import as_dtype, is_dtype
from minicnn.ops import creation, indexing
from minicnn.ops.elementwise import abs, add, div, exp, mul, neg, pow, sqrt, sub, unbroadcast
from minicnn.ops.reduce import var
from minicnn.ops.shape import reshape, split, transpose

__all__ = ["clone", "std", "attach"]


class CloneFn(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def clone(input):
    return CloneFn()(input)


def std(input, dim=None, keepdim=False, correction=1):
    return sqrt(var(input, dim, keepdim, correction))


def _inplace(op, self, compute, *others):
    """Run ``compute(self)`` (an out-of-place op) and make ``self`` hold its result (see the module docstring)."""
    graph = autograd.is_grad_enabled() and (self.requires_grad or any(
        isinstance(o, Tensor) and o.requires_grad for o in others))
    if not graph:
        with autograd.no_grad():
            y = compute(self)
        if y.shape != self.shape:
            raise RuntimeError(f"{op}: the result's shape {y.shape} differs from the tensor's {self.shape} "
                               f"(an in-place op cannot broadcast the tensor itself)")
        if y.dtype.kind == "f" and self.dtype.kind in "iub":
            raise RuntimeError(f"{op}: result type {y.dtype} can't be cast to the tensor's dtype {self.dtype}")
        self.data[...] = y.data
        return self
    if self.is_leaf and self.requires_grad:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad cannot be changed in place (it would lose "
                           f"its gradient); wrap the update in `with mc.no_grad():`")
    if getattr(self, "_consumed", False):
        raise RuntimeError(f"{op}: this tensor was already used by another op of the graph, whose gradient an "
                           f"in-place change would route wrongly; use the out-of-place op (x = x.{op[:-1]}(...))")
    old = Tensor._make(self.data, self.device)
    old._ctx, old._leaf, old.requires_grad = self._ctx, self._leaf, self.requires_grad
    y = compute(old)
    if y.shape != self.shape:
        raise RuntimeError(f"{op}: the result's shape {y.shape} differs from the tensor's {self.shape}")
    self.data, self._ctx, self._leaf, self.requires_grad = y.data, y._ctx, False, y.requires_grad
    return self


def _alpha(other, alpha):
    if alpha == 1:
        return other
    return mul(other, alpha) if isinstance(other, Tensor) else other * alpha


def _to(self, *args, **kwargs):
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other)`` (its device and dtype); copies only
    when something changes.  ``non_blocking`` and ``copy`` are accepted."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif is_dtype(a):
            dtype = a
        elif a is not None:
            device = a
    out = _TO(self, device=device, dtype=as_dtype(dtype))
    return clone(out) if copy and out is self else out


def _uniform_(self, a=0.0, b=1.0, generator=None):
    with autograd.no_grad():
        draw = mc_random.rng_of(generator).uniform(a, b, self.shape).astype(self.dtype)
        self.data[...] = backend.to_device(draw, self.device)
    return self


def _normal_(self, mean=0.0, std=1.0, generator=None):
    with autograd.no_grad():
        draw = (mean + std * mc_random.rng_of(generator).standard_normal(self.shape)).astype(self.dtype)
        self.data[...] = backend.to_device(draw, self.device)
    return self


class CopyFn(Function):
    """out = src broadcast to the destination's shape and cast to its dtype: the destination's old values get
    no gradient, src the (un-broadcast) gradient of the copy."""
    def forward(self, dst, src):
        self.src_shape, self.src_dtype = src.shape, src.dtype
        return backend.get_array_module(dst).broadcast_to(src, dst.shape).astype(dst.dtype)

    def backward(self, gy):
        return backend.get_array_module(gy).zeros_like(gy), unbroadcast(gy, self.src_shape).astype(self.src_dtype)


def _copy_(self, src, non_blocking=False):
    """Write ``src`` (a tensor or number, broadcast to this shape, cast to this dtype, moved to this device)."""
    def compute(t):
        s = src if isinstance(src, Tensor) else constant(np.asarray(src, t.dtype), t.device)
        s = s.to(t.device) if s.device != t.device else s
        if not _broadcasts_to(s.shape, t.shape):
            raise RuntimeError(f"copy_: source of shape {s.shape} does not broadcast to {t.shape}")
        return CopyFn()(t, s)
    return _inplace("copy_", self, compute, src)


def _broadcasts_to(shape, target):
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def _fill_(self, value):
    return _copy_(self, value.item() if isinstance(value, Tensor) and not value.requires_grad else value)


def attach():
    """Give Tensor the methods of this module, ``creation`` and ``indexing``."""
    T = Tensor
    global _TO
    _TO = T.to
    T.to = _to
    T.clone, T.contiguous, T.std = clone, (lambda self, *a, **k: self), std
    T.is_contiguous = lambda self: bool(self.data.flags.c_contiguous)
    T.view_as = lambda self, other: reshape(self, other.shape)
    T.reshape_as = T.view_as
    T.expand_as = lambda self, other: self.expand(other.shape)
    T.type_as = lambda self, other: self.to(dtype=other.dtype)
    T.int = lambda self: self.to(dtype=np.int32)
    T.bool = lambda self: self.to(dtype=np.bool_)
    T.t = lambda self: transpose(self, 0, 1) if self.ndim == 2 else self
    T.is_cuda = property(lambda self: self.device == "cuda")
    T.add = lambda self, other, alpha=1: add(self, _alpha(other, alpha))
    T.sub = lambda self, other, alpha=1: sub(self, _alpha(other, alpha))
    T.mul, T.div, T.pow, T.neg = mul, div, pow, neg
    T.matmul = T.mm = lambda self, other: self @ other
    T.all = lambda self, dim=None: Tensor._make(self.data.all(axis=dim), self.device)
    T.any = lambda self, dim=None: Tensor._make(self.data.any(axis=dim), self.device)
    for name, f in creation.NEW_METHODS.items():
        setattr(T, name, f)
    T.gather, T.scatter, T.scatter_add = indexing.gather, indexing.scatter, indexing.scatter_add
    T.masked_fill, T.norm, T.repeat, T.chunk = indexing.masked_fill, indexing.norm, indexing.repeat, indexing.chunk
    T.sort, T.argsort, T.topk, T.argmin = indexing.sort, indexing.argsort, indexing.topk, indexing.argmin
    T.max, T.min = indexing.torch_max, indexing.torch_min
    T.nonzero, T.allclose, T.isclose, T.equal = indexing.nonzero, indexing.allclose, indexing.isclose, indexing.equal
    T.eq, T.ne, T.lt, T.le, T.gt, T.ge = (indexing.eq, indexing.ne, indexing.lt, indexing.le, indexing.gt,
                                         indexing.ge)
    T.__eq__, T.__ne__ = indexing.eq, indexing.ne          # elementwise, as torch (hash stays by identity)
    for name, op in (("mod", lambda a, b: a % b), ("floordiv", lambda a, b: a // b), ("and", lambda a, b: a & b),
                     ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b)):
        f = indexing._comparison(op)                       # integer and boolean arithmetic: no gradient
        setattr(T, f"__{name}__", f)
        setattr(T, f"__r{name}__", lambda self, other, f=f: f(other, self))
    T.__invert__ = lambda self: Tensor._make(~self.data, self.device)
    T.clamp = T.clip = indexing.clamp
    T.split = lambda self, split_size_or_sections, dim=0: split(self, split_size_or_sections, dim)

    # ---- in place ------------------------------------------------------------------------------------------
    T.add_ = lambda self, other, alpha=1: _inplace("add_", self, lambda t: add(t, _alpha(other, alpha)), other)
    T.sub_ = lambda self, other, alpha=1: _inplace("sub_", self, lambda t: sub(t, _alpha(other, alpha)), other)
    T.mul_ = lambda self, other: _inplace("mul_", self, lambda t: mul(t, other), other)
    T.div_ = lambda self, other: _inplace("div_", self, lambda t: div(t, other), other)
    T.pow_ = lambda self, other: _inplace("pow_", self, lambda t: pow(t, other), other)
    T.neg_ = lambda self: _inplace("neg_", self, neg)
    T.exp_ = lambda self: _inplace("exp_", self, exp)
    T.sqrt_ = lambda self: _inplace("sqrt_", self, sqrt)
    T.abs_ = lambda self: _inplace("abs_", self, abs)
    T.clamp_ = lambda self, min=None, max=None: _inplace("clamp_", self, lambda t: indexing.clamp(t, min, max),
                                                        min, max)
    T.clip_ = T.clamp_
    T.masked_fill_ = lambda self, mask, value: _inplace("masked_fill_", self,
                                                        lambda t: indexing.masked_fill(t, mask, value), value)
    T.scatter_ = lambda self, dim, index, src=None, value=None: _inplace(
        "scatter_", self, lambda t: indexing.scatter(t, dim, index, src, value), src)
    T.scatter_add_ = lambda self, dim, index, src: _inplace(
        "scatter_add_", self, lambda t: indexing.scatter_add(t, dim, index, src), src)
    T.fill_, T.copy_, T.uniform_, T.normal_ = _fill_, _copy_, _uniform_, _normal_
    T.zero_ = lambda self: _fill_(self, 0)


_TO = None
