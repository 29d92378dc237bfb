"""``python -m minicnn verify``: every op on every device against its NumPy reference, and its float64 gradients.

For each op and each available device (``cpu``; ``cuda`` on a GPU or in Numba's simulator) one row: the forward in
float32 on small fixed inputs against the NumPy reference computed in float64 from the same (float32-rounded)
inputs -- the largest absolute error and the largest error relative to the reference's largest magnitude (so
outputs near zero do not inflate it) -- then ``mc.gradcheck`` in float64 on that device, then the time of one
float32 forward + backward.  A row passes when the relative error is <= its tolerance (1e-5 unless noted) and the
gradcheck passes.  The exit status is 1 when any row fails.  A user with a new GPU runs this first.

The gradcheck perturbs every element of each input (up to 256) on the CPU and on a real GPU; on the *simulated*
device, where every kernel launch runs its threads in Python, it perturbs 4 sampled elements per input (the
analytic gradient it checks there is still computed whole by the CUDA kernels).

The cases are a registry: one ``Case`` per op configuration in ``cases()``, with the op as a lambda so that an op
missing from the build shows up as an ERROR row instead of breaking the command.
"""
import argparse
import importlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.autograd import Tensor

__all__ = ["Case", "cases", "run_case", "main"]


@dataclass
class Case:
    """``fn(*inputs, *consts) -> Tensor`` against ``ref(*inputs, *consts) -> ndarray`` (float64 NumPy).

    ``inputs`` are float64 arrays that get gradients; ``consts`` are passed after them with none (labels, RoIs,
    masks; floating ones take the run's dtype).  The time is of one float32 forward + backward."""
    name: str
    fn: Callable
    ref: Callable
    inputs: list
    consts: list = field(default_factory=list)
    rtol: float = 1e-5
    grad: bool = True                                   # False: no gradient to check (box_iou, nms)


def _kernel(name):
    """A kernel module by name, imported when a case runs (the ops of a build in progress may be missing)."""
    return importlib.import_module(f"minicnn.kernels.{name}")


