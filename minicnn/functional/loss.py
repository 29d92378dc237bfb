"""Losses with PyTorch's semantics: ``reduction`` is 'mean' (default), 'sum' or 'none'."""
import numpy as np

from minicnn import ops
from minicnn.autograd import Function, Tensor, constant
from minicnn.backend import device_of, get_array_module
from minicnn.functional.activation import log_softmax, relu

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "smooth_l1_loss",
           "triplet_margin_loss", "NLLLossFn", "BCEWithLogitsFn", "SmoothL1Fn"]


def _reduce(op, loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(op, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)} "
                         f"(minicnn does not broadcast losses)")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {input.dtype}")


class NLLLossFn(Function):
    """Per-sample -w[t] * logp[n, t] for logp (M, C), target (M,); ignored samples give 0."""
    def __init__(self, weight, ignore_index):
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, logp, target):
        xp = get_array_module(logp)
        valid = target != self.ignore_index
        outside = valid & ((target < 0) | (target >= logp.shape[1]))    # only unchecked device targets
        self.t = xp.where(valid & ~outside, target, 0)
        w = self.weight[self.t] if self.weight is not None else xp.ones(len(target), logp.dtype)
        self.w = (w * valid).astype(logp.dtype)
        self.shape, self.rows = logp.shape, xp.arange(len(target))
        return xp.where(outside, xp.nan, -logp[self.rows, self.t] * self.w).astype(logp.dtype, copy=False)

    def backward(self, gy):
        gx = get_array_module(gy).zeros(self.shape, gy.dtype)
        gx[self.rows, self.t] = -gy * self.w
        return gx, None


def _class_last(op, input, target):
    """(N, C, d1, ...) logits and (N, d1, ...) targets -> (M, C) and (M,), M = N * d1 * ..."""
    if input.ndim == 1:
        input, target = ops.unsqueeze(input, 0), ops.reshape(target, (1,))
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
        raise ValueError(f"{op}: target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}; "
                         f"expected {(input.shape[0],) + tuple(input.shape[2:])}")
    C = input.shape[1]
    if input.ndim > 2:
        input = ops.reshape(ops.permute(input, (0,) + tuple(range(2, input.ndim)) + (1,)), (-1, C))
        target = ops.reshape(target, (-1,))
    return input, target


def _check_targets(op, target, C, ignore_index):
    """Class indices in [0, C) or ignore_index, checked where they are on the host (before they are moved to the
    input's device).  Targets already on the GPU are not copied back to be checked (that would wait for the GPU
    at every step): the DataLoader checked its labels on the host, and an out-of-range device target makes its
    loss NaN (NLLLossFn) instead of reading a wrong class."""
    if isinstance(target, Tensor):
        if target.device != "cpu":
            return
        target = target.data
    if device_of(target) != "cpu":
        return
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        return                                    # probabilities, or an error _class_last reports
    bad = t[(t != ignore_index) & ((t < 0) | (t >= C))]
    if bad.size:
        raise ValueError(f"{op}: target holds class {int(bad[0])}, outside [0, {C}) for input with {C} classes")


def _weight(op, weight, C, like):
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else constant(np.asarray(weight, like.dtype), like.device).data
    if tuple(w.shape) != (C,):
        raise ValueError(f"{op}: weight shape {tuple(w.shape)} should be ({C},), one per class")
    return w.astype(like.dtype)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """input (N, C) or (N, C, d1, ...) log-probabilities, target (N, ...) class indices."""
    _check_targets("nll_loss", target, input.shape[1] if input.ndim > 1 else input.shape[0], ignore_index)
    return _nll("nll_loss", input, constant(target, input.device), weight, ignore_index, reduction)


