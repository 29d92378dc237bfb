"""Tensor factories with PyTorch's names, arguments and default dtypes.

``zeros(2, 3)`` and ``zeros((2, 3))`` both work; floats default to float32, integer ranges and draws to int64,
``full`` takes its dtype from the fill value (bool, int64 or float32), as in PyTorch.  Random draws come from
minicnn's generator (``mc.manual_seed``) or the ``generator=`` given.  Each takes ``dtype=``, ``device=`` and
``requires_grad=``.
"""
import numbers

import numpy as np

from minicnn import backend
from minicnn import random as mc_random
from minicnn.autograd import Tensor
from minicnn.dtypes import as_dtype

__all__ = ["as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye", "arange", "linspace", "rand",
           "randn", "randint", "randperm", "normal", "zeros_like", "ones_like", "empty_like", "full_like",
           "rand_like", "randn_like", "randint_like", "is_tensor", "numel"]


def _size(op, size):
    """The shape from ``*size``: ints, or one tuple/list (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (numbers.Integral, np.integer)) and n >= 0 for n in size):
        raise ValueError(f"{op}: size must be non-negative integers, got {size}")
    return tuple(int(n) for n in size)


def _wrap(op, arr, dtype, device, requires_grad):
    """A new leaf Tensor of host array ``arr`` cast to ``dtype`` on ``device``."""
    device = backend.check_device(device) if device is not None else "cpu"
    if dtype is not None:
        arr = arr.astype(as_dtype(dtype), copy=False)
    t = _leaf(Tensor._make(backend.to_device(np.require(arr, requirements='C'), device), device))
    if requires_grad:
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: requires_grad needs a floating-point dtype, got {t.dtype}")
        t.requires_grad = True
    return t


def as_tensor(data, dtype=None, device=None):
    """``data`` as a Tensor, sharing memory where it can: a Tensor of that dtype and device comes back as it is,
    a NumPy array keeps its dtype (float64 stays float64); lists and numbers follow ``mc.tensor``."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None and out.dtype != as_dtype(dtype):
            out = out.to(dtype=as_dtype(dtype))
        if device is not None and backend.check_device(device) != out.device:
            out = out.to(device)
        return out
    if hasattr(data, "dtype") and not isinstance(data, np.generic):
        src = backend.device_of(data)
        dev = backend.check_device(device) if device is not None else src
        arr = data if dtype is None else data.astype(as_dtype(dtype), copy=False)
        return _leaf(Tensor._make(backend.to_device(arr, dev), dev))
    return Tensor(data, dtype=as_dtype(dtype), device=device if device is not None else "cpu")


def from_numpy(ndarray):
    """A CPU Tensor sharing memory with ``ndarray`` (same dtype, same shape): writes to one show in the other."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return _leaf(Tensor._make(ndarray.view(np.ndarray), "cpu"))


def _leaf(t):
    t._leaf = True                                   # a new tensor, not an op's output: backward stops here
    return t


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


# ---- filled -----------------------------------------------------------------------------------------------
def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _wrap("zeros", np.zeros(_size("zeros", size), as_dtype(dtype) or np.float32), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _wrap("ones", np.ones(_size("ones", size), as_dtype(dtype) or np.float32), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Uninitialised in PyTorch; here zeros (NumPy's empty would make results depend on leftover memory)."""
    return _wrap("empty", np.zeros(_size("empty", size), as_dtype(dtype) or np.float32), None, device,
                 requires_grad)