def _dv(*shape, seed=0, spacing=0.1):
    """Distinct values (pairwise >= spacing apart, none at 0): no ties for max, no kinks within gradcheck's eps."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n // 2) * spacing + spacing / 2
    return np.random.default_rng(seed).permutation(values).reshape(shape)


# ---- NumPy references for the ops whose kernel file has none of the whole op --------------------------------------
def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """im2col (the kernel file's reference) and one matmul per group."""
    im2col = _kernel("im2col")
    (N, C, H, W), (OC, Cg, KH, KW) = x.shape, w.shape
    k, s, p, d = (KH, KW), (stride,) * 2, (padding,) * 2, (dilation,) * 2
    out = tuple(im2col.conv_output_size(n, kk, stride, padding, dilation) for n, kk in zip((H, W), k))
    ys = [w[g * (OC // groups):(g + 1) * (OC // groups)].reshape(OC // groups, -1) @
          im2col.im2col_ref(x[:, g * Cg:(g + 1) * Cg], k, s, p, d, out) for g in range(groups)]
    y = np.concatenate(ys, axis=1).reshape(N, OC, *out)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The adjoint of conv2d: weight (C, OC / groups, KH, KW); col2im (the kernel file's reference) per group."""
    im2col = _kernel("im2col")
    (N, C, H, W), (_, OCg, KH, KW) = x.shape, w.shape
    OH, OW = ((n - 1) * stride - 2 * padding + dilation * (kk - 1) + output_padding + 1 for n, kk in ((H, KH), (W, KW)))
    Cg = C // groups
    ys = [im2col.col2im_ref(w[g * Cg:(g + 1) * Cg].reshape(Cg, -1).T @ x[:, g * Cg:(g + 1) * Cg].reshape(N, Cg, -1),
                            (N, OCg, OH, OW), (KH, KW), (stride,) * 2, (padding,) * 2, (dilation,) * 2, (H, W))
          for g in range(groups)]
    y = np.concatenate(ys, axis=1)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def batch_norm_ref(x, w, b, mean=None, var=None, eps=1e-5):
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes) if mean is None else mean
    var = x.var(axis=axes) if var is None else var
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def log_softmax_ref(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def cross_entropy_ref(x, t, label_smoothing=0.0):
    logp, C = log_softmax_ref(x), x.shape[1]
    q = (1 - label_smoothing) * np.eye(C)[t] + label_smoothing / C
    return -(q * logp).sum(axis=1).mean()


def triplet_ref(a, p, n, margin=1.0, eps=1e-6):
    d = lambda u, v: np.sqrt(((u - v + eps) ** 2).sum(axis=-1))
    return np.maximum(d(a, p) - d(a, n) + margin, 0).mean()


def roi_pool_ref(x, rois, output_size, spatial_scale):
    return _kernel("roi_pool").roi_pool_forward_ref(x, rois, output_size, spatial_scale)[0]


# ---- the registry ---------------------------------------------------------------------------------------------------
def cases():
    """Every op configuration checked, small enough for seconds on the CPU and for the CUDA simulator."""
    x4, t3 = _dv(2, 2, 5, 5, seed=1), np.array([0, 2, 1])
    rois = np.array([[0, 0.0, 0.0, 4.0, 4.0], [1, 1.0, 0.5, 3.0, 4.0], [0, 2.0, 2.0, 2.0, 3.0]])
    pool = lambda: _kernel("pool")
    rm, rv = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])
    corners = np.random.default_rng(0).uniform(0, 3, (8, 2))
    boxes = np.concatenate([corners, corners + np.random.default_rng(1).uniform(0.5, 2, (8, 2))], axis=1)
    return [
        Case("conv2d 3x3 s1 p1", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1),
             lambda x, w, b: conv2d_ref(x, w, b, 1, 1), [_dv(2, 2, 3, 3, seed=1), _dv(2, 2, 3, 3, seed=2),
                                                        _dv(2, seed=3)]),
        Case("conv2d s2 d2 groups=2", lambda x, w: F.conv2d(x, w, stride=2, padding=2, dilation=2, groups=2),
             lambda x, w: conv2d_ref(x, w, None, 2, 2, 2, 2), [_dv(1, 4, 5, 5, seed=4), _dv(2, 2, 3, 3, seed=5)]),
        Case("conv2d depthwise", lambda x, w: F.conv2d(x, w, padding=1, groups=3),
             lambda x, w: _kernel("depthwise").depthwise_forward_ref(x, w, (1, 1), (1, 1), (1, 1), (4, 4)),
             [_dv(2, 3, 4, 4, seed=6), _dv(3, 1, 3, 3, seed=7)]),
        Case("conv_transpose2d s2", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
             lambda x, w, b: conv_transpose2d_ref(x, w, b, 2, 1, 1), [_dv(1, 2, 3, 3, seed=8),
                                                                        _dv(2, 3, 3, 3, seed=9), _dv(3, seed=10)]),
        Case("max_pool2d 3 s2 p1", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
             lambda x: pool().max_pool_forward_ref(x, 3, 2, 1)[0], [x4]),
        Case("max_pool2d 2 ceil_mode", lambda x: F.max_pool2d(x, 2, ceil_mode=True),
             lambda x: pool().max_pool_forward_ref(x, 2, 2, 0, 1, True)[0], [x4]),
        Case("avg_pool2d 3 s2 p1", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
             lambda x: pool().avg_pool_forward_ref(x, 3, 2, 1), [x4]),
        Case("avg_pool2d no pad count", lambda x: F.avg_pool2d(x, 2, padding=1, count_include_pad=False),
             lambda x: pool().avg_pool_forward_ref(x, 2, 2, 1, False, False), [x4]),
        Case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
             lambda x: _kernel("adaptive_pool").adaptive_avg_pool_forward_ref(x, (2, 3)), [x4]),
        Case("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (3, 2)),
             lambda x: _kernel("adaptive_pool").adaptive_max_pool_forward_ref(x, (3, 2))[0], [x4]),
        Case("roi_pool", lambda x, r: F.roi_pool(x, r, (2, 2), 0.5), lambda x, r: roi_pool_ref(x, r, (2, 2), 0.5),
             [_dv(2, 2, 4, 4, seed=11)], [rois]),
        Case("interpolate nearest x2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
             lambda x: x.repeat(2, axis=2).repeat(2, axis=3), [_dv(1, 2, 2, 3, seed=12)]),
        Case("pixel_unshuffle 2", lambda x: F.pixel_unshuffle(x, 2),
             lambda x: x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 8, 2, 3),
             [_dv(1, 2, 4, 6, seed=13)]),
        Case("batch_norm train 2d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             batch_norm_ref, [_dv(4, 3, 2, 2, seed=14), _dv(3, seed=15) + 1, _dv(3, seed=16)]),
        Case("batch_norm train 1d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             batch_norm_ref, [_dv(5, 3, seed=17), _dv(3, seed=18) + 1, _dv(3, seed=19)]),
        Case("batch_norm eval", lambda x, w, b, m, v: F.batch_norm(x, m, v, w, b, training=False),
             batch_norm_ref, [_dv(2, 3, 2, 2, seed=20), _dv(3, seed=21) + 1, _dv(3, seed=22)], [rm, rv]),
        Case("local_response_norm", lambda x: F.local_response_norm(x, 3, alpha=0.5, beta=0.75, k=1.0),
             lambda x: _kernel("lrn").lrn_forward_ref(x, 3, 0.5, 0.75, 1.0)[0], [_dv(2, 5, 2, 2, seed=23)]),
        Case("dropout (fixed mask)", lambda x, m: F.DropoutFn(m.data)(x), lambda x, m: x * m,
             [_dv(3, 4, seed=24)], [(np.arange(12).reshape(3, 4) % 3 > 0) / (2 / 3)]),
        Case("box_iou", F.box_iou, lambda a, b: _kernel("nms").box_iou_ref(a, b), [boxes, boxes[:4]], grad=False),
        Case("nms 0.3", lambda b, s: F.nms(b, s, 0.3), lambda b, s: _kernel("nms").nms_ref(b, s, 0.3),
             [boxes, np.arange(8) % 3 * 0.25], grad=False),
        Case("linear", F.linear, lambda x, w, b: x @ w.T + b, [_dv(3, 4, seed=25), _dv(5, 4, seed=26),
                                                               _dv(5, seed=27)]),
        Case("relu", F.relu, lambda x: np.maximum(x, 0), [_dv(3, 4, seed=28)]),
        Case("leaky_relu 0.1", lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x),
             [_dv(3, 4, seed=29)]),
        Case("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [_dv(3, 4, seed=30)]),
        Case("tanh", F.tanh, np.tanh, [_dv(3, 4, seed=31)]),
        Case("softmax", lambda x: F.softmax(x, dim=1), lambda x: np.exp(log_softmax_ref(x)), [_dv(3, 4, seed=32)]),
        Case("log_softmax", lambda x: F.log_softmax(x, dim=1), log_softmax_ref, [_dv(3, 4, seed=33)]),
        Case("cross_entropy smooth=0.1", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
             lambda x, t: cross_entropy_ref(x, t, 0.1), [_dv(3, 4, seed=34)], [t3]),
        Case("nll_loss", F.nll_loss, lambda x, t: -x[np.arange(3), t].mean(), [_dv(3, 4, seed=35)], [t3]),
        Case("mse_loss", F.mse_loss, lambda x, y: ((x - y) ** 2).mean(), [_dv(3, 4, seed=36), _dv(3, 4, seed=37)]),
        Case("bce_with_logits", F.binary_cross_entropy_with_logits,
             lambda x, y: (np.maximum(x, 0) - x * y + np.log1p(np.exp(-abs(x)))).mean(),
             [_dv(3, 4, seed=38)], [np.linspace(0, 1, 12).reshape(3, 4)]),
        Case("smooth_l1_loss", F.smooth_l1_loss, lambda x, y: np.where(abs(x - y) < 1, 0.5 * (x - y) ** 2,
                                                                      abs(x - y) - 0.5).mean(),
             [_dv(3, 4, seed=39, spacing=0.3), _dv(3, 4, seed=40, spacing=0.3)]),
        Case("triplet_margin_loss", F.triplet_margin_loss, triplet_ref,
             [_dv(3, 4, seed=41), _dv(3, 4, seed=42), _dv(3, 4, seed=43)]),
    ]


# ---- running a case -------------------------------------------------------------------------------------------------
def _tensors(arrays, dtype, device, requires_grad=False):
    return [Tensor(a.astype(dtype) if a.dtype.kind == "f" else a, dtype=dtype if a.dtype.kind == "f" else None,
                   device=device, requires_grad=requires_grad) for a in arrays]


def _step(case, inputs, cs, device):
    """One float32 call of the op (and its backward, for differentiable ops): (output, seconds)."""
    xs = _tensors(inputs, np.float32, device, requires_grad=case.grad)
    start = time.perf_counter()
    y = case.fn(*xs, *cs)
    if case.grad:
        y.backward(Tensor(np.random.default_rng(0).standard_normal(y.shape), dtype=np.float32, device=device))
    backend.synchronize()
    return y, xs, time.perf_counter() - start


def run_case(case, device):
    """One row: ``{"op", "device", "abs", "rel", "grad", "ms", "ok", "error"}``."""
    row = {"op": case.name, "device": device, "abs": None, "rel": None, "grad": "-", "ms": None, "error": ""}
    try:
        inputs, consts = [np.asarray(a, np.float64) for a in case.inputs], [np.asarray(a) for a in case.consts]
        cs = _tensors(consts, np.float32, device)
        y, xs, _ = _step(case, inputs, cs, device)       # the first call also compiles the kernels
        rounded = [np.asarray(a.astype(np.float32), np.float64) if a.dtype.kind == "f" else a for a in consts]
        ref = np.asarray(case.ref(*[np.asarray(t.numpy(), np.float64) for t in xs], *rounded), np.float64)
        if y.shape != ref.shape:
            raise AssertionError(f"output shape {y.shape}, reference {ref.shape}")
        err = np.abs(y.numpy().astype(np.float64) - ref)
        row["abs"] = float(err.max()) if err.size else 0.0
        row["rel"] = row["abs"] / max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-30)
        row["ms"] = 1e3 * _step(case, inputs, cs, device)[2]
        if case.grad:
            cs64 = _tensors(consts, np.float64, device)
            sampled = 4 if device == "cuda" and backend.SIMULATED else 256
            try:
                mc.gradcheck(lambda *ts: case.fn(*ts, *cs64), _tensors(inputs, np.float64, device),
                             max_elements=sampled)
                row["grad"] = "pass"
            except AssertionError as e:
                row["grad"], row["error"] = "FAIL", str(e)
        if not row["rel"] <= case.rtol:
            row["error"] = f"forward off by {row['rel']:.2e} (relative), tolerance {case.rtol:.0e}; " + row["error"]
    except Exception as e:                               # a crash or a missing op is a failed row, not a crash
        row["grad"], row["error"] = "ERROR", f"{type(e).__name__}: {e}"
    row["ok"] = not row["error"]
    return row


