"""kernels/lrn.py: CPU and CUDA kernels against the NumPy reference, the reference against a brute-force loop,
and every CUDA kernel compiled to PTX for a real GPU."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import lrn

shapes = st.tuples(st.integers(1, 2), st.integers(1, 6), st.lists(st.integers(1, 3), max_size=2))
params = st.fixed_dictionaries({"size": st.integers(1, 8), "alpha": st.floats(1e-4, 1.0),
                                "beta": st.floats(0.25, 1.5), "k": st.floats(0.5, 2.0)})


def _input(shape, seed, dtype):
    N, C, spatial = shape
    return np.random.default_rng(seed).standard_normal((N, C, *spatial)).astype(dtype)


def test_reference_matches_brute_force():
    x = _input((2, 7, [3]), seed=0, dtype=np.float64)
    size, alpha, beta, k = 4, 0.3, 0.75, 1.5
    y = np.empty_like(x)
    for c in range(7):                                    # PyTorch: pad size//2 before, (size-1)//2 after, / size
        window = [cc for cc in range(c - size // 2, c + (size - 1) // 2 + 1) if 0 <= cc < 7]
        y[:, c] = x[:, c] / (k + alpha / size * (x[:, window] ** 2).sum(axis=1)) ** beta
    np.testing.assert_allclose(lrn.lrn_forward_ref(x, size, alpha, beta, k)[0], y, rtol=1e-12)


def test_reference_backward_matches_finite_differences():
    x, gy = _input((1, 5, [2]), seed=1, dtype=np.float64), _input((1, 5, [2]), seed=2, dtype=np.float64)
    size, alpha, beta, k = 3, 0.5, 0.75, 1.0
    gx = lrn.lrn_backward_ref(x, gy, size, alpha, beta, k)
    eps, num = 1e-6, np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = ((lrn.lrn_forward_ref(xp, size, alpha, beta, k)[0] -
                     lrn.lrn_forward_ref(xm, size, alpha, beta, k)[0]) * gy).sum() / (2 * eps)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=shapes, p=params)
def test_lrn_kernels_match_reference(device, dtype, shape, p):
    x, gy = _input(shape, seed=3, dtype=dtype), _input(shape, seed=4, dtype=dtype)
    y, scale = lrn.lrn_forward(backend.to_device(x, device), **p, device=device)
    y_ref, scale_ref = lrn.lrn_forward_ref(x, **p)
    assert y.dtype == dtype and y.shape == x.shape
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_cpu(y), y_ref, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(to_cpu(scale), scale_ref, rtol=rtol)
    gx = lrn.lrn_backward(backend.to_device(x, device), y, scale, backend.to_device(gy, device),
                          p["size"], p["alpha"], p["beta"], device=device)
    gx_ref = lrn.lrn_backward_ref(x, gy, **p)
    np.testing.assert_allclose(to_cpu(gx), gx_ref, rtol=10 * rtol, atol=10 * rtol * np.abs(gx_ref).max())


@pytest.mark.parametrize("device", DEVICES)
def test_lrn_kernels_accept_non_contiguous_input(device):
    x = _input((3, 4, [2, 2]), seed=5, dtype=np.float64).transpose(1, 0, 2, 3)     # (4, 3, 2, 2), strided
    y, scale = lrn.lrn_forward(backend.to_device(x, device), 3, 0.2, 0.75, 1.0, device=device)
    np.testing.assert_allclose(to_cpu(y), lrn.lrn_forward_ref(x, 3, 0.2, 0.75, 1.0)[0], rtol=1e-12)


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a = dtype[:, :, ::1]
    f = T.float64
    assert ".entry" in compile_ptx(lrn._lrn_fwd_gpu, (a, T.int64, f, f, f, a, a))
    assert ".entry" in compile_ptx(lrn._lrn_bwd_gpu, (a, a, a, a, T.int64, f, f, a))
