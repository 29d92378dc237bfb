"""kernels/pool.py: CPU and CUDA kernels against the NumPy references on hypothesis-drawn geometries, PyTorch's
output sizes and divisors worked out by hand, edge cases, and every CUDA kernel compiled to PTX."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, distinct_values, to_cpu
from minicnn import backend
from minicnn.kernels import pool

pairs = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))   # noqa: E731


@st.composite
def geometries(draw, dilation=True):
    """(x shape, k, s, p, d, ceil_mode) with a non-empty output; tiny, for the CUDA simulator."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    k, s = draw(pairs(1, 3)), draw(pairs(1, 4))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = draw(pairs(1, 2)) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    assume(min(pool.pool_output_size(n, *g, ceil_mode) for n, g in zip(shape[2:], zip(k, s, p, d))) >= 1)
    return shape, k, s, p, d, ceil_mode


@pytest.mark.parametrize("device", DEVICES)
@given(g=geometries())
def test_max_pool_kernels_match_reference(device, g):
    shape, k, s, p, d, ceil_mode = g
    x = distinct_values(shape, seed=sum(shape)).astype(np.float32)
    y, arg = pool.max_pool_forward(backend.to_device(x, device), k, s, p, d, ceil_mode, device=device)
    y_ref, arg_ref = pool.max_pool_forward_ref(x, k, s, p, d, ceil_mode)
    assert y.dtype == np.float32 and arg.dtype == np.int32
    np.testing.assert_array_equal(to_cpu(y), y_ref)                   # a max is exact
    np.testing.assert_array_equal(to_cpu(arg), arg_ref)
    gy = distinct_values(y.shape, seed=1).astype(np.float32)
    gx = pool.max_pool_backward(backend.to_device(gy, device), arg, shape, k, s, p, d, device=device)
    np.testing.assert_allclose(to_cpu(gx), pool.max_pool_backward_ref(gy, arg_ref, shape), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@given(g=geometries(dilation=False), count_include_pad=st.booleans(), divisor_override=st.sampled_from([None, 3]))
def test_avg_pool_kernels_match_reference(device, g, count_include_pad, divisor_override):
    shape, k, s, p, _, ceil_mode = g
    x = distinct_values(shape, seed=sum(shape)).astype(np.float32)
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
    y = pool.avg_pool_forward(backend.to_device(x, device), *args, device=device)
    np.testing.assert_allclose(to_cpu(y), pool.avg_pool_forward_ref(x, *args), rtol=1e-5, atol=1e-7)
    gy = distinct_values(y.shape, seed=2).astype(np.float32)
    gx = pool.avg_pool_backward(backend.to_device(gy, device), shape, k, s, p, count_include_pad, divisor_override,
                                device=device)
    np.testing.assert_allclose(to_cpu(gx), pool.avg_pool_backward_ref(gy, shape, *args), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size, k, s, p, d, ceil_mode, expected", [
    (5, 2, 2, 0, 1, False, 2), (5, 2, 2, 0, 1, True, 3),            # ceil keeps the half window at the end
    (4, 2, 2, 1, 1, True, 3),                                       # last window starts at 3: inside the input
    (3, 2, 2, 1, 1, True, 2),                                       # a 3rd window would start in the padding
    (6, 3, 2, 1, 1, False, 3), (7, 3, 2, 1, 2, False, 3),           # dilation 2: a 3-tap window spans 5
    (1, 1, 2, 0, 1, True, 1),
])
def test_pool_output_size_matches_pytorch_rule(size, k, s, p, d, ceil_mode, expected):
    assert pool.pool_output_size(size, k, s, p, d, ceil_mode) == expected


@pytest.mark.parametrize("device", DEVICES)
def test_avg_pool_divisors_worked_by_hand(device):
    # x = 0..8 as 3x3, k=2, s=2, p=1, ceil_mode: windows (rows x cols) {-1,0}x{-1,0}, {-1,0}x{1,2}, {1,2}x{-1,0},
    # {1,2}x{1,2}.  Their input pixels sum to 0, 1+2, 3+6, 4+5+7+8; counted with padding each window has 4
    # cells, without padding 1, 2, 2, 4.
    x = backend.to_device(np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3), device)
    with_pad = pool.avg_pool_forward(x, 2, 2, 1, True, True, device=device)
    without = pool.avg_pool_forward(x, 2, 2, 1, True, False, device=device)
    override = pool.avg_pool_forward(x, 2, 2, 1, True, True, 3, device=device)
    np.testing.assert_allclose(to_cpu(with_pad)[0, 0], [[0, 0.75], [2.25, 6]])
    np.testing.assert_allclose(to_cpu(without)[0, 0], [[0, 1.5], [4.5, 6]])
    np.testing.assert_allclose(to_cpu(override)[0, 0], [[0, 1], [3, 8]])