def _nll(op, input, target, weight, ignore_index, reduction):
    logp, t = _class_last(op, input, target)
    fn = NLLLossFn(_weight(op, weight, logp.shape[1], logp), ignore_index)
    losses = fn(logp, t)
    if reduction == "mean":                       # weighted mean: divide by the total weight of the targets,
        return losses.sum() / constant(fn.w.sum(), input.device)    # kept on the device (0 / 0 = nan, as torch)
    return _reduce(op, losses if reduction != "none" else ops.reshape(losses, target.shape), reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax over dim 1, then nll_loss; ``target`` holds class indices, or class probabilities of the
    input's shape.  With ``label_smoothing`` e the target is (1 - e) one-hot + e / C uniform (Szegedy et al.
    2016, §7), computed as PyTorch does: (1 - e) * nll + e / C * sum_c -w_c logp_c."""
    if input.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input must be floating point, got dtype {input.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    _check_targets("cross_entropy", target, C, ignore_index)
    target = constant(target, input.device)
    logp = log_softmax(input, dim=1 if input.ndim > 1 else 0)
    w = _weight("cross_entropy", weight, C, input)
    if target.dtype.kind == "f":                  # class probabilities
        _same_shape("cross_entropy", input, target)
        probs = target * (1 - label_smoothing) + label_smoothing / C
        wb = 1 if w is None else constant(w.reshape((C,) + (1,) * (input.ndim - 2)), input.device)
        return _reduce("cross_entropy", -(logp * probs * wb).sum(axis=1 if input.ndim > 1 else 0), reduction)
    nll = _nll("cross_entropy", logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    lp, t = _class_last("cross_entropy", logp, target)
    valid = constant((t.data != ignore_index).astype(input.dtype)[:, None], input.device)
    wb = valid if w is None else valid * constant(w[None, :], input.device)
    smooth = -(lp * wb).sum(axis=1)
    if reduction == "mean":
        xp, kept = get_array_module(t.data), t.data != ignore_index
        total = (w[xp.where(kept, t.data, 0)] * kept).sum() if w is not None else kept.sum()
        smooth = smooth.sum() / constant(total.astype(input.dtype), input.device)        # on the device
    else:
        smooth = _reduce("cross_entropy", smooth if reduction != "none" else ops.reshape(smooth, target.shape), reduction)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / C)


def mse_loss(input, target, reduction="mean"):
    target = constant(target, input.device)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce("mse_loss", d * d, reduction)


class BCEWithLogitsFn(Function):
    """Per-element (1 - t) x + (1 + (pw - 1) t) softplus(-x), softplus(-x) = log(1 + e^-|x|) + max(-x, 0),
    which never overflows; d/dx = (1 - t) + (1 + (pw - 1) t) (sigmoid(x) - 1), d/dt = -x + (pw - 1) softplus(-x)."""
    def __init__(self, pos_weight):
        self.pos_weight = pos_weight

    def forward(self, x, t):
        xp = get_array_module(x)
        self.scale = 1 + (self.pos_weight - 1) * t if self.pos_weight is not None else 1
        self.x, self.t = x, t
        self.softplus = xp.log1p(xp.exp(-abs(x))) + xp.maximum(-x, 0)
        return (1 - t) * x + self.scale * self.softplus

    def backward(self, gy):                       # targets get a gradient too, as in PyTorch
        sig = 0.5 * (1 + get_array_module(gy).tanh(0.5 * self.x))
        gt = -self.x + (self.pos_weight - 1) * self.softplus if self.pos_weight is not None else -self.x
        return gy * ((1 - self.t) + self.scale * (sig - 1)), gy * gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    target = constant(target, input.device)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    pw = None if pos_weight is None else constant(pos_weight, input.device, input).data.astype(input.dtype)
    loss = BCEWithLogitsFn(pw)(input, target.to(dtype=input.dtype) if target.dtype != input.dtype else target)
    if weight is not None:
        loss = loss * constant(weight, input.device, input)
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


class SmoothL1Fn(Function):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (Girshick 2015, Fast R-CNN eq. 3 at beta=1)."""
    def __init__(self, beta):
        self.beta = beta

    def forward(self, x, t):
        xp = get_array_module(x)
        self.d = x - t
        a = abs(self.d)
        if self.beta == 0:
            return a
        return xp.where(a < self.beta, 0.5 * self.d * self.d / self.beta, a - 0.5 * self.beta)

    def backward(self, gy):
        xp = get_array_module(gy)
        g = xp.sign(self.d) if self.beta == 0 else xp.clip(self.d / self.beta, -1, 1)
        return gy * g, -gy * g


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    target = constant(target, input.device)
    _same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    return _reduce("smooth_l1_loss", SmoothL1Fn(beta)(input, target), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d the p-norm of the difference (+eps) over the last dim."""
    for name, t in (("positive", positive), ("negative", negative)):
        if tuple(t.shape) != tuple(anchor.shape):
            raise ValueError(f"triplet_margin_loss: {name} shape {tuple(t.shape)} must equal anchor shape "
                             f"{tuple(anchor.shape)}")

    def dist(a, b):
        return (abs(a - b + eps) ** p).sum(axis=-1) ** (1.0 / p)

    d_ap, d_an = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_an = ops.minimum(d_an, dist(positive, negative))
    return _reduce("triplet_margin_loss", relu(d_ap - d_an + margin), reduction)
