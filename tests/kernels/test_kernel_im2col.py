"""kernels/im2col.py: the reference against the definition, CPU and CUDA kernels against the reference on
hypothesis-drawn geometries, col2im as the adjoint of im2col, and every CUDA kernel compiled to PTX."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import im2col as I


@st.composite
def geometries(draw, small=False):
    """(x shape, kernel, stride, padding, dilation, out_size), sometimes with extra bottom/right padding."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 2 if small else 3))
    k, s, d = (tuple(draw(st.integers(1, hi)) for _ in range(2)) for hi in (3, 3, 2))
    p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
    lo = [max(1, dd * (kk - 1) + 1 - 2 * pp) for kk, dd, pp in zip(k, d, p)]      # smallest input with an output
    H, W = (draw(st.integers(lo_, lo_ + (3 if small else 5))) for lo_ in lo)
    out = tuple(I.conv_output_size(n, kk, ss, pp, dd) for n, kk, ss, pp, dd in zip((H, W), k, s, p, d))
    extra = draw(st.sampled_from([(0, 0), (0, 1), (1, 0)]))                    # "same"-style asymmetric padding
    return (N, C, H, W), k, s, p, d, tuple(o + e for o, e in zip(out, extra))


def _random(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_im2col_reference_matches_the_definition():
    x = _random((2, 3, 5, 4), 0, np.float64)
    k, s, p, d, out = (2, 3), (2, 1), (1, 2), (2, 1), (3, 4)
    cols = I.im2col_ref(x, k, s, p, d, out)
    for n, c, ky, kx, oy, ox in np.ndindex(2, 3, 2, 3, 3, 4):
        iy, ix = oy * s[0] - p[0] + ky * d[0], ox * s[1] - p[1] + kx * d[1]
        want = x[n, c, iy, ix] if 0 <= iy < 5 and 0 <= ix < 4 else 0.0
        assert cols[n, (c * 2 + ky) * 3 + kx, oy * 4 + ox] == want


@given(g=geometries())
def test_col2im_reference_is_the_adjoint_of_im2col(g):
    shape, k, s, p, d, out = g
    x = _random(shape, 1, np.float64)
    cols = _random((shape[0], shape[1] * k[0] * k[1], out[0] * out[1]), 2, np.float64)
    lhs = np.vdot(I.im2col_ref(x, k, s, p, d, out), cols)                   # <im2col(x), cols>
    rhs = np.vdot(x, I.col2im_ref(cols, shape, k, s, p, d, out))             # <x, col2im(cols)>
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_im2col_kernels_match_reference(device, dtype, data):
    shape, k, s, p, d, out = data.draw(geometries(small=device == "cuda"))
    x = _random(shape, 3, dtype)
    cols = I.im2col(backend.to_device(x, device), k, s, p, d, out, device=device)
    assert cols.dtype == dtype
    np.testing.assert_array_equal(to_cpu(cols), I.im2col_ref(x, k, s, p, d, out))   # a copy: exact


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_col2im_kernels_match_reference(device, dtype, data):
    shape, k, s, p, d, out = data.draw(geometries(small=device == "cuda"))
    cols = _random((shape[0], shape[1] * k[0] * k[1], out[0] * out[1]), 4, dtype)
    gx = I.col2im(backend.to_device(cols, device), shape, k, s, p, d, out, device=device)
    assert gx.dtype == dtype and gx.shape == shape
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_cpu(gx), I.col2im_ref(cols, shape, k, s, p, d, out), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("device", DEVICES)
def test_kernels_accept_non_contiguous_input(device):
    x = _random((3, 2, 4, 5), 5, np.float64).transpose(1, 0, 2, 3)          # (2, 3, 4, 5), strided
    g = (3, 2), (1, 2), (1, 1), (1, 1), (4, 3)
    np.testing.assert_array_equal(to_cpu(I.im2col(backend.to_device(x, device), *g, device=device)),
                                  I.im2col_ref(x, *g))
    cols = _random((2, 18, 12), 6, np.float64)[:, ::3]                         # (2, 6, 12), strided rows
    np.testing.assert_allclose(to_cpu(I.col2im(backend.to_device(cols, device), (2, 1, 4, 5), *g, device=device)),
                               I.col2im_ref(cols, (2, 1, 4, 5), *g), rtol=1e-12)


def test_im2col_writes_into_a_given_buffer_and_scratch_reuses_it():
    x = _random((2, 3, 5, 5), 7, np.float32)
    g = (3, 3), (1, 1), (1, 1), (1, 1), (5, 5)
    buf = backend.scratch("test", (2, 27, 25), np.float32, x)
    buf[...] = np.nan                                                            # padding must be written too
    cols = I.im2col(x, *g, out=buf)
    assert np.shares_memory(cols, buf)
    np.testing.assert_array_equal(cols, I.im2col_ref(x, *g))
    smaller = backend.scratch("test", (2, 27, 10), np.float32, x)
    assert np.shares_memory(smaller, buf) and smaller.shape == (2, 27, 10)
    assert not np.shares_memory(backend.scratch("other", (2, 27, 10), np.float32, x), buf)
    assert backend.scratch("test", (2, 27, 25), np.float64, x).dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
def test_scratch_keeps_the_device_array_type(device):
    """A buffer for a simulated-device array is a SimArray, so dispatchers send it to the CUDA kernels."""
    like = backend.to_device(np.zeros(3, np.float32), device)
    buf = backend.scratch("typed", (4, 5), np.float32, like)
    assert backend.device_of(buf) == device and buf.shape == (4, 5)


@pytest.mark.parametrize("device", DEVICES)
@given(geometries())
def test_batch_layout_matches_the_per_image_layout(device, geometry):
    """layout="gemm" holds the same columns as the per-image layout, with the batch axis moved inside each row;
    col2im reads either."""
    shape, k, s, p, d, out = geometry
    x = _random(shape, 8, np.float64)
    ref = I.im2col_ref(x, k, s, p, d, out)                                    # (N, R, L)
    cols = to_cpu(I.im2col(backend.to_device(x, device), k, s, p, d, out, layout="gemm"))
    np.testing.assert_array_equal(cols, ref.transpose(1, 0, 2).reshape(ref.shape[1], -1))
    g = _random(ref.shape, 9, np.float64)
    gb = np.ascontiguousarray(g.transpose(1, 0, 2)).reshape(ref.shape[1], -1)
    np.testing.assert_allclose(to_cpu(I.col2im(backend.to_device(gb, device), shape, k, s, p, d, out, layout="gemm")),
                               I.col2im_ref(g, shape, k, s, p, d, out), rtol=1e-12, atol=1e-12)


def test_output_size_formula():
    assert I.conv_output_size(32, 3, 1, 1, 1) == 32
    assert I.conv_output_size(28, 5, 1, 0, 1) == 24
    assert I.conv_output_size(7, 3, 2, 1, 2) == 3                             # (7 + 2 - 4 - 1) // 2 + 1


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, pair = dtype[:, :, :, ::1], T.UniTuple(T.int64, 2)
    assert ".entry" in compile_ptx(I._im2col_gpu, (a, pair, pair, pair, pair, a, T.boolean))
    assert ".entry" in compile_ptx(I._col2im_gpu, (a, pair, pair, pair, pair, a, T.boolean))
