"""kernels/depthwise.py: references against the definition and as adjoints, CPU and CUDA kernels against the
references on hypothesis-drawn geometries (channel multipliers, stride, padding, dilation), PTX compilation."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import depthwise as D
from minicnn.kernels.im2col import conv_output_size


@st.composite
def problems(draw, small=False):
    """(x shape, w shape, stride, padding, dilation, out_size)."""
    N, C, M = draw(st.integers(1, 2)), draw(st.integers(1, 2 if small else 4)), draw(st.integers(1, 2))
    k, s, d = (tuple(draw(st.integers(1, hi)) for _ in range(2)) for hi in (3, 3, 2))
    p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
    lo = [max(1, dd * (kk - 1) + 1 - 2 * pp) for kk, dd, pp in zip(k, d, p)]
    H, W = (draw(st.integers(lo_, lo_ + (3 if small else 5))) for lo_ in lo)
    out = tuple(conv_output_size(n, kk, ss, pp, dd) for n, kk, ss, pp, dd in zip((H, W), k, s, p, d))
    extra = draw(st.sampled_from([(0, 0), (1, 0), (0, 1)]))                    # asymmetric ("same") padding
    return (N, C, H, W), (C * M, 1) + k, s, p, d, tuple(o + e for o, e in zip(out, extra))


def _random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_forward_reference_matches_the_definition():
    x, w = _random((2, 2, 5, 4), 0), _random((6, 1, 2, 3), 1)                  # 3 filters per channel
    s, p, d, out = (2, 1), (1, 2), (1, 2), (3, 4)
    y = D.depthwise_forward_ref(x, w, s, p, d, out)
    for n, o, oy, ox in np.ndindex(2, 6, 3, 4):
        want = 0.0
        for ky, kx in np.ndindex(2, 3):
            iy, ix = oy * s[0] - p[0] + ky * d[0], ox * s[1] - p[1] + kx * d[1]
            if 0 <= iy < 5 and 0 <= ix < 4:
                want += w[o, 0, ky, kx] * x[n, o // 3, iy, ix]
        np.testing.assert_allclose(y[n, o, oy, ox], want, rtol=1e-12, atol=1e-12)


@given(pr=problems())
def test_gradient_references_are_adjoints_of_the_forward(pr):
    x_shape, w_shape, s, p, d, out = pr
    x, w = _random(x_shape, 2), _random(w_shape, 3)
    gy = _random((x_shape[0], w_shape[0]) + out, 4)
    y_dot = np.vdot(D.depthwise_forward_ref(x, w, s, p, d, out), gy)            # y is linear in x and in w
    np.testing.assert_allclose(np.vdot(x, D.depthwise_grad_input_ref(gy, w, x_shape, s, p, d)), y_dot, rtol=1e-10)
    np.testing.assert_allclose(np.vdot(w, D.depthwise_grad_weight_ref(gy, x, w_shape, s, p, d)), y_dot, rtol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_depthwise_kernels_match_reference(device, dtype, data):
    x_shape, w_shape, s, p, d, out = data.draw(problems(small=device == "cuda"))
    x, w = _random(x_shape, 5, dtype), _random(w_shape, 6, dtype)
    gy = _random((x_shape[0], w_shape[0]) + out, 7, dtype)
    xd, wd, gyd = (backend.to_device(a, device) for a in (x, w, gy))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    y = D.depthwise_forward(xd, wd, s, p, d, out, device=device)
    gx = D.depthwise_grad_input(gyd, wd, x_shape, s, p, d, device=device)
    gw = D.depthwise_grad_weight(gyd, xd, w_shape, s, p, d, device=device)
    for got, want, shape in [(y, D.depthwise_forward_ref(x, w, s, p, d, out), gy.shape),
                             (gx, D.depthwise_grad_input_ref(gy, w, x_shape, s, p, d), x_shape),
                             (gw, D.depthwise_grad_weight_ref(gy, x, w_shape, s, p, d), w_shape)]:
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_allclose(to_cpu(got), want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("device", DEVICES)
def test_depthwise_kernels_accept_non_contiguous_input(device):
    x = _random((3, 2, 4, 5), 8).transpose(1, 0, 2, 3)                          # (2, 3, 4, 5), strided
    w = _random((3, 2, 1, 3, 3), 9)[:, 0]                                       # (3, 1, 3, 3), strided
    g = (1, 2), (1, 1), (1, 1)
    y = D.depthwise_forward(backend.to_device(x, device), backend.to_device(w, device), *g, (4, 3), device=device)
    np.testing.assert_allclose(to_cpu(y), D.depthwise_forward_ref(x, w, *g, (4, 3)), rtol=1e-12)


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, pair = dtype[:, :, :, ::1], T.UniTuple(T.int64, 2)
    for kernel in (D._forward_gpu, D._grad_input_gpu, D._grad_weight_gpu):
        assert ".entry" in compile_ptx(kernel, (a, a, pair, pair, pair, a))
