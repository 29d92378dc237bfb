"""A strict stand-in for CuPy, NumPy-backed, for running the device-agnostic code (ops, functional, nn, optim,
the training loop) on a machine without a GPU as if its ``cuda`` arrays were CuPy's.

What it copies from CuPy (cupy/_core/core.pyx, _routines_indexing.pyx) is what a NumPy-only test cannot see:

- ``ndarray`` is *not* a ``numpy.ndarray``; ``__array__`` raises ``TypeError`` ("Implicit conversion to a NumPy
  array is not allowed"), so ``np.asarray(x)``, ``np.empty(...)[i] = x`` and NumPy kernels fed a device array fail;
- its ufuncs (operators, ``cupy.add``, NumPy ufuncs on a device array through ``__array_ufunc__``) and functions
  (``cupy.concatenate``, NumPy functions through ``__array_function__``) refuse ``numpy.ndarray`` operands
  ("Unsupported type"); Python and NumPy scalars are fine;
- NumPy arrays *are* accepted as indices (``x[np_index]``), by ``asarray``/``array``, and as values of an
  advanced-index assignment; a basic-index assignment of a NumPy array (``x[1:] = np_array``) is refused;
- reductions and integer indexing give 0-d device arrays, not scalars.

Host synchronisations (``float(x)``, ``int(x)``, ``bool(x)``, ``x.item()``, ``x.tolist()``, ``x.get()``,
``asnumpy``) are counted in ``SYNCS``, so a test can assert how often the training loop reads a device value.
CUDA kernels launched through ``minicnn.backend.launch`` get the NumPy array underneath (``kernel_arg``) and run in
Numba's simulator.  Installed by ``tests/conftest.py`` when ``MINICNN_STRICT_CUPY=1`` (see ``tests/run.sh``).
"""
import types

import numpy as np

SYNCS = [0]                                     # host synchronisations so far (a list: mutable from outside)
_SCALARS = (bool, int, float, complex, np.generic)


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _wrap(r):
    if isinstance(r, np.ndarray):
        return ndarray(r)
    if isinstance(r, np.generic) and not isinstance(r, np.void):
        return ndarray(np.asarray(r))           # CuPy returns 0-d arrays where NumPy returns scalars
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _operand(x):
    """A ufunc operand as NumPy wants it; NumPy arrays and sequences are refused, as CuPy's ufuncs do."""
    if isinstance(x, ndarray):
        return x._a
    if x is None or isinstance(x, _SCALARS):
        return x
    raise _unsupported(x)


