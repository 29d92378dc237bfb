"""Shape ops, indexing, joining and padding: views and copies whose backward routes gradients back."""
import builtins

import numpy as np

from minicnn import backend
from minicnn.autograd import Function, Tensor
from minicnn.ops.elementwise import unbroadcast

__all__ = ["reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze", "expand", "getitem", "concat",
           "stack", "split", "pad", "ReshapeFn", "TransposeFn", "ExpandFn", "GetItemFn", "ConcatFn", "PadFn"]


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
def _basic(index):
    """Whether ``index`` is basic indexing only (ints, slices, None, Ellipsis): it never names an element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


class GetItemFn(Function):
    """x[index] for ints, slices, None, Ellipsis and integer/boolean arrays; backward scatters with add.at,
    so repeated integer indices accumulate (basic indexing, which repeats nothing, assigns: many times faster)."""
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, self.dtype)
        if _basic(self.index):
            gx[self.index] = gy
        else:
            xp.add.at(gx, self.index, gy)         # CuPy >= 12 has ufunc.at too
        return gx


def _index_for(index, device):
    """The index for an array on ``device``: Tensors unwrapped, lists made NumPy arrays.  NumPy index arrays stay
    on the host even for a cuda array (CuPy accepts them and moves them itself); device index arrays are copied to
    the host only to index a cpu array."""
    if isinstance(index, tuple):
        return tuple(_index_for(i, device) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, list):
        return np.asarray(index)
    if device == "cpu" and backend.device_of(index) == "cuda":
        return backend.to_cpu(index)
    return index


def _on_host(index):
    """The index with every device array replaced by a host copy, for the bounds check (a device index costs one
    copy to the host here: out-of-range indices must fail clearly, and CuPy would wrap them around silently)."""
    if isinstance(index, tuple):
        return tuple(_on_host(i) for i in index)
    return backend.to_cpu(index) if backend.device_of(index) == "cuda" else index


def getitem(x, index):
    index = _index_for(index, x.device)
    try:
        np.broadcast_to(np.int8(0), x.shape)[_on_host(index)]    # NumPy's checks, without allocating x.shape
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
