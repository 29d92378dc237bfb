"""kernels/direct_conv.py: forward, input gradient and weight gradient, CPU and CUDA, against im2col's reference
and its adjoint on drawn geometries (stride, padding, dilation, odd sizes), and the CUDA kernels compiled to PTX."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import direct_conv as D
from minicnn.kernels import im2col as I


@st.composite
def geometries(draw, small=False):
    N, C, OC = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s, d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))), (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
    lo = [max(1, dd * (kk - 1) + 1 - 2 * pp) for kk, dd, pp in zip(k, d, p)]
    H, W = (draw(st.integers(l_, l_ + (3 if small else 7))) for l_ in lo)
    out = tuple(I.conv_output_size(n, kk, ss, pp, dd) for n, kk, ss, pp, dd in zip((H, W), k, s, p, d))
    return (N, C, H, W), (OC, C) + k, s, p, d, out


@pytest.mark.parametrize("device", DEVICES)
@given(geometry=geometries(small=True))
def test_direct_kernels_match_reference(device, geometry):
    x_shape, w_shape, s, p, d, out = geometry
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    gy = rng.standard_normal((x_shape[0], w_shape[0]) + out)
    cols = I.im2col_ref(x, w_shape[2:], s, p, d, out)
    wm, gym = w.reshape(w_shape[0], -1), gy.reshape(gy.shape[0], gy.shape[1], -1)
    dev = lambda a: backend.to_device(a, device)                       # noqa: E731
    np.testing.assert_allclose(to_cpu(D.conv_forward(dev(x), dev(w), s, p, d, out)),
                               D.conv_forward_ref(x, w, s, p, d, out), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_cpu(D.conv_grad_input(dev(gy), dev(w), x_shape, s, p, d)),
                               I.col2im_ref(wm.T @ gym, x_shape, w_shape[2:], s, p, d, out), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_cpu(D.conv_grad_weight(dev(x), dev(gy), w_shape, s, p, d)),
                               np.einsum("nol,nrl->or", gym, cols).reshape(w_shape), rtol=1e-10, atol=1e-10)


def test_float32_stays_float32():
    x, w = np.ones((2, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)
    y = D.conv_forward(x, w, (1, 1), (1, 1), (1, 1), (5, 5))
    assert y.dtype == np.float32 and y[0, 0, 2, 2] == 27 and y[0, 0, 0, 0] == 12


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, pair = dtype[:, :, :, ::1], T.UniTuple(T.int64, 2)
    for kernel in (D._forward_gpu, D._grad_input_gpu, D._grad_weight_gpu):
        assert ".entry" in compile_ptx(kernel, (a, a, pair, pair, pair, a))
