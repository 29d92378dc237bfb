"""Normalisation layers' ops: batch normalisation (Ioffe & Szegedy 2015) and local response normalisation."""
from minicnn.autograd import Function, Tensor
from minicnn.backend import device_of, get_array_module
from minicnn.kernels import batchnorm, lrn

__all__ = ["batch_norm", "batch_norm_relu", "local_response_norm", "BatchNormFn", "LocalResponseNormFn"]


class BatchNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel.  x (N, C, *); weight, bias (C,).

    ``batch_stats=True``: mean and var are the batch's own (biased) statistics, functions of x, computed here
    (kept as ``self.mean``, ``self.var`` for the running averages), and the backward pass differentiates through
    them (Ioffe & Szegedy 2015, section 3); ``False``: ``mean`` and ``var`` are the given constants (the running
    statistics of eval mode) and the op is a per-channel affine map.  ``relu=True``: y is relu of that, in the
    same passes over the data; a fourth input ``residual`` (x's shape) is added before the ReLU.  The loops are
    kernels/batchnorm.py's.
    """
    def __init__(self, eps, batch_stats, mean=None, var=None, relu=False):
        self.eps, self.batch_stats, self.mean, self.var, self.relu = eps, batch_stats, mean, var, relu

    def forward(self, x, weight, bias, residual=None):
        self.x, self.weight, self.bias, self.mask = x, weight, bias, None
        if residual is None:
            y, self.mean, self.var, self.inv_std = batchnorm.batch_norm_forward(
                x, self.mean, self.var, weight, bias, self.eps, self.batch_stats, self.relu)
        else:
            y, self.mean, self.var, self.inv_std, self.mask = batchnorm.batch_norm_forward(
                x, self.mean, self.var, weight, bias, self.eps, self.batch_stats, self.relu, residual)
        return y

    def backward(self, gy):                          # with a residual, its gradient comes fourth
        return batchnorm.batch_norm_backward(self.x, gy, self.mean, self.inv_std, self.weight, self.batch_stats,
                                             self.bias, self.relu, self.mask)


def _data(t):
    return t.data if isinstance(t, Tensor) else t


def _check_channels(op, name, t, C):
    if t is not None and tuple(t.shape) != (C,):
        raise ValueError(f"{op}: {name} must have shape ({C},) for an input with {C} channels, "
                         f"got {tuple(t.shape)}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation of input (N, C) or (N, C, *) over every axis but the channels (axis 1).

    ``training=True`` normalises with the batch's statistics (biased variance) and, where running_mean /
    running_var are given (Tensors or arrays of shape (C,)), updates them in place:
    ``running = (1 - momentum) * running + momentum * batch``, with the *unbiased* variance, as PyTorch.
    ``training=False`` normalises with the running statistics, which must then be given.  ``momentum`` may be a
    0-d array on the input's device (BatchNorm's cumulative average with ``momentum=None``: no host round trip).
    """
    return _batch_norm("batch_norm", input, running_mean, running_var, weight, bias, training, momentum, eps, False)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                    eps=1e-5, residual=None):
    """``relu(batch_norm(input, ...))`` (same arguments) in the passes of batch_norm alone: the ReLU is applied as
    y is written and its mask recomputed in the backward (kernels/batchnorm.py).  ``residual`` (a Tensor of
    input's shape, dtype and device): ``relu(batch_norm(input, ...) + residual)``, a residual block's end, with
    the sum in the same pass.  Not a PyTorch function: it is what ``nn.BatchNormReLU2d`` runs, for conv -> BN ->
    ReLU blocks where the ReLU's own two passes cost as much memory traffic as the normalisation."""
    return _batch_norm("batch_norm_relu", input, running_mean, running_var, weight, bias, training, momentum, eps,
                       True, residual)


def _batch_norm(op, input, running_mean, running_var, weight, bias, training, momentum, eps, relu, residual=None):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op}: input must be (N, C) or (N, C, *), got shape {input.shape}")
    C = input.shape[1]
    for name, t in [("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)]:
        _check_channels(op, name, t, C)
        where = t.device if isinstance(t, Tensor) else None if t is None else device_of(t)
        if where is not None and where != input.device:
            raise RuntimeError(f"{op}: {name} is on {where}, input on {input.device}")
    x = input.data
    xp = get_array_module(x)
    if training and x.size // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                         f"got input shape {input.shape}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{op}: running_mean and running_var are needed when training=False")
    extra = ()
    if residual is not None:
        if not isinstance(residual, Tensor):
            raise TypeError(f"{op}: residual must be a Tensor, got {type(residual).__name__}")
        if residual.shape != input.shape or residual.dtype != input.dtype or residual.device != input.device:
            raise ValueError(f"{op}: residual must match input (shape {input.shape}, {input.dtype}, "
                             f"{input.device}), got shape {residual.shape}, {residual.dtype}, {residual.device}")
        extra = (residual,)
    weight = xp.ones(C, x.dtype) if weight is None else weight
    bias = xp.zeros(C, x.dtype) if bias is None else bias
    if training:
        fn = BatchNormFn(eps, batch_stats=True, relu=relu)
        y = fn(input, weight, bias, *extra)
        m = x.size // C
        if running_mean is not None:
            rm = _data(running_mean)
            rm[...] = (1 - momentum) * rm + momentum * fn.mean
        if running_var is not None:
            rv = _data(running_var)
            rv[...] = (1 - momentum) * rv + momentum * fn.var * (m / (m - 1))
        return y
    mean, var = (xp.asarray(_data(t)).astype(x.dtype, copy=False) for t in (running_mean, running_var))
    return BatchNormFn(eps, batch_stats=False, mean=mean, var=var, relu=relu)(input, weight, bias, *extra)


class LocalResponseNormFn(Function):
    """Local response normalisation across channels (kernels/lrn.py has the formula).  x (N, C, *) -> y, x's shape."""
    def __init__(self, size, alpha, beta, k):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        self.device = device_of(x)
        y, self.scale = lrn.lrn_forward(x, self.size, self.alpha, self.beta, self.k)
        self.x, self.y = x, y
        return y

    def backward(self, gy):
        return lrn.lrn_backward(self.x, self.y, self.scale, gy, self.size, self.alpha, self.beta,
                                device=self.device)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """PyTorch's ``local_response_norm``: y_c = x_c / (k + alpha / size * sum of x^2 over ``size`` channels
    around c) ** beta.  input (N, C, *).  AlexNet's alpha=1e-4 with n=5 is alpha=5e-4 here (see kernels/lrn.py)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"local_response_norm: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensional input (N, C, *), "
                         f"got shape {input.shape}")
    if int(size) != size or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size}")
    if input.dtype.kind != "f":
        raise TypeError(f"local_response_norm: input must be floating point, got {input.dtype}")
    return LocalResponseNormFn(int(size), float(alpha), float(beta), float(k))(input)
