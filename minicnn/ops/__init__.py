"""The tensor algebra: elementwise arithmetic, reductions, shape ops, indexing.

None of these has a hot loop of its own (NumPy or CuPy does the work), so each Function is a few lines:
forward on arrays, backward on arrays.  They are attached to ``Tensor`` as operators and methods here.
"""
from minicnn.autograd import Tensor
from minicnn.ops.elementwise import *  # noqa: F401,F403
from minicnn.ops.reduce import *  # noqa: F401,F403
from minicnn.ops.shape import *  # noqa: F401,F403
from minicnn.ops.elementwise import abs, add, clip, compare, div, exp, log, matmul, mul, neg, pow, sqrt, sub
from minicnn.ops.reduce import argmax, max, mean, min, sum, var
from minicnn.ops.shape import expand, flatten, getitem, permute, reshape, squeeze, transpose, unsqueeze


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
    T.__lt__, T.__le__ = compare(lambda a, b: a < b), compare(lambda a, b: a <= b)
    T.__gt__, T.__ge__ = compare(lambda a, b: a > b), compare(lambda a, b: a >= b)
    T.eq, T.ne = compare(lambda a, b: a == b), compare(lambda a, b: a != b)
    T.exp, T.log, T.sqrt, T.abs, T.clip, T.clamp = exp, log, sqrt, abs, clip, clip
    T.sum, T.mean, T.max, T.min = reducer(sum), reducer(mean), reducer(max), reducer(min)
    T.var = reducer(var)
    T.argmax = argmax
    T.reshape, T.view, T.flatten, T.permute, T.transpose = reshape, reshape, flatten, permute, transpose
    T.squeeze, T.unsqueeze, T.expand = squeeze, unsqueeze, expand
    T.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))


_attach()

# PyTorch's factories, gather/scatter/sort/norm and friends, in-place ops and the remaining Tensor methods
from minicnn.ops.creation import *  # noqa: F401,F403,E402
from minicnn.ops.indexing import *  # noqa: F401,F403,E402
from minicnn.ops.methods import attach as _attach_torch_methods, clone, std  # noqa: F401,E402

_attach_torch_methods()