def _argument(x):
    """A function argument: device arrays unwrapped (also inside lists/tuples), NumPy arrays refused, except 1-d
    integer ones, which CuPy reads as shapes, axes or indices (``transpose(np.argsort(perm))``, ``take``)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        if x.ndim <= 1 and x.dtype.kind in "iu":
            return x
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_argument(v) for v in x)
    return x


def _index(i):
    """An index: device and NumPy arrays, lists, ints, slices, None, Ellipsis (CuPy moves NumPy indices over)."""
    if isinstance(i, tuple):
        return tuple(_index(v) for v in i)
    if isinstance(i, ndarray):
        return i._a
    if hasattr(i, "__array__") and not isinstance(i, (np.ndarray, list)):
        raise IndexError(f"only integers, slices, ellipsis, None and integer or boolean arrays are valid indices, "
                         f"got {type(i)}")
    return i


def _advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(v, (np.ndarray, list)) for v in parts)


class _Ufunc:
    """A NumPy ufunc that accepts device arrays and scalars only."""
    def __init__(self, ufunc):
        self._u = ufunc

    def __call__(self, *inputs, out=None, **kwargs):
        args = [_operand(x) for x in inputs]
        if out is None:
            return _wrap(self._u(*args, **kwargs))
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            if not isinstance(o, ndarray):
                raise _unsupported(o)
        self._u(*args, out=tuple(o._a for o in outs), **kwargs)
        return outs if len(outs) > 1 else outs[0]

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        args = (a._a, _index(indices)) + (() if b is None else (b._a if isinstance(b, ndarray) else b,))
        self._u.at(*args)

    def reduce(self, a, *args, **kwargs):
        return _wrap(self._u.reduce(_operand(a), *args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._u, name)


class ndarray:
    """A device array: a NumPy array that refuses implicit conversion and NumPy operands, as ``cupy.ndarray``."""
    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    # ---- what CuPy refuses ---------------------------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        u = _Ufunc(ufunc)
        return u(*inputs, **kwargs) if method == "__call__" else getattr(u, method)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        module = _module
        for part in func.__module__.split(".")[1:]:              # numpy.linalg.norm -> cupy.linalg.norm
            if not part.startswith("_"):
                module = getattr(module, part, module)
        return getattr(module, func.__name__)(*args, **kwargs)

    # ---- host synchronisations (allowed, counted) ----------------------------------------------------------
    def get(self):
        SYNCS[0] += 1
        return self._a.copy()

    def item(self):
        SYNCS[0] += 1
        return self._a.item()

    def tolist(self):
        SYNCS[0] += 1
        return self._a.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __index__(self):
        if self._a.dtype.kind not in "iu" or self._a.size != 1:
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self.item())

    # ---- the rest behaves like NumPy, results on the device -------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    base = property(lambda self: None)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(self._a[i]) for i in range(len(self._a)))

    def __repr__(self):
        return f"strict_cupy.{np.array_repr(self._a)}"

    def __getitem__(self, index):
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index, value):
        if isinstance(value, np.ndarray) and not _advanced(index):
            raise _unsupported(value)           # CuPy: fill(value) for a non-device value
        self._a[_index(index)] = value._a if isinstance(value, ndarray) else value

    def __getattr__(self, name):                # methods: reshape, astype, sum, argmax, ...
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*[_argument(a) for a in args], **{k: _argument(v) for k, v in kwargs.items()}))
        return method

    def argsort(self, axis=-1):
        return ndarray(self._a.argsort(axis, kind="stable"))

    def copy(self, order="C"):
        return ndarray(self._a.copy(order))

    def view(self, *args):
        if args and isinstance(args[0], type) and issubclass(args[0], np.ndarray):
            raise TypeError(f"a device array cannot be viewed as {args[0]}")
        return ndarray(self._a.view(*args))


def _binary(name, reflected=False, inplace=False):
    u = getattr(np, name)

    def op(self, other):
        if not isinstance(other, (ndarray, np.ndarray) + _SCALARS):
            return NotImplemented               # e.g. a Tensor: let it handle the operator
        if inplace:
            u(self._a, _operand(other), out=self._a)
            return self
        a, b = (_operand(other), self._a) if reflected else (self._a, _operand(other))
        return _wrap(u(a, b))
    return op


for _op, _name in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                   ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
                   ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")]:
    setattr(ndarray, f"__{_op}__", _binary(_name))
    setattr(ndarray, f"__r{_op}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _binary(_name, inplace=True))
for _op, _name in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                   ("eq", "equal"), ("ne", "not_equal")]:
    setattr(ndarray, f"__{_op}__", _binary(_name))
for _op, _name in [("neg", "negative"), ("pos", "positive"), ("abs", "absolute"), ("invert", "invert")]:
    setattr(ndarray, f"__{_op}__", (lambda u: lambda self: _wrap(u(self._a)))(getattr(np, _name)))
ndarray.__hash__ = None


# ---- the module ----------------------------------------------------------------------------------------------
_ACCEPTS_HOST = {"asarray", "array", "asanyarray"}       # host -> device copies


def _function(f, name):
    def call(*args, **kwargs):
        if name in _ACCEPTS_HOST:
            a = args[0]._a if isinstance(args[0], ndarray) else args[0]
            r = getattr(np, name)(a, *args[1:], **kwargs)
            return ndarray(r) if isinstance(r, np.ndarray) else ndarray(np.asarray(r))
        return _wrap(f(*[_argument(a) for a in args], **{k: _argument(v) for k, v in kwargs.items()}))
    call.__name__ = name
    return call


class _Namespace(types.ModuleType):
    """NumPy's namespace (or a submodule of it) seen through CuPy's rules."""
    def __init__(self, name, np_module):
        super().__init__(name)
        self._np = np_module

    def __getattr__(self, name):
        attr = getattr(self._np, name)
        if isinstance(attr, np.ufunc):
            wrapped = _Ufunc(attr)
        elif isinstance(attr, types.ModuleType):
            wrapped = _Namespace(f"{self.__name__}.{name}", attr)
        elif callable(attr) and not isinstance(attr, type):
            wrapped = _function(attr, name)
        else:
            return attr                                      # dtypes, constants (float32, inf, newaxis)
        setattr(self, name, wrapped)
        return wrapped


class _Random(types.ModuleType):
    """``cupy.random``: the generators draw on the device (NumPy's, wrapped)."""
    def __init__(self):
        super().__init__("strict_cupy.random")

    def default_rng(self, seed=None):
        return _Generator(np.random.default_rng(seed))


class _Generator:
    def __init__(self, g):
        self._g = g

    def __getattr__(self, name):
        attr = getattr(self._g, name)
        return (lambda *a, **k: _wrap(attr(*[_argument(v) for v in a], **{n: _argument(v) for n, v in k.items()}))
                ) if callable(attr) else attr


def asnumpy(x):
    if isinstance(x, ndarray):
        return x.get()
    return np.asarray(x)


def argsort(a, axis=-1):
    """CuPy's sort is stable (a radix sort), NumPy's default is not."""
    return a.argsort(axis)


_module = _Namespace("strict_cupy", np)
_module.argsort = argsort
_module.ndarray = ndarray
_module.asnumpy = asnumpy
_module.random = _Random()
_module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(deviceSynchronize=lambda: None,
                                                                   getDeviceCount=lambda: 1))
_module.STANDIN = True
module = _module


def kernel_arg(a):
    """What a CUDA kernel is launched with: the NumPy array under a device array (the simulator needs NumPy)."""
    return a._a if isinstance(a, ndarray) else a


