"""Convolutions: conv2d (im2col + GEMM, grouped, depthwise) and its adjoint conv_transpose2d (GEMM + col2im).

A convolution of an image ``x (N, C, H, W)`` with ``W (OC, C/G, KH, KW)`` in ``G`` groups is, per image and group,
one GEMM on im2col's columns: ``y[n, g] = W[g] (OC/G, C/G*KH*KW) @ cols[n, g] (C/G*KH*KW, OH*OW)``; ``xp.matmul``
broadcasts it over the batch and the groups (BLAS on the CPU, cuBLAS on the GPU) with no Python loop.  Three array
functions make both ops and both directions:

    _conv(x, W)          im2col + GEMM    conv2d forward,   conv_transpose2d backward (gx)
    _conv_t(y, W)        GEMM + col2im    conv2d backward (gx), conv_transpose2d forward
    _weight_grad(x, gy)  im2col + GEMM    the gradient of W, both ops (image and output swap roles)

Columns are recomputed in backward rather than kept from forward: they are KH*KW times the input's size.
``groups == in_channels > 1`` (depthwise, MobileNet) runs the direct kernels of ``kernels/depthwise.py`` instead.
"""
from collections import namedtuple

import numpy as np

from minicnn.autograd import Function, Tensor
from minicnn.backend import get_array_module
from minicnn.kernels import depthwise, im2col
from minicnn.functional._args import pair as _pair

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFn", "ConvTranspose2dFn", "DepthwiseConv2dFn"]

Geometry = namedtuple("Geometry", "kernel stride padding dilation groups out_size")
"""One conv2d from an image to its output: pairs (per axis) for kernel, stride, top/left padding, dilation and
the output size (which fixes the bottom/right padding), and the number of groups."""


# ---- the three array functions ----------------------------------------------------------------------------------
def _columns(x, g):
    """im2col of x into a reused buffer, viewed per group: (N, G, C/G*KH*KW, OH*OW)."""
    N, C = x.shape[:2]
    L = g.out_size[0] * g.out_size[1]
    buf = im2col.scratch("cols", (N, C * g.kernel[0] * g.kernel[1], L), x.dtype, get_array_module(x))
    cols = im2col.im2col(x, g.kernel, g.stride, g.padding, g.dilation, g.out_size, out=buf)
    return cols.reshape(N, g.groups, -1, L)