@pytest.mark.parametrize("device", DEVICES)
def test_avg_pool_ceil_mode_window_past_the_input_divides_by_its_clipped_size(device):
    # 0..15 as 4x4, k=3, s=2, no padding, ceil_mode: 2x2 outputs; the second row/column of windows covers rows
    # 2..3 only (PyTorch clips the divisor to the padded input): 45/9, 39/6, 66/6, 50/4.
    x = backend.to_device(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), device)
    y = pool.avg_pool_forward(x, 3, 2, 0, True, True, device=device)
    np.testing.assert_allclose(to_cpu(y)[0, 0], [[5, 6.5], [11, 12.5]])


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_padding_never_wins_and_indices_are_unpadded(device):
    x = -1 - np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)         # all negative: a 0 pad would win
    y, arg = pool.max_pool_forward(backend.to_device(x, device), 2, 2, 1, device=device)
    np.testing.assert_array_equal(to_cpu(y)[0, 0], [[-1, -2], [-4, -5]])
    np.testing.assert_array_equal(to_cpu(arg)[0, 0], [[0, 1], [3, 4]])  # iy * 3 + ix in the 3x3 input


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_stride_larger_than_kernel_skips_pixels(device):
    x = distinct_values((1, 2, 5, 5), seed=3).astype(np.float32)
    y, arg = pool.max_pool_forward(backend.to_device(x, device), 2, 3, device=device)
    expected = [[x[:, :, r:r + 2, c:c + 2].max(axis=(2, 3)) for c in (0, 3)] for r in (0, 3)]   # windows at 0, 3
    np.testing.assert_array_equal(to_cpu(y), np.moveaxis(np.array(expected), (0, 1), (2, 3)))
    gx = to_cpu(pool.max_pool_backward(backend.to_device(np.ones(y.shape, np.float32), device), arg, x.shape, 2, 3,
                                       device=device))
    assert gx[:, :, 2].sum() == 0 and gx[:, :, :, 2].sum() == 0 and gx.sum() == y.size   # row/col 2: in no window


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_nan_wins_its_window(device):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    y, arg = pool.max_pool_forward(backend.to_device(x, device), 2, device=device)
    assert np.isnan(to_cpu(y)[0, 0, 0, 0]) and to_cpu(arg)[0, 0, 0, 0] == 1
    np.testing.assert_array_equal(to_cpu(y)[0, 0].ravel()[1:], [7, 13, 15])


@pytest.mark.parametrize("device", DEVICES)
def test_kernels_accept_non_contiguous_input(device):
    x = distinct_values((3, 2, 5, 4), seed=4).transpose(1, 0, 2, 3)        # (2, 3, 5, 4), strided
    y, arg = pool.max_pool_forward(backend.to_device(x, device), 2, 1, device=device)
    np.testing.assert_array_equal(to_cpu(y), pool.max_pool_forward_ref(x, 2, 1)[0])
    y = pool.avg_pool_forward(backend.to_device(x, device), 3, 2, 1, device=device)
    np.testing.assert_allclose(to_cpu(y), pool.avg_pool_forward_ref(x, 3, 2, 1), rtol=1e-12)


# ---- every CUDA kernel, compiled for a real GPU ------------------------------------------------------------------


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, i4, pair, n, b = dtype[:, :, :, ::1], T.int32[:, :, :, ::1], T.UniTuple(T.int64, 2), T.int64, T.boolean
    assert ".entry" in compile_ptx(pool._max_fwd_gpu, (a, pair, pair, pair, pair, n, a, i4))
    assert ".entry" in compile_ptx(pool._max_bwd_gpu, (a, i4, pair, pair, pair, pair, a))
    assert ".entry" in compile_ptx(pool._avg_fwd_gpu, (a, pair, pair, pair, n, n, b, n, a))
    assert ".entry" in compile_ptx(pool._avg_bwd_gpu, (a, pair, pair, pair, b, n, a))
