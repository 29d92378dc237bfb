"""Dropout (Srivastava et al. 2014), inverted: kept values are scaled by 1 / (1 - p) in training, so eval is the
identity.  The mask is drawn on the input's device by a counter-based generator (kernels/dropout.py) from one seed
that ``minicnn.random.generator()`` draws on the host, so nothing is uploaded per call and a seeded run gives the
same masks on the CPU and on CUDA."""
from minicnn.autograd import Function, Tensor
from minicnn.kernels.dropout import dropout_mask
from minicnn.random import generator

__all__ = ["dropout", "dropout2d", "stochastic_depth", "DropoutFn"]


class DropoutFn(Function):
    """y = x * mask; mask (0 or 1 / (1 - p)) broadcasts against x (N, C, 1, 1 for dropout2d).  Pure: the mask is
    an argument, so the op is deterministic and gradcheckable."""
    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def _mask(input, p, shape):
    """The inverted-dropout mask of ``shape`` in input's dtype, on input's device."""
    seed = int(generator().integers(0, 2 ** 63))           # host-side: no device round trip
    return dropout_mask(shape, p, seed, input.dtype, like=input.data)     # each entry kept with probability 1 - p


def _check(op, input, p):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1, got {p}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {input.dtype}")


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training); identity otherwise."""
    _check("dropout", input, p)
    if not training or p == 0:
        return input
    return DropoutFn(_mask(input, p, input.shape))(input)


def dropout2d(input, p=0.5, training=True):
    """Zero whole channels: input (N, C, H, W) or (C, H, W); one draw per (n, c) plane (Tompson et al. 2015)."""
    _check("dropout2d", input, p)
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input (N, C, H, W) or (C, H, W), got shape {input.shape}")
    if not training or p == 0:
        return input
    return DropoutFn(_mask(input, p, input.shape[:-2] + (1, 1)))(input)


def stochastic_depth(input, p, mode, training=True):
    """Drop path (Huang et al. 2016; torchvision.ops.stochastic_depth): in training, zero the whole input of a
    residual branch with probability p and scale what survives by 1 / (1 - p).  ``mode="row"`` draws one
    decision per sample (a mask (N, 1, ..., 1)), ``"batch"`` one for the whole batch."""
    _check("stochastic_depth", input, p)
    if mode not in ("batch", "row"):
        raise ValueError(f"stochastic_depth: mode has to be either 'batch' or 'row', got {mode!r}")
    if not training or p == 0:
        return input
    shape = (input.shape[0],) + (1,) * (input.ndim - 1) if mode == "row" else (1,) * input.ndim
    return DropoutFn(_mask(input, p, shape))(input)
