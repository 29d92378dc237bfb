"""Convolution layers: Conv2d and ConvTranspose2d, with PyTorch's arguments, attributes, init and repr."""
import math

import numpy as np

from minicnn.functional import conv2d, conv_transpose2d
from minicnn.nn import init
from minicnn.nn.module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


class _ConvNd(Module):
    """What both layers share: argument checks, the parameters, PyTorch's default init and repr."""
    def __init__(self, name, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, dtype):
        super().__init__()
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must both be "
                             f"divisible by groups={groups}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{name}: padding must be 'same', 'valid', an int or a pair, got {padding!r}")
        if padding == "same" and _pair(stride) != (1, 1):
            raise ValueError(f"{name}: padding='same' is not supported for strided convolutions (stride {stride})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.transposed, self.output_padding, self.padding_mode = transposed, _pair(output_padding), padding_mode
        shape = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self.weight = Parameter(np.empty(shape + self.kernel_size, dtype))
        self.bias = Parameter(np.empty(out_channels, dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming uniform with a = sqrt(5) (weights in +-1/sqrt(fan_in)), bias in +-1/sqrt(fan_in), as PyTorch."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-d convolution, weight (out_channels, in_channels / groups, KH, KW); input (N, C, H, W) or (C, H, W).

    ``padding_mode`` other than ``'zeros'`` pads the input explicitly first (reflect: mirror without repeating
    the edge, replicate: repeat the edge, circular: wrap around), as PyTorch."""
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0,
                         groups, bias, padding_mode, dtype)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return conv2d(self._pad(input), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _pad(self, x):
        """x padded by gathering rows and columns (the gather's backward sums the repeated indices)."""
        if self.padding == "same":                         # the extra row/column goes to the bottom/right
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            widths = [(t // 2, t - t // 2) for t in total]
        else:
            widths = [(p, p) for p in ((0, 0) if self.padding == "valid" else self.padding)]
        rows, cols = (_pad_index(n, *w, self.padding_mode) for n, w in zip(x.shape[-2:], widths))
        return x[..., rows[:, None], cols[None, :]]


def _pad_index(n, before, after, mode):
    """Source index of every position of an axis of length n padded by ``before`` and ``after``."""
    if mode in ("reflect", "circular") and max(before, after) > (n - 1 if mode == "reflect" else n):
        raise ValueError(f"Conv2d: padding ({before}, {after}) is too large for padding_mode={mode!r} on an input "
                         f"dimension of size {n}")
    i = np.arange(-before, n + after)
    if mode == "circular":
        return i % n
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    i = np.abs(i)                                           # reflect: -1 -> 1, n -> n - 2
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


class ConvTranspose2d(_ConvNd):
    """2-d transposed convolution (the gradient of Conv2d with respect to its input), weight
    (in_channels, out_channels / groups, KH, KW).  ``forward(input, output_size=None)``: an ``output_size``
    (H, W) (or longer, ending in H, W) picks the output_padding that reaches it, as PyTorch."""
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=np.float32):
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got {padding!r}")
        super().__init__("ConvTranspose2d", in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, dtype)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        size = tuple(output_size)[-2:]
        result = []
        for a, n in enumerate(input.shape[-2:]):
            smallest = (n - 1) * self.stride[a] - 2 * self.padding[a] + self.dilation[a] * (self.kernel_size[a] - 1) + 1
            if not smallest <= size[a] < smallest + self.stride[a]:
                raise ValueError(f"ConvTranspose2d: requested output size {size} is not reachable from input "
                                 f"{tuple(input.shape)}: dimension {a} must lie in [{smallest}, "
                                 f"{smallest + self.stride[a] - 1}]")
            result.append(size[a] - smallest)
        return tuple(result)