def _fill_dtype(value):
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (numbers.Integral, np.integer)):
        return np.int64
    return np.float32


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dtype = as_dtype(dtype) or _fill_dtype(fill_value)
    return _wrap("full", np.full(_size("full", (size,)), fill_value, dtype), None, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _wrap("eye", np.eye(n, n if m is None else m, dtype=as_dtype(dtype) or np.float32), None, device,
                 requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """``[start, end)`` in steps of ``step``: int64 when all three are integers, else float32 (computed in
    float64, then cast, as PyTorch)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    ints = all(isinstance(v, (numbers.Integral, np.integer)) for v in (start, end, step))
    arr = np.arange(start, end, step, dtype=np.int64 if ints else np.float64)
    return _wrap("arange", arr, as_dtype(dtype) or (np.int64 if ints else np.float32), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _wrap("linspace", np.linspace(start, end, int(steps)), as_dtype(dtype) or np.float32, device,
                 requires_grad)


# ---- random -----------------------------------------------------------------------------------------------
def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    dtype = as_dtype(dtype) or np.dtype(np.float32)
    arr = mc_random.rng_of(generator).random(_size("rand", size), dtype=np.float64 if dtype == np.float64
                                             else np.float32)
    return _wrap("rand", arr, dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    dtype = as_dtype(dtype) or np.dtype(np.float32)
    arr = mc_random.rng_of(generator).standard_normal(_size("randn", size), dtype=np.float64 if dtype == np.float64
                                                      else np.float32)
    return _wrap("randn", arr, dtype, device, requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform on ``[low, high)``: ``randint(10, (3,))`` or ``randint(2, 10, (3,))``; int64."""
    if size is None:                                 # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    arr = mc_random.rng_of(generator).integers(low, high, _size("randint", (size,)), dtype=np.int64)
    return _wrap("randint", arr, dtype, device, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0 .. n-1`` (int64)."""
    return _wrap("randperm", mc_random.rng_of(generator).permutation(int(n)).astype(np.int64), dtype, device,
                 requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Draws from N(mean, std^2): numbers with ``size``, or Tensors (broadcast together) giving the shape."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    m = backend.to_cpu(mean.data) if isinstance(mean, Tensor) else mean
    s = backend.to_cpu(std.data) if isinstance(std, Tensor) else std
    if np.any(np.asarray(s) < 0):
        raise ValueError("normal: std must be >= 0")
    shape = np.broadcast_shapes(np.shape(m), np.shape(s)) if tensors else _size("normal", (size if size is not None
                                                                                          else (),))
    draw = mc_random.rng_of(generator).standard_normal(shape)
    like = tensors[0].dtype if tensors and tensors[0].dtype.kind == "f" else np.float32
    device = device if device is not None else (tensors[0].device if tensors else None)
    return _wrap("normal", m + s * draw, as_dtype(dtype) or like, device, requires_grad)


# ---- *_like: the shape, dtype and device of ``input`` unless given ---------------------------------------
def _like(fn, input, dtype, device, requires_grad, *args, **kw):
    dtype = as_dtype(dtype) or input.dtype
    device = device if device is not None else input.device
    return fn(*args, input.shape, dtype=dtype, device=device, requires_grad=requires_grad, **kw)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return _like(zeros, input, dtype, device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return _like(ones, input, dtype, device, requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    return _like(empty, input, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=as_dtype(dtype) or input.dtype,
                device=device if device is not None else input.device, requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):
    return _like(rand, input, dtype, device, requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):
    return _like(randn, input, dtype, device, requires_grad)


def randint_like(input, low=0, high=None, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=as_dtype(dtype) or input.dtype,
                   device=device if device is not None else input.device, requires_grad=requires_grad)


def _new(kind):
    """``x.new_zeros(size)`` and friends: a new tensor with ``x``'s dtype and device unless given."""
    def method(self, *args, dtype=None, device=None, requires_grad=False):
        kw = dict(dtype=as_dtype(dtype) or self.dtype, device=device if device is not None else self.device,
                  requires_grad=requires_grad)
        if kind == "tensor":
            return Tensor(args[0], **kw)
        if kind == "full":
            return full(args[0], args[1], **kw)
        return {"zeros": zeros, "ones": ones, "empty": empty}[kind](*args, **kw)
    method.__name__ = f"new_{kind}"
    return method


NEW_METHODS = {f"new_{k}": _new(k) for k in ("zeros", "ones", "empty", "full", "tensor")}
