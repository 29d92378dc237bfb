"""Convolutions: conv2d (grouped; depthwise) and its adjoint conv_transpose2d, on the algorithms of
``conv_algorithms.py`` (im2col + GEMM per image or over the batch, 1x1 GEMM, Winograd F(4x4, 3x3), direct
loops), chosen per shape and pass by ``mc.backends.conv_algorithm``.

conv_transpose2d's forward is conv2d's input gradient with the same geometry (that of the conv2d from its output
back to its input), and its input gradient conv2d's forward.  ``groups == in_channels > 1`` (depthwise,
MobileNet) runs the direct kernels of ``kernels/depthwise.py``.
"""
import numpy as np

from minicnn.autograd import Function, Tensor, is_grad_enabled
from minicnn.kernels import depthwise, im2col
from minicnn.functional._args import pair as _pair
from minicnn.functional.conv_algorithms import ALGORITHMS, Geometry, release as _release, run as _run

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFn", "ConvTranspose2dFn", "DepthwiseConv2dFn", "ALGORITHMS"]


def _needs_grad(fn, i):
    """Whether input i of fn's call wants a gradient (skips e.g. the input image's GEMM and col2im)."""
    return i < len(fn.inputs) and fn.inputs[i].requires_grad


# ---- Functions ----------------------------------------------------------------------------------------------------
class Conv2dFn(Function):
    """y = conv2d(x, W) + b.  x (N, C, H, W), W (OC, C/G, KH, KW), b (OC,) optional -> y (N, OC, OH, OW).

    ``algorithms`` records which algorithm ran each pass (for the profile)."""
    def __init__(self, geometry):
        self.g, self.algorithms = geometry, {}

    def __call__(self, x, W, *b):
        # what one pass leaves for a later one (Winograd's channels-last copies): the forward's copy of x for the
        # weight gradient, if there will be one; the input gradient's copy of gy for the weight gradient
        self.shared = {} if KEEP_X and is_grad_enabled() and getattr(W, "requires_grad", False) else None
        return super().__call__(x, W, *b)

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y, self.algorithms["forward"] = _run("forward", (x, W, self.g), self.g, x.shape, W.shape, self.shared,
                                             bias=b)
        return y

    def backward(self, gy):
        g, gx, gW = self.g, None, None
        shared = self.shared if self.shared is not None else {}
        if _needs_grad(self, 0):
            gx, self.algorithms["input_grad"] = _run("input_grad", (gy, self.W, g, self.x.shape), g, self.x.shape,
                                                     self.W.shape, shared)
        if _needs_grad(self, 1):
            gW, self.algorithms["weight_grad"] = _run("weight_grad", (self.x, gy, g, self.W.shape), g,
                                                      self.x.shape, self.W.shape, shared)
        _release(shared)                             # a second backward (retain_graph) copies x again
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


KEEP_X = True
"""Whether a convolution whose weight takes a gradient keeps what its forward prepared (Winograd's copy of x)
for its backward (conv_algorithms.py, the Winograd section); False copies x again in the backward (for A/B
timing)."""


class ConvTranspose2dFn(Function):
    """y = conv_transpose2d(x, W) + b, the adjoint of conv2d with the same geometry (that of the conv2d mapping
    y's shape to x's).  x (N, C, H, W), W (C, OC/G, KH, KW), b (OC,) optional -> y ``y_shape`` (N, OC, HO, WO)."""
    def __init__(self, geometry, y_shape):
        self.g, self.y_shape, self.algorithms = geometry, tuple(y_shape), {}

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y, self.algorithms["forward"] = _run("input_grad", (x, W, self.g, self.y_shape), self.g, self.y_shape,
                                             W.shape)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        g, gx, gW = self.g, None, None
        if _needs_grad(self, 0):
            gx, self.algorithms["input_grad"] = _run("forward", (gy, self.W, g), g, self.y_shape, self.W.shape)
        if _needs_grad(self, 1):
            gW, self.algorithms["weight_grad"] = _run("weight_grad", (gy, self.x, g, self.W.shape), g,
                                                      self.y_shape, self.W.shape)
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


class DepthwiseConv2dFn(Function):
    """conv2d with groups == in_channels by direct loops.  x (N, C, H, W), W (C*M, 1, KH, KW), b (C*M,) optional."""
    def __init__(self, geometry):
        self.g = geometry
        self.algorithms = {"forward": "depthwise", "input_grad": "depthwise", "weight_grad": "depthwise"}

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