def _fmt(v, spec):
    return format("-", ">" + spec.split(".")[0]) if v is None else format(v, spec)


def main(argv=None):
    """Print the table; return 0 when every row passes, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m minicnn verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], action="append",
                        help="check only this device (repeatable); default: cpu and, when available, cuda")
    parser.add_argument("--ops", default="", help="comma-separated substrings of op names to check (default: all)")
    args = parser.parse_args(argv)
    devices = args.device or (["cpu"] + (["cuda"] if mc.cuda_available() else []))
    if "cuda" in devices and not mc.cuda_available():
        print("verify: device 'cuda' is not available (no GPU with CuPy, and NUMBA_ENABLE_CUDASIM is not 1)")
        return 1
    wanted = [w.strip() for w in args.ops.split(",") if w.strip()]
    selected = [c for c in cases() if not wanted or any(w in c.name for w in wanted)]
    if not selected:
        print(f"verify: no op matches --ops {args.ops!r}")
        return 1
    label = {"cpu": "cpu", "cuda": "cuda (simulated)" if backend.SIMULATED else "cuda"}
    print(f"{'op':<26} {'device':<17} {'max abs':>9} {'max rel':>9} {'gradcheck':>9} {'ms':>8}  status")
    rows, start = [], time.perf_counter()
    for case in selected:
        for device in devices:
            r = run_case(case, device)
            rows.append(r)
            print(f"{r['op']:<26} {label[device]:<17} {_fmt(r['abs'], '9.1e')} {_fmt(r['rel'], '9.1e')} "
                  f"{r['grad']:>9} {_fmt(r['ms'], '8.2f')}  {'ok' if r['ok'] else 'FAIL'}", flush=True)
    failed = [r for r in rows if not r["ok"]]
    print()
    for r in failed:
        print(f"FAIL {r['op']} on {r['device']}: {r['error']}")
    print(f"{len(rows) - len(failed)}/{len(rows)} passed ({len(selected)} ops x {len(devices)} devices) "
          f"in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