def _conv(x, W, g):
    """x (N, C, H, W) -> y (N, OC, OH, OW) = conv2d(x, W) without bias."""
    N, OC, G = x.shape[0], W.shape[0], g.groups
    y = get_array_module(x).matmul(W.reshape(G, OC // G, -1), _columns(x, g))        # (N, G, OC/G, OH*OW)
    return y.reshape(N, OC, *g.out_size)


def _conv_t(y, W, g, x_shape):
    """y (N, OC, OH, OW) -> x of x_shape (N, C, H, W): the adjoint of ``_conv`` (so conv2d's input gradient)."""
    xp, N, OC, G = get_array_module(y), y.shape[0], W.shape[0], g.groups
    Wt = W.reshape(G, OC // G, -1).transpose(0, 2, 1)                                  # (G, C/G*KH*KW, OC/G)
    gcols = im2col.scratch("gcols", (N, G, Wt.shape[1], y.shape[2] * y.shape[3]), y.dtype, xp)
    xp.matmul(Wt, y.reshape(N, G, OC // G, -1), out=gcols)
    return im2col.col2im(gcols.reshape(N, -1, gcols.shape[3]), x_shape, g.kernel, g.stride, g.padding,
                         g.dilation, g.out_size)


def _weight_grad(x, gy, g, W_shape):
    """gW (OC, C/G, KH, KW) = sum over images of gy[n, g] @ cols[n, g]^T."""
    N, OC, G = gy.shape[0], gy.shape[1], g.groups
    cols = _columns(x, g)
    gW = get_array_module(x).matmul(gy.reshape(N, G, OC // G, -1), cols.transpose(0, 1, 3, 2))
    return gW.sum(axis=0).reshape(W_shape)


def _needs_grad(fn, i):
    """Whether input i of fn's call wants a gradient (skips e.g. the input image's GEMM and col2im)."""
    return i < len(fn.inputs) and fn.inputs[i].requires_grad


# ---- Functions ----------------------------------------------------------------------------------------------------
class Conv2dFn(Function):
    """y = conv2d(x, W) + b.  x (N, C, H, W), W (OC, C/G, KH, KW), b (OC,) optional -> y (N, OC, OH, OW)."""
    def __init__(self, geometry):
        self.g = geometry

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y = _conv(x, W, self.g)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        gx = _conv_t(gy, self.W, self.g, self.x.shape) if _needs_grad(self, 0) else None
        gW = _weight_grad(self.x, gy, self.g, self.W.shape) if _needs_grad(self, 1) else None
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


class ConvTranspose2dFn(Function):
    """y = conv_transpose2d(x, W) + b, the adjoint of conv2d with the same geometry (that of the conv2d mapping
    y's shape to x's).  x (N, C, H, W), W (C, OC/G, KH, KW), b (OC,) optional -> y ``y_shape`` (N, OC, HO, WO)."""
    def __init__(self, geometry, y_shape):
        self.g, self.y_shape = geometry, tuple(y_shape)

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y = _conv_t(x, W, self.g, self.y_shape)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        gx = _conv(gy, self.W, self.g) if _needs_grad(self, 0) else None
        gW = _weight_grad(gy, self.x, self.g, self.W.shape) if _needs_grad(self, 1) else None
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


class DepthwiseConv2dFn(Function):
    """conv2d with groups == in_channels by direct loops.  x (N, C, H, W), W (C*M, 1, KH, KW), b (C*M,) optional."""
    def __init__(self, geometry):
        self.g = geometry

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        g = self.g
        y = depthwise.depthwise_forward(x, W, g.stride, g.padding, g.dilation, g.out_size)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        g = self.g
        gx = depthwise.depthwise_grad_input(gy, self.W, self.x.shape, g.stride, g.padding, g.dilation) \
            if _needs_grad(self, 0) else None
        gW = depthwise.depthwise_grad_weight(gy, self.x, self.W.shape, g.stride, g.padding, g.dilation) \
            if _needs_grad(self, 1) else None
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


# ---- argument checks ----------------------------------------------------------------------------------------------
def _check_tensors(op, input, weight, bias):
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be floating point, got dtype {t.dtype}")
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: {name} dtype {t.dtype} differs from input dtype {input.dtype}")
    if input.ndim != 4:
        raise ValueError(f"{op}: input must be 4-d (N, C, H, W), got shape {input.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-d, got shape {weight.shape}")


def _check_groups(op, groups, in_channels, out_channels, weight):
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide in_channels={in_channels} and "
                         f"out_channels={out_channels} (weight {weight.shape})")


def _check_bias(op, bias, out_channels):
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{op}: bias shape {bias.shape} should be ({out_channels},) for {out_channels} "
                         f"output channels")


# ---- public functions ---------------------------------------------------------------------------------------------
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation as PyTorch: input (N, C, H, W) or (C, H, W), weight (OC, C/groups, KH, KW), bias (OC,).

    ``padding``: an int, a pair, ``"valid"`` (none) or ``"same"`` (output size = input size; stride 1 only; when the
    total padding ``dilation * (k - 1)`` is odd the extra row/column goes on the bottom/right, as PyTorch)."""
    op = "conv2d"
    if isinstance(input, Tensor) and input.ndim == 3:
        y = conv2d(input.reshape(1, *input.shape), weight, bias, stride, padding, dilation, groups)
        return y.reshape(*y.shape[1:])
    _check_tensors(op, input, weight, bias)
    (N, C, H, W), (OC, Cg, KH, KW) = input.shape, weight.shape
    stride, dilation = _pair(op, "stride", stride, 1), _pair(op, "dilation", dilation, 1)
    _check_groups(op, groups, C, OC, weight)
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels but weight {weight.shape} with groups={groups} "
                         f"expects {Cg * groups}")
    _check_bias(op, bias, OC)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
        padding = (dilation[0] * (KH - 1) // 2, dilation[1] * (KW - 1) // 2)      # top/left; the rest bottom/right
        out_size = (H, W)
    else:
        if isinstance(padding, str) and padding != "valid":
            raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair of ints, got {padding!r}")
        padding = (0, 0) if padding == "valid" else _pair(op, "padding", padding, 0)
        out_size = tuple(im2col.conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                         zip((H, W), (KH, KW), stride, padding, dilation))
    if min(out_size) < 1:
        raise ValueError(f"{op}: kernel {KH}x{KW} (dilation {dilation}) is larger than the padded input: input "
                         f"{H}x{W}, padding {padding}")
    g = Geometry((KH, KW), stride, padding, dilation, int(groups), out_size)
    fn = DepthwiseConv2dFn(g) if groups == C and groups > 1 else Conv2dFn(g)
    return fn(input, weight) if bias is None else fn(input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution as PyTorch (the gradient of conv2d with respect to its input): input (N, C, H, W)
    or (C, H, W), weight (C, OC/groups, KH, KW), bias (OC,) -> (N, OC, HO, WO) with
    ``HO = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1``."""
    op = "conv_transpose2d"
    if isinstance(input, Tensor) and input.ndim == 3:
        y = conv_transpose2d(input.reshape(1, *input.shape), weight, bias, stride, padding, output_padding,
                             groups, dilation)
        return y.reshape(*y.shape[1:])
    _check_tensors(op, input, weight, bias)
    (N, C, H, W), (Cw, OCg, KH, KW) = input.shape, weight.shape
    stride, dilation = _pair(op, "stride", stride, 1), _pair(op, "dilation", dilation, 1)
    padding, output_padding = _pair(op, "padding", padding, 0), _pair(op, "output_padding", output_padding, 0)
    if Cw != C:
        raise ValueError(f"{op}: input has {C} channels but weight {weight.shape} expects {Cw} (weight is "
                         f"(in_channels, out_channels/groups, KH, KW))")
    _check_groups(op, groups, C, OCg * groups, weight)
    _check_bias(op, bias, OCg * groups)
    for a in range(2):
        if output_padding[a] >= stride[a] and output_padding[a] >= dilation[a]:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride "
                             f"{stride} or dilation {dilation}")
    y_size = tuple((n - 1) * s - 2 * p + d * (k - 1) + op_ + 1 for n, s, p, d, k, op_ in
                   zip((H, W), stride, padding, dilation, (KH, KW), output_padding))
    if min(y_size) < 1:
        raise ValueError(f"{op}: output size {y_size} is not positive: input {H}x{W}, kernel {KH}x{KW}, "
                         f"padding {padding}")
    g = Geometry((KH, KW), stride, padding, dilation, int(groups), (H, W))     # the conv2d from y back to x
    fn = ConvTranspose2dFn(g, (N, OCg * groups) + y_size)
    return fn(input, weight) if bias is None else fn(input, weight, bias)
