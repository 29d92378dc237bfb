"""Convolutions: conv2d (several algorithms, chosen per shape; grouped; depthwise) and its adjoint conv_transpose2d.

A convolution has three passes: the forward ``y = conv(x, W)``, the input gradient ``gx = conv^T(gy, W)`` (which
is also conv_transpose2d's forward) and the weight gradient ``gW``.  Each algorithm below implements all three
for the geometries it can run (its ``applies``):

    im2col        im2col + a GEMM per image: ``y[n, g] = W[g] (OC/G, C/G*KH*KW) @ cols[n, g]``; ``xp.matmul``
                  broadcasts it over the batch and the groups (BLAS on the CPU, cuBLAS on the GPU); gx is
                  ``W^T @ gy`` folded back by col2im, gW the sum over images of ``gy[n] @ cols[n]^T``
    im2col_gemm   the same with one GEMM over the whole batch (columns (C/G*KH*KW, N*OH*OW)): bigger GEMMs,
                  but the output and the upstream gradient need a transposing copy
    gemm_1x1      1x1 filters without padding: the (strided) image is already the column matrix
    winograd      F(4x4, 3x3) for 3x3 stride-1 filters: a quarter of the multiplies (kernels/winograd.py)
    direct        plain loops over a few channels (kernels/direct_conv.py)

``mc.backends.conv_algorithm`` picks one (``"auto"``: the fastest, measured on the first call of each shape and
pass, see minicnn/backends.py).  Columns are recomputed in backward rather than kept from forward: they are
KH*KW times the input's size.  ``groups == in_channels > 1`` (depthwise, MobileNet) runs the direct kernels of
``kernels/depthwise.py``.
"""
import time
from collections import namedtuple

import numpy as np

from minicnn import backends
from minicnn.autograd import Function, Tensor
from minicnn.backend import SIMULATED, get_array_module, scratch, synchronize
from minicnn.kernels import depthwise, direct_conv, im2col, winograd
from minicnn.functional._args import pair as _pair

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFn", "ConvTranspose2dFn", "DepthwiseConv2dFn", "ALGORITHMS"]

Geometry = namedtuple("Geometry", "kernel stride padding dilation groups out_size")
"""One conv2d from an image to its output: pairs (per axis) for kernel, stride, top/left padding, dilation and
the output size (which fixes the bottom/right padding), and the number of groups."""


# ---- im2col + a GEMM per image ------------------------------------------------------------------------------------
def _columns(x, g, layout):
    """im2col of x into a reused buffer: (N, C*KH*KW, L) per image or (C*KH*KW, N*L) for the whole batch."""
    N, C, R, L = x.shape[0], x.shape[1], x.shape[1] * g.kernel[0] * g.kernel[1], g.out_size[0] * g.out_size[1]
    buf = scratch("cols", (N, R, L) if layout == "batched" else (R, N * L), x.dtype, x)
    return im2col.im2col(x, g.kernel, g.stride, g.padding, g.dilation, g.out_size, out=buf, layout=layout)


