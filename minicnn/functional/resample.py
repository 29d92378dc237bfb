"""Resampling that only moves pixels: nearest-neighbour upsampling by integer factors (``interpolate``, YOLOv3's
upsample) and ``pixel_shuffle`` / ``pixel_unshuffle`` (YOLOv2's passthrough layer), with PyTorch's names and
channel order.  There is no hot loop: broadcasting and reshapes do the work on NumPy or CuPy arrays."""
import math
import numbers

from minicnn.autograd import Function, Tensor
from minicnn.backend import get_array_module

__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle", "UpsampleNearestFn"]


def _interleave(a, b):
    return tuple(v for pair in zip(a, b) for v in pair)


class UpsampleNearestFn(Function):
    """x (N, C, *S) -> y (N, C, *(S * scales)): every input pixel repeated into a block of ``scales``."""
    def __init__(self, scales):
        self.scales = tuple(scales)

    def forward(self, x):
        (N, C, *S), xp = x.shape, get_array_module(x)
        blocks = xp.broadcast_to(x.reshape(N, C, *_interleave(S, [1] * len(S))), (N, C, *_interleave(S, self.scales)))
        return blocks.reshape(N, C, *(n * s for n, s in zip(S, self.scales)))       # a copy: blocks is a view

    def backward(self, gy):                      # each input pixel collects the gradient of its whole block
        N, C, *S = gy.shape
        S = [n // s for n, s in zip(S, self.scales)]
        return gy.reshape(N, C, *_interleave(S, self.scales)).sum(axis=tuple(3 + 2 * i for i in range(len(S))))


def _check(op, input, min_ndim):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < min_ndim:
        raise ValueError(f"{op}: input must have at least {min_ndim} dims, got shape {input.shape}")


def _factor(op, name, v):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {v!r}")
    return int(v)


def interpolate(input, size=None, scale_factor=None, mode="nearest"):
    """Nearest-neighbour upsampling of (N, C, L), (N, C, H, W) or (N, C, D, H, W) by integer factors, as PyTorch's
    ``interpolate(mode='nearest')``: output pixel o copies input pixel o // factor.  Give ``size`` (int or one per
    spatial dim; multiples of the input size) or ``scale_factor`` (positive integers, e.g. 2 or 2.0)."""
    op = "interpolate"
    _check(op, input, 3)
    if mode != "nearest":
        raise ValueError(f"{op}: mode {mode!r} is not supported; minicnn implements 'nearest' (integer scale) only")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size or scale_factor (got size={size!r}, "
                         f"scale_factor={scale_factor!r})")
    S, dims = input.shape[2:], input.ndim - 2
    given = size if size is not None else scale_factor
    given = tuple(given) if isinstance(given, (tuple, list)) else (given,) * dims
    if len(given) != dims:
        raise ValueError(f"{op}: {'size' if size is not None else 'scale_factor'} {given} needs {dims} entries "
                         f"for input of shape {input.shape}")
    if size is not None:
        if any(not isinstance(o, numbers.Integral) or o < 1 or o % n for o, n in zip(given, S)):
            raise ValueError(f"{op}: size {given} is not a positive integer multiple of the input size {S}; "
                             f"only integer nearest upsampling is supported")
        scales = tuple(int(o) // n for o, n in zip(given, S))
    else:
        if any(not isinstance(f, numbers.Real) or not math.isfinite(f) or f < 1 or f != int(f) for f in given):
            raise ValueError(f"{op}: scale_factor {scale_factor!r} must be positive integers; only integer "
                             f"nearest upsampling is supported")
        scales = tuple(int(f) for f in given)
    return UpsampleNearestFn(scales)(input)


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r): output pixel (h * r + i, w * r + j) of channel c is input channel
    c * r^2 + i * r + j at (h, w) (PyTorch's order; Shi et al. 2016)."""
    op = "pixel_shuffle"
    _check(op, input, 3)
    r = _factor(op, "upscale_factor", upscale_factor)
    *B, C, H, W = input.shape
    if C % (r * r):
        raise ValueError(f"{op}: input channels {C} (shape {input.shape}) are not divisible by "
                         f"upscale_factor**2 = {r * r}")
    b = len(B)
    x = input.reshape(*B, C // (r * r), r, r, H, W).permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return x.reshape(*B, C // (r * r), H * r, W * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W), the inverse of ``pixel_shuffle``: input pixel (h * r + i, w * r + j)
    of channel c goes to channel c * r^2 + i * r + j at (h, w)."""
    op = "pixel_unshuffle"
    _check(op, input, 3)
    r = _factor(op, "downscale_factor", downscale_factor)
    *B, C, H, W = input.shape
    if H % r or W % r:
        raise ValueError(f"{op}: spatial size {H}x{W} (shape {input.shape}) is not divisible by "
                         f"downscale_factor {r}")
    b = len(B)
    x = input.reshape(*B, C, H // r, r, W // r, r).permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return x.reshape(*B, C * r * r, H // r, W // r)
