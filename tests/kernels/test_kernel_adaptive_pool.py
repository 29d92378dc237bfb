"""kernels/adaptive_pool.py: CPU and CUDA kernels against the NumPy references, PyTorch's bins worked out by
hand, and every CUDA kernel compiled to PTX."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, distinct_values, to_cpu
from minicnn import backend
from minicnn.kernels import adaptive_pool, pool


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 6), W=st.integers(1, 6),
       OH=st.integers(1, 7), OW=st.integers(1, 7))
def test_adaptive_kernels_match_reference(device, N, C, H, W, OH, OW):
    x = distinct_values((N, C, H, W), seed=H * W).astype(np.float32)
    gy = distinct_values((N, C, OH, OW), seed=1).astype(np.float32)
    y = adaptive_pool.adaptive_avg_pool_forward(backend.to_device(x, device), (OH, OW), device=device)
    np.testing.assert_allclose(to_cpu(y), adaptive_pool.adaptive_avg_pool_forward_ref(x, (OH, OW)), rtol=1e-5,
                               atol=1e-7)
    gx = adaptive_pool.adaptive_avg_pool_backward(backend.to_device(gy, device), x.shape, device=device)
    np.testing.assert_allclose(to_cpu(gx), adaptive_pool.adaptive_avg_pool_backward_ref(gy, x.shape), rtol=1e-5,
                               atol=1e-7)
    y, arg = adaptive_pool.adaptive_max_pool_forward(backend.to_device(x, device), (OH, OW), device=device)
    y_ref, arg_ref = adaptive_pool.adaptive_max_pool_forward_ref(x, (OH, OW))
    np.testing.assert_array_equal(to_cpu(y), y_ref)
    np.testing.assert_array_equal(to_cpu(arg), arg_ref)
    gx = adaptive_pool.adaptive_max_pool_backward(backend.to_device(gy, device), arg, x.shape, device=device)
    np.testing.assert_allclose(to_cpu(gx), pool.max_pool_backward_ref(gy, arg_ref, x.shape), rtol=1e-5, atol=1e-7)


def test_bins_are_pytorchs():
    # 5 -> 3: [floor(0), ceil(5/3)) = [0, 2), [floor(5/3), ceil(10/3)) = [1, 4), [floor(10/3), ceil(5)) = [3, 5):
    # neighbouring bins overlap by one pixel.  7 -> 2: [0, 4), [3, 7).  2 -> 4: every pixel in two bins.
    assert [adaptive_pool._bin(i, 5, 3) for i in range(3)] == [(0, 2), (1, 4), (3, 5)]
    assert [adaptive_pool._bin(i, 7, 2) for i in range(2)] == [(0, 4), (3, 7)]
    assert [adaptive_pool._bin(i, 2, 4) for i in range(4)] == [(0, 1), (0, 1), (1, 2), (1, 2)]


@given(n_in=st.integers(1, 20), n_out=st.integers(1, 20))
def test_bins_containing_inverts_bin(n_in, n_out):
    for j in range(n_in):
        lo, hi = adaptive_pool._bins_containing(j, n_in, n_out)
        assert [i for i in range(n_out) if adaptive_pool._bin(i, n_in, n_out)[0] <= j <
                adaptive_pool._bin(i, n_in, n_out)[1]] == list(range(lo, hi + 1))


@pytest.mark.parametrize("device", DEVICES)
def test_global_pooling_is_the_plane_mean_and_max(device):
    x = distinct_values((2, 3, 4, 5), seed=2)
    y = adaptive_pool.adaptive_avg_pool_forward(backend.to_device(x, device), (1, 1), device=device)
    np.testing.assert_allclose(to_cpu(y)[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)
    y, arg = adaptive_pool.adaptive_max_pool_forward(backend.to_device(x, device), (1, 1), device=device)
    np.testing.assert_array_equal(to_cpu(arg)[:, :, 0, 0], x.reshape(2, 3, -1).argmax(axis=2))


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, i4 = dtype[:, :, :, ::1], T.int32[:, :, :, ::1]
    assert ".entry" in compile_ptx(adaptive_pool._avg_fwd_gpu, (a, a))
    assert ".entry" in compile_ptx(adaptive_pool._avg_bwd_gpu, (a, a))
    assert ".entry" in compile_ptx(adaptive_pool._max_fwd_gpu, (a, a, i4))
    assert ".entry" in compile_ptx(adaptive_pool._max_bwd_gpu, (a, i4, a))
