"""kernels/batchnorm.py: the fused forward (statistics, affine map) and backward, CPU and CUDA, against the
formulas written out in NumPy (float64), in train and eval form, on drawn shapes; PTX of the CUDA kernels."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import batchnorm as B


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 3), C=st.integers(1, 4), L=st.integers(1, 9), seed=st.integers(0, 9))
def test_batch_norm_kernels_match_reference(device, N, C, L, seed):
    if N * L < 2:
        return
    rng = np.random.default_rng(seed)
    x, gy = rng.standard_normal((N, C, L)) * 3 + 1, rng.standard_normal((N, C, L))
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, mean, var, inv_std = B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True)
    y_ref, mean_ref, var_ref = B.batch_norm_forward_ref(x, w, b, 1e-5)
    for got, ref in [(y, y_ref), (mean, mean_ref), (var, var_ref)]:
        np.testing.assert_allclose(to_cpu(got), ref, rtol=1e-10, atol=1e-10)
    gx, gw, gb = B.batch_norm_backward(d(x), d(gy), mean, inv_std, d(w), True)
    for got, ref in zip((gx, gw, gb), B.batch_norm_backward_ref(x, gy, w, mean_ref, var_ref, 1e-5)):
        np.testing.assert_allclose(to_cpu(got), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_eval_form_is_the_affine_map(device):
    rng = np.random.default_rng(1)
    x, gy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    mean, var, w, b = rng.standard_normal(3), rng.random(3) + 0.5, rng.standard_normal(3), rng.standard_normal(3)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, *_ = B.batch_norm_forward(d(x), d(mean), d(var), d(w), d(b), 1e-5, False)
    scale = w / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(to_cpu(y), (x - mean[:, None]) * scale[:, None] + b[:, None], rtol=1e-12)
    gx, gw, gb = B.batch_norm_backward(d(x), d(gy), d(mean), d(1 / np.sqrt(var + 1e-5)), d(w), False)
    np.testing.assert_allclose(to_cpu(gx), gy * scale[:, None], rtol=1e-12)
    np.testing.assert_allclose(to_cpu(gb), gy.sum(axis=(0, 2)), rtol=1e-12)


def test_float32_statistics_keep_their_digits():
    """131,072 float32 values near 1000: float64 partial sums keep the variance right."""
    x = (1000 + np.random.default_rng(2).standard_normal((128, 1, 1024))).astype(np.float32)
    _, mean, var, _ = B.batch_norm_forward(x, None, None, np.ones(1, np.float32), np.zeros(1, np.float32), 1e-5,
                                           True)
    np.testing.assert_allclose(var, x.astype(np.float64).var(), rtol=1e-5)


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
def test_cuda_kernels_compile_to_ptx():
    a, v = T.float32[:, :, ::1], T.float32[::1]
    assert ".entry" in compile_ptx(B._affine_gpu, (a, v, v, a))
    assert ".entry" in compile_ptx(B._grad_input_gpu, (a, a, v, v, v, v, v, a))