def _im2col_forward(x, W, g):
    N, OC, G, L = x.shape[0], W.shape[0], g.groups, g.out_size[0] * g.out_size[1]
    cols = _columns(x, g, "batched").reshape(N, G, -1, L)
    y = get_array_module(x).matmul(W.reshape(G, OC // G, -1), cols)                 # (N, G, OC/G, L)
    return y.reshape(N, OC, *g.out_size)


def _im2col_input_grad(gy, W, g, x_shape):
    xp, N, OC, G = get_array_module(gy), gy.shape[0], W.shape[0], g.groups
    Wt = W.reshape(G, OC // G, -1).transpose(0, 2, 1)                                 # (G, C/G*KH*KW, OC/G)
    gcols = scratch("gcols", (N, G, Wt.shape[1], gy.shape[2] * gy.shape[3]), gy.dtype, gy)
    xp.matmul(Wt, gy.reshape(N, G, OC // G, -1), out=gcols)
    return im2col.col2im(gcols.reshape(N, -1, gcols.shape[3]), x_shape, g.kernel, g.stride, g.padding,
                         g.dilation, g.out_size)


def _im2col_weight_grad(x, gy, g, W_shape):
    """gW[g] = sum over images of (cols[n, g] @ gy[n, g]^T)^T: the small gy is the transposed operand (CuPy's
    matmul makes both operands contiguous, and the columns are the big one)."""
    N, OC, G = gy.shape[0], gy.shape[1], g.groups
    cols = _columns(x, g, "batched").reshape(N, G, -1, gy.shape[2] * gy.shape[3])
    gWt = get_array_module(x).matmul(cols, gy.reshape(N, G, OC // G, -1).transpose(0, 1, 3, 2))
    return gWt.sum(axis=0).transpose(0, 2, 1).reshape(W_shape)                       # (G, C/G*KH*KW, OC/G) summed


# ---- im2col + one GEMM over the whole batch -------------------------------------------------------------------------
def _batch_major(a, G):
    """(N, C, H, W) -> (G, C/G, N*H*W) contiguous, in a reused buffer: the GEMM operand layout."""
    N, C = a.shape[:2]
    out = scratch("batch_major", (C, N, a.shape[2] * a.shape[3]), a.dtype, a)
    out[...] = a.reshape(N, C, -1).transpose(1, 0, 2)
    return out.reshape(G, C // G, -1)


def _gemm_forward(x, W, g):
    xp, N, OC, G = get_array_module(x), x.shape[0], W.shape[0], g.groups
    cols = _columns(x, g, "gemm").reshape(G, -1, N * g.out_size[0] * g.out_size[1])
    y = xp.matmul(W.reshape(G, OC // G, -1), cols).reshape(OC, N, -1)                # (G, OC/G, N*L)
    return xp.ascontiguousarray(y.transpose(1, 0, 2)).reshape(N, OC, *g.out_size)


def _gemm_input_grad(gy, W, g, x_shape):
    xp, OC, G = get_array_module(gy), W.shape[0], g.groups
    Wt = W.reshape(G, OC // G, -1).transpose(0, 2, 1)
    gyb = _batch_major(gy, G)                                                         # (G, OC/G, N*L)
    gcols = scratch("gcols", (G, Wt.shape[1], gyb.shape[2]), gy.dtype, gy)
    xp.matmul(Wt, gyb, out=gcols)
    return im2col.col2im(gcols.reshape(-1, gyb.shape[2]), x_shape, g.kernel, g.stride, g.padding, g.dilation,
                         g.out_size, layout="gemm")


def _gemm_weight_grad(x, gy, g, W_shape):
    xp, G = get_array_module(x), g.groups
    gyb = _batch_major(gy, G)                                                         # (G, OC/G, N*L)
    cols = _columns(x, g, "gemm").reshape(G, -1, gyb.shape[2])                        # (G, C/G*KH*KW, N*L)
    gWt = xp.matmul(cols, gyb.transpose(0, 2, 1))                                      # (G, C/G*KH*KW, OC/G)
    return xp.ascontiguousarray(gWt.transpose(0, 2, 1)).reshape(W_shape)


# ---- 1x1 filters: no columns at all -------------------------------------------------------------------------------
def _strided(x, g):
    """The pixels a 1x1 filter reads: x itself at stride 1, else every stride-th pixel (a copy)."""
    (SH, SW), (OH, OW) = g.stride, g.out_size
    if (SH, SW) == (1, 1) and tuple(x.shape[2:]) == (OH, OW):
        return x
    return get_array_module(x).ascontiguousarray(x[:, :, :OH * SH:SH, :OW * SW:SW])


def _1x1_forward(x, W, g):
    N, C, OC, G = x.shape[0], x.shape[1], W.shape[0], g.groups
    xs = _strided(x, g).reshape(N, G, C // G, -1)
    return get_array_module(x).matmul(W.reshape(G, OC // G, -1), xs).reshape(N, OC, *g.out_size)


def _1x1_input_grad(gy, W, g, x_shape):
    xp, (N, C), OC, G = get_array_module(gy), x_shape[:2], W.shape[0], g.groups
    gxs = xp.matmul(W.reshape(G, OC // G, -1).transpose(0, 2, 1), gy.reshape(N, G, OC // G, -1))
    (SH, SW), (OH, OW) = g.stride, g.out_size
    if (SH, SW) == (1, 1) and tuple(x_shape[2:]) == (OH, OW):
        return gxs.reshape(x_shape)
    gx = xp.zeros(x_shape, gy.dtype)                       # only every stride-th pixel was read
    gx[:, :, :OH * SH:SH, :OW * SW:SW] = gxs.reshape(N, C, OH, OW)
    return gx


def _1x1_weight_grad(x, gy, g, W_shape):
    N, C, OC, G = x.shape[0], x.shape[1], gy.shape[1], g.groups
    xs = _strided(x, g).reshape(N, G, C // G, -1)
    gWt = get_array_module(x).matmul(xs, gy.reshape(N, G, OC // G, -1).transpose(0, 1, 3, 2))
    return gWt.sum(axis=0).transpose(0, 2, 1).reshape(W_shape)


# ---- Winograd F(4x4, 3x3) -----------------------------------------------------------------------------------------
def _winograd_forward(x, W, g):
    return winograd.conv3x3(x, W, g.padding, g.out_size)


def _winograd_input_grad(gy, W, g, x_shape):
    """A 3x3 stride-1 correlation of gy with the filters transposed (OC <-> C) and turned by 180 degrees; tap ky
    of the forward reaches input row iy from output row iy + PH - ky, so the padding becomes 2 - PH."""
    Wf = get_array_module(W).ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    return winograd.conv3x3(gy, Wf, (2 - g.padding[0], 2 - g.padding[1]), tuple(x_shape[2:]))


def _winograd_weight_grad(x, gy, g, W_shape):
    return winograd.conv3x3_weight_grad(x, gy, g.padding)


# ---- direct loops -------------------------------------------------------------------------------------------------
def _direct_forward(x, W, g):
    return direct_conv.conv_forward(x, W, g.stride, g.padding, g.dilation, g.out_size)


def _direct_input_grad(gy, W, g, x_shape):
    return direct_conv.conv_grad_input(gy, W, x_shape, g.stride, g.padding, g.dilation)


def _direct_weight_grad(x, gy, g, W_shape):
    return direct_conv.conv_grad_weight(x, gy, W_shape, g.stride, g.padding, g.dilation)


# ---- the algorithms and the choice among them ---------------------------------------------------------------------
Algorithm = namedtuple("Algorithm", "forward input_grad weight_grad applies")


def _winograd_applies(g, C):
    return (g.kernel == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1) and g.groups == 1
            and max(g.padding) <= 2)


ALGORITHMS = {
    "im2col": Algorithm(_im2col_forward, _im2col_input_grad, _im2col_weight_grad, lambda g, C: True),
    "im2col_gemm": Algorithm(_gemm_forward, _gemm_input_grad, _gemm_weight_grad, lambda g, C: True),
    "gemm_1x1": Algorithm(_1x1_forward, _1x1_input_grad, _1x1_weight_grad,
                          lambda g, C: g.kernel == (1, 1) and g.padding == (0, 0)),
    "winograd": Algorithm(_winograd_forward, _winograd_input_grad, _winograd_weight_grad, _winograd_applies),
    "direct": Algorithm(_direct_forward, _direct_input_grad, _direct_weight_grad,
                        lambda g, C: g.groups == 1 and C <= direct_conv.MAX_CHANNELS),
}
_PASS = {"forward": 0, "input_grad": 1, "weight_grad": 2}


def _run(which, args, g, x_shape, W_shape):
    """Run pass ``which`` ("forward", "input_grad", "weight_grad") with the algorithm ``mc.backends`` chooses;
    returns (result, algorithm name)."""
    C = x_shape[1] // g.groups
    usable = [name for name, a in ALGORITHMS.items() if a.applies(g, C)]
    choice = backends.conv_algorithm
    if choice != "auto":
        if choice not in ALGORITHMS:
            raise ValueError(f"conv2d: unknown mc.backends.conv_algorithm {choice!r}; expected 'auto' or one of "
                             f"{', '.join(ALGORITHMS)}")
        name = choice if choice in usable else "im2col"
        return ALGORITHMS[name][_PASS[which]](*args), name
    key = (which, type(args[0]).__name__, args[0].dtype.str, tuple(x_shape), tuple(W_shape), g)
    name = backends.conv_choices.get(key)
    if name is not None:
        return ALGORITHMS[name][_PASS[which]](*args), name
    timings, best = {}, None                     # first call of this shape: time every candidate, keep the fastest
    for name in usable:
        fn = ALGORITHMS[name][_PASS[which]]
        if not SIMULATED:
            fn(*args)                            # warm-up: compilation, buffers
        synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        synchronize()
        timings[name] = time.perf_counter() - t0
        if best is None or timings[name] < timings[best[0]]:
            best = name, out
    backends.conv_choices[key], backends.conv_timings[key] = best[0], timings
    return best[1], best[0]


def _needs_grad(fn, i):
    """Whether input i of fn's call wants a gradient (skips e.g. the input image's GEMM and col2im)."""
    return i < len(fn.inputs) and fn.inputs[i].requires_grad


# ---- Functions ----------------------------------------------------------------------------------------------------
class Conv2dFn(Function):
    """y = conv2d(x, W) + b.  x (N, C, H, W), W (OC, C/G, KH, KW), b (OC,) optional -> y (N, OC, OH, OW).

    ``algorithms`` records which algorithm ran each pass (for the profile)."""
    def __init__(self, geometry):
        self.g, self.algorithms = geometry, {}

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y, self.algorithms["forward"] = _run("forward", (x, W, self.g), self.g, x.shape, W.shape)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        g, gx, gW = self.g, None, None
        if _needs_grad(self, 0):
            gx, self.algorithms["input_grad"] = _run("input_grad", (gy, self.W, g, self.x.shape), g, self.x.shape,
                                                     self.W.shape)
        if _needs_grad(self, 1):
            gW, self.algorithms["weight_grad"] = _run("weight_grad", (self.x, gy, g, self.W.shape), g,
                                                      self.x.shape, self.W.shape)
        return (gx, gW) if len(self.inputs) == 2 else (gx, gW, gy.sum(axis=(0, 2, 3)))


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
