"""Pooling with PyTorch's names, arguments and semantics: max_pool2d, avg_pool2d, adaptive_avg_pool2d,
adaptive_max_pool2d.  Inputs are (N, C, H, W) or (C, H, W); the loops live in ``kernels/pool.py`` and
``kernels/adaptive_pool.py``."""
import numpy as np

from minicnn.autograd import Function, Tensor
from minicnn.backend import get_array_module
from minicnn.kernels import adaptive_pool, pool
from minicnn.functional._args import pair as _pair

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "MaxPool2dFn", "AvgPool2dFn", "AdaptiveAvgPool2dFn", "AdaptiveMaxPool2dFn"]


class MaxPool2dFn(Function):
    """Max over windows.  x (N, C, H, W) -> y (N, C, OH, OW); ``arg`` (int32 iy * W + ix) is kept for backward."""
    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode):
        self.geometry, self.ceil_mode = (kernel_size, stride, padding, dilation), ceil_mode

    def forward(self, x):
        y, self.arg = pool.max_pool_forward(x, *self.geometry, self.ceil_mode)
        self.x_shape = x.shape
        return y

    def backward(self, gy):                      # each window sends its gradient to the pixel that won it
        return pool.max_pool_backward(gy, self.arg, self.x_shape, *self.geometry)


class AvgPool2dFn(Function):
    """Mean over windows with PyTorch's divisors.  x (N, C, H, W) -> y (N, C, OH, OW)."""
    def __init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.geometry, self.ceil_mode = (kernel_size, stride, padding), ceil_mode
        self.divisor = (count_include_pad, divisor_override)

    def forward(self, x):
        self.x_shape = x.shape
        return pool.avg_pool_forward(x, *self.geometry, self.ceil_mode, *self.divisor)

    def backward(self, gy):
        return pool.avg_pool_backward(gy, self.x_shape, *self.geometry, *self.divisor)


class AdaptiveAvgPool2dFn(Function):
    """Mean over PyTorch's adaptive bins.  x (N, C, H, W) -> y (N, C, OH, OW)."""
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        self.x_shape = x.shape
        if tuple(self.output_size) == (1, 1):               # global average pooling: one bin, a plain mean
            return x.mean(axis=(2, 3), keepdims=True)
        return adaptive_pool.adaptive_avg_pool_forward(x, self.output_size)

    def backward(self, gy):
        if tuple(self.output_size) == (1, 1):               # every pixel gets gy / (H * W)
            xp, (H, W) = get_array_module(gy), self.x_shape[2:]
            return xp.broadcast_to(gy / (H * W), self.x_shape).astype(gy.dtype)
        return adaptive_pool.adaptive_avg_pool_backward(gy, self.x_shape)


class AdaptiveMaxPool2dFn(Function):
    """Max over PyTorch's adaptive bins.  x (N, C, H, W) -> y (N, C, OH, OW); ``arg`` kept for backward."""
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        y, self.arg = adaptive_pool.adaptive_max_pool_forward(x, self.output_size)
        self.x_shape = x.shape
        return y

    def backward(self, gy):
        return adaptive_pool.adaptive_max_pool_backward(gy, self.arg, self.x_shape)


# ---- argument checks -----------------------------------------------------------------------------------------
def _check_input(op, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {input.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 4-d (N, C, H, W) or 3-d (C, H, W), got shape {input.shape}")
    if min(input.shape[-2:]) < 1:
        raise ValueError(f"{op}: input has an empty spatial size {input.shape[-2]}x{input.shape[-1]}")


def _batched(fn, input):
    """fn on a 4-d version of ``input``: (C, H, W) goes in as (1, C, H, W) and comes out without the batch dim."""
    if input.ndim == 4:
        return fn(input)
    out = fn(input.reshape(1, *input.shape))
    return tuple(o.reshape(*o.shape[1:]) for o in out) if isinstance(out, tuple) else out.reshape(*out.shape[1:])


def _window_args(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked (kernel, stride, padding, dilation) pairs; fails before any work if the output would be empty."""
    _check_input(op, input)
    k = _pair(op, "kernel_size", kernel_size, 1)
    default_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)   # torch: None or []
    s = k if default_stride else _pair(op, "stride", stride, 1)
    p, d = _pair(op, "padding", padding, 0), _pair(op, "dilation", dilation, 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} should be at most half of kernel_size {k}")
    H, W = input.shape[-2:]
    out = [pool.pool_output_size(n, *g, ceil_mode) for n, g in zip((H, W), zip(k, s, p, d))]
    if min(out) < 1:
        span = "" if d == (1, 1) else f" (dilation {d}: spans {(k[0] - 1) * d[0] + 1}x{(k[1] - 1) * d[1] + 1})"
        raise ValueError(f"{op}: kernel_size {k}{span} exceeds input {H}x{W} with padding {p}")
    return k, s, p, d


def _output_size(op, input, output_size):
    """(OH, OW) from an int, or a pair whose None entries keep the input's size."""
    pair = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(pair) != 2 or not all(v is None or isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{op}: output_size must be an int or a pair of ints (or None), got {output_size!r}")
    out = tuple(int(n if v is None else v) for v, n in zip(pair, input.shape[-2:]))
    if min(out) < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


# ---- public functions ----------------------------------------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling as PyTorch: (N, C, H, W) or (C, H, W) -> (..., OH, OW) with
    ``OH = floor((H + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1`` (ceil with ``ceil_mode``, but
    the last window must start inside the input or its left padding).  Padding counts as -inf.
    ``return_indices``: also return int64 indices of the maxima, flat into each input plane (iy * W + ix)."""
    op = "max_pool2d"
    k, s, p, d = _window_args(op, input, kernel_size, stride, padding, dilation, ceil_mode)

    def run(x):
        fn = MaxPool2dFn(k, s, p, d, bool(ceil_mode))
        y = fn(x)
        return (y, Tensor(fn.arg, dtype=np.int64, device=x.device)) if return_indices else y
    return _batched(run, input)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling as PyTorch.  Each window's sum is divided by ``divisor_override`` if given, else by its size
    clipped to the padded input (``count_include_pad=True``) or to the input itself (``False``); windows that
    ``ceil_mode`` adds past the right/bottom padding count only what they overlap."""
    op = "avg_pool2d"
    k, s, p, _ = _window_args(op, input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer)) or divisor_override < 1):
        raise ValueError(f"{op}: divisor_override must be a positive int or None, got {divisor_override!r}")
    fn = lambda x: AvgPool2dFn(k, s, p, bool(ceil_mode), bool(count_include_pad), divisor_override)(x)  # noqa: E731
    return _batched(fn, input)


def adaptive_avg_pool2d(input, output_size):
    """Mean over adaptive bins: output i of OH covers rows floor(i * H / OH) .. ceil((i + 1) * H / OH) (columns
    alike); ``output_size`` an int or a pair, None keeping the input's size."""
    op = "adaptive_avg_pool2d"
    _check_input(op, input)
    out = _output_size(op, input, output_size)
    return _batched(lambda x: AdaptiveAvgPool2dFn(out)(x), input)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over adaptive bins (see ``adaptive_avg_pool2d``); ``return_indices`` as in ``max_pool2d``."""
    op = "adaptive_max_pool2d"
    _check_input(op, input)
    out = _output_size(op, input, output_size)

    def run(x):
        fn = AdaptiveMaxPool2dFn(out)
        y = fn(x)
        return (y, Tensor(fn.arg, dtype=np.int64, device=x.device)) if return_indices else y
    return _batched(run, input)
