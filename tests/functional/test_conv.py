"""F.conv2d and F.conv_transpose2d: forward values against direct-loop references on every device, float64
gradchecks on hypothesis-drawn configurations (stride, padding incl. "same", dilation, groups, depthwise, odd
sizes), conv_transpose2d as the adjoint of conv2d, dtypes, and clear errors for bad arguments."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, to_cpu
from minicnn.functional.conv import Conv2dFn, DepthwiseConv2dFn


# ---- references: the definitions, as plain loops over output pixels (conv2d) or input pixels (transposed) ---------
def conv2d_ref(x, w, b, stride, padding, dilation, groups, out_size):
    """float64; ``padding`` is the top/left padding, ``out_size`` fixes the bottom/right one."""
    (N, C, H, W), (OC, Cg, KH, KW) = x.shape, w.shape
    (SH, SW), (PH, PW), (DH, DW), OCg = stride, padding, dilation, OC // groups
    xg = [x[:, g * Cg:(g + 1) * Cg] for g in range(groups)]                       # per group: input channels,
    wg = [w[g * OCg:(g + 1) * OCg] for g in range(groups)]                        # filters
    y = np.zeros((N, OC) + tuple(out_size))
    for oy, ox, ky, kx in np.ndindex(*out_size, KH, KW):
        iy, ix = oy * SH - PH + ky * DH, ox * SW - PW + kx * DW
        if 0 <= iy < H and 0 <= ix < W:
            for g in range(groups):
                y[:, g * OCg:(g + 1) * OCg, oy, ox] += xg[g][:, :, iy, ix] @ wg[g][:, :, ky, kx].T
    return y if b is None else y + b[None, :, None, None]


def conv_transpose2d_ref(x, w, b, stride, padding, output_padding, groups, dilation):
    """float64 scatter: input pixel (iy, ix) sends x * w[.., ky, kx] to output (iy*SH - PH + ky*DH, ...)."""
    (N, C, H, W), (_, OCg, KH, KW), Cg = x.shape, w.shape, x.shape[1] // groups
    (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
    HO = (H - 1) * SH - 2 * PH + DH * (KH - 1) + output_padding[0] + 1
    WO = (W - 1) * SW - 2 * PW + DW * (KW - 1) + output_padding[1] + 1
    y = np.zeros((N, OCg * groups, HO, WO))
    xg, wg = [x[:, g * Cg:(g + 1) * Cg] for g in range(groups)], [w[g * Cg:(g + 1) * Cg] for g in range(groups)]
    for iy, ix, ky, kx in np.ndindex(H, W, KH, KW):
        oy, ox = iy * SH - PH + ky * DH, ix * SW - PW + kx * DW
        if 0 <= oy < HO and 0 <= ox < WO:
            for g in range(groups):
                y[:, g * OCg:(g + 1) * OCg, oy, ox] += xg[g][:, :, iy, ix] @ wg[g][:, :, ky, kx]
    return y if b is None else y + b[None, :, None, None]


def explicit_geometry(H, W, k, stride, padding, dilation):
    """(top/left padding, output size) of a conv2d padding argument, computed here independently of the library."""
    if padding == "same":
        return tuple(d * (kk - 1) // 2 for d, kk in zip(dilation, k)), (H, W)
    pad = (0, 0) if padding == "valid" else padding
    return pad, tuple((n + 2 * p - d * (kk - 1) - 1) // s + 1
                      for n, p, d, kk, s in zip((H, W), pad, dilation, k, stride))


# ---- drawn configurations -----------------------------------------------------------------------------------------
def _pair(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


@st.composite
def conv_configs(draw, small=False, transposed=False):
    G, Cg, OCg, N = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k, s, d = draw(_pair(1, 3)), draw(_pair(1, 3)), draw(_pair(1, 2))
    options = [_pair(0, 2)] + ([] if transposed else [st.just("valid")] + ([st.just("same")] if s == (1, 1) else []))
    padding = draw(st.one_of(*options))
    if transposed:
        padding = tuple(min(p, dd * (kk - 1)) for p, dd, kk in zip(padding, d, k))    # keep the output non-empty
    H, W = (draw(st.integers(max(1, dd * (kk - 1) + 1), dd * (kk - 1) + (3 if small else 6))) for kk, dd in zip(k, d))
    cfg = dict(N=N, C=G * Cg, OC=G * OCg, H=H, W=W, k=k, stride=s, padding=padding, dilation=d, groups=G,
               bias=draw(st.booleans()))
    if transposed:
        cfg["output_padding"] = tuple(draw(st.integers(0, max(ss, dd) - 1)) for ss, dd in zip(s, d))
    return cfg


def _inputs(cfg, seed, transposed=False):
    rng = np.random.default_rng(seed)
    w_shape = (cfg["C"], cfg["OC"] // cfg["groups"]) if transposed else (cfg["OC"], cfg["C"] // cfg["groups"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    w = rng.standard_normal(w_shape + cfg["k"])
    return x, w, (rng.standard_normal(cfg["OC"]) if cfg["bias"] else None)


def _conv(cfg):
    return lambda x, w, b=None: F.conv2d(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])


def _conv_t(cfg):
    return lambda x, w, b=None: F.conv_transpose2d(x, w, b, cfg["stride"], cfg["padding"], cfg["output_padding"],
                                                   cfg["groups"], cfg["dilation"])


def _tensors(arrays, dtype, device="cpu", requires_grad=False):
    return [None if a is None else mc.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)
            for a in arrays]


def _f32(a):
    return None if a is None else a.astype(np.float32).astype(np.float64)


# ---- forward values -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data())
def test_conv2d_matches_reference(device, data):
    cfg = data.draw(conv_configs(small=device == "cuda"))
    x, w, b = _inputs(cfg, seed=0)
    y = _conv(cfg)(*_tensors([x, w, b], np.float32, device))
    pad, out = explicit_geometry(cfg["H"], cfg["W"], cfg["k"], cfg["stride"], cfg["padding"], cfg["dilation"])
    ref = conv2d_ref(_f32(x), _f32(w), _f32(b), cfg["stride"], pad, cfg["dilation"], cfg["groups"], out)
    assert y.dtype == np.float32 and y.shape == ref.shape and y.device == device
    np.testing.assert_allclose(to_cpu(y.data), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data())
def test_conv_transpose2d_matches_reference(device, data):
    cfg = data.draw(conv_configs(small=device == "cuda", transposed=True))
    x, w, b = _inputs(cfg, seed=1, transposed=True)
    y = _conv_t(cfg)(*_tensors([x, w, b], np.float32, device))
    ref = conv_transpose2d_ref(_f32(x), _f32(w), _f32(b), cfg["stride"], cfg["padding"], cfg["output_padding"],
                               cfg["groups"], cfg["dilation"])
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(to_cpu(y.data), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_padding_same_puts_the_extra_row_and_column_bottom_right():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 4, 2))
    y = F.conv2d(*_tensors([x, w], np.float64), padding="same", dilation=(1, 3))
    total = (1 * 3, 3 * 1)                                                      # dilation * (k - 1) per axis
    xp = np.pad(x, [(0, 0), (0, 0)] + [(t // 2, t - t // 2) for t in total])
    assert y.shape == (2, 4, 5, 6)
    np.testing.assert_allclose(y.numpy(), conv2d_ref(xp, w, None, (1, 1), (0, 0), (1, 3), 1, (5, 6)), rtol=1e-12)


# ---- gradients ------------------------------------------------------------------------------------------------------
@settings(max_examples=15)
@given(cfg=conv_configs())
def test_conv2d_gradcheck(cfg):
    mc.gradcheck(_conv(cfg), [a for a in _inputs(cfg, seed=4) if a is not None])


@settings(max_examples=15)
@given(cfg=conv_configs(transposed=True))
def test_conv_transpose2d_gradcheck(cfg):
    mc.gradcheck(_conv_t(cfg), [a for a in _inputs(cfg, seed=5, transposed=True) if a is not None])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op, cfg", [
    ("conv2d", dict(N=2, C=2, OC=3, H=4, W=3, k=(2, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 1), groups=1)),
    ("conv2d", dict(N=1, C=4, OC=2, H=3, W=3, k=(2, 2), stride=(1, 1), padding="same", dilation=(1, 1), groups=2)),
    ("conv2d", dict(N=2, C=2, OC=4, H=4, W=4, k=(3, 3), stride=(1, 2), padding=(1, 1), dilation=(1, 1), groups=2)),
    ("conv_transpose2d", dict(N=1, C=2, OC=2, H=3, W=2, k=(2, 3), stride=(2, 1), padding=(1, 0),
                              output_padding=(1, 0), dilation=(1, 1), groups=1)),
])
def test_gradcheck_on_device(device, op, cfg):
    """Fixed small cases on every device (the simulated GPU too): plain, grouped, depthwise, transposed."""
    cfg = dict(cfg, bias=True)
    transposed = op == "conv_transpose2d"
    inputs = _tensors(_inputs(cfg, seed=6, transposed=transposed), np.float64, device)
    mc.gradcheck(_conv_t(cfg) if transposed else _conv(cfg), inputs)


@settings(max_examples=15)
@given(cfg=conv_configs(transposed=True))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(cfg):
    """<conv2d(x), y> == <x, conv_transpose2d(y)> for the same weight and geometry."""
    output_padding = tuple(min(o, s - 1) for o, s in zip(cfg["output_padding"], cfg["stride"]))   # conv2d's floor
    cfg = dict(cfg, bias=False, output_padding=output_padding)
    y, w, _ = _inputs(cfg, seed=7, transposed=True)                   # y (N, C, H, W) lives where conv2d's output does
    t = F.conv_transpose2d(*_tensors([y, w], np.float64), None, cfg["stride"], cfg["padding"],
                           cfg["output_padding"], cfg["groups"], cfg["dilation"])
    x = np.random.default_rng(8).standard_normal(t.shape)
    cx = F.conv2d(*_tensors([x, w], np.float64), None, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    assert cx.shape == y.shape
    np.testing.assert_allclose(np.vdot(cx.numpy(), y), np.vdot(x, t.numpy()), rtol=1e-10)


def test_only_the_gradients_asked_for_are_computed():
    x, w, b = _tensors(_inputs(dict(N=2, C=3, OC=4, H=5, W=5, k=(3, 3), groups=1, bias=True), seed=9), np.float32)
    w.requires_grad_(), b.requires_grad_()
    F.conv2d(x, w, b, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 3, 3, 3) and w.grad.dtype == np.float32
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 50.0))                   # every output of a channel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, w, b = _tensors(_inputs(dict(N=2, C=2, OC=2, H=4, W=4, k=(2, 2), groups=1, bias=True), seed=10), dtype,
                       requires_grad=True)
    w_depthwise = mc.tensor(np.ones((2, 1, 2, 2)), dtype=dtype, requires_grad=True)
    for fn, weight in ((F.conv2d, w), (lambda x, w, b: F.conv2d(x, w, b, groups=2), w_depthwise),
                       (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2), w)):
        x.grad = weight.grad = b.grad = None
        y = fn(x, weight, b)
        y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype and weight.grad.dtype == dtype and b.grad.dtype == dtype


def test_depthwise_path_is_taken_when_groups_equal_in_channels():
    x = mc.tensor(np.ones((1, 3, 4, 4)), requires_grad=True)
    assert isinstance(F.conv2d(x, mc.tensor(np.ones((6, 1, 3, 3))), groups=3)._ctx, DepthwiseConv2dFn)
    assert isinstance(F.conv2d(x, mc.tensor(np.ones((6, 3, 3, 3))))._ctx, Conv2dFn)
    assert isinstance(F.conv2d(x[:, :1], mc.tensor(np.ones((2, 1, 3, 3))))._ctx, Conv2dFn)     # 1 channel: GEMM


def test_unbatched_input_is_a_batch_of_one():
    x, w, b = _inputs(dict(N=1, C=2, OC=3, H=5, W=4, k=(3, 3), groups=1, bias=True), seed=11)
    xt, wt, bt = _tensors([x, w, b], np.float64)
    np.testing.assert_allclose(F.conv2d(xt.reshape(2, 5, 4), wt, bt, padding=1).numpy(),
                               F.conv2d(xt, wt, bt, padding=1).numpy()[0], rtol=1e-12)
    wt2 = mc.tensor(np.ones((2, 3, 2, 2)), dtype=np.float64)
    assert F.conv_transpose2d(xt.reshape(2, 5, 4), wt2, stride=2).shape == (3, 10, 8)


# ---- bad input ------------------------------------------------------------------------------------------------------
def _t(*shape, dtype=np.float32):
    return mc.tensor(np.ones(shape, dtype), dtype=dtype)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)), ValueError, r"conv2d: input has 3 channels .* expects 2"),
    (lambda: F.conv2d(_t(3, 5), _t(4, 3, 3, 3)), ValueError, r"conv2d: input must be 4-d .* \(3, 5\)"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3)), ValueError, r"conv2d: weight must be 4-d, got shape \(4, 3, 3\)"),
    (lambda: F.conv2d(_t(1, 1, 2, 2), _t(1, 1, 3, 3)), ValueError, r"conv2d: kernel 3x3 .* larger than the padded"),
    (lambda: F.conv2d(_t(1, 1, 4, 4), _t(1, 1, 3, 3), dilation=2), ValueError, r"larger than the padded"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), stride=0), ValueError, r"conv2d: stride must be positive"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), stride=(1, -2)), ValueError, r"stride must be positive"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), dilation=0), ValueError, r"conv2d: dilation must be positive"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding=-1), ValueError, r"conv2d: padding must be non-neg"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), stride=(1, 2, 3)), TypeError, r"conv2d: stride must be an int"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding="full"), ValueError, r"conv2d: padding must be 'same'"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), padding="same", stride=2), ValueError, r"not supported for str"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 1, 3, 3), groups=2), ValueError, r"conv2d: groups=2 must divide in_chan"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2), ValueError, r"out_channels=3"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(3, 3, 3, 3), groups=0), ValueError, r"conv2d: groups must be a positive"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(3)), ValueError, r"conv2d: bias shape \(3,\) should be \(4"),
    (lambda: F.conv2d(_t(1, 1, 5, 5, dtype=np.int64), _t(1, 1, 3, 3)), TypeError, r"conv2d: input must be floating"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3, dtype=np.float64)), TypeError, r"weight dtype float64 differs"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), _t(1, 1, 3, 3)), TypeError, r"conv2d: input must be a Tensor"),
    (lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(2, 4, 3, 3)), ValueError, r"conv_transpose2d: input has 3 chan"),
    (lambda: F.conv_transpose2d(_t(1, 2, 5, 5), _t(2, 4, 3)), ValueError, r"conv_transpose2d: weight must be 4-d"),
    (lambda: F.conv_transpose2d(_t(1, 2, 5, 5), _t(2, 4, 3, 3), stride=2, output_padding=2), ValueError,
     r"output_padding \(2, 2\) must be smaller than either stride \(2, 2\) or dilation \(1, 1\)"),
    (lambda: F.conv_transpose2d(_t(1, 3, 5, 5), _t(3, 4, 3, 3), groups=2), ValueError, r"groups=2 must divide"),
    (lambda: F.conv_transpose2d(_t(1, 2, 5, 5), _t(2, 4, 3, 3), _t(2)), ValueError, r"bias shape \(2,\) should be"),
    (lambda: F.conv_transpose2d(_t(1, 2, 1, 1), _t(2, 4, 1, 1), padding=1), ValueError, r"output size .* not posit"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
