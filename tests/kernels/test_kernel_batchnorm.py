"""kernels/batchnorm.py: the fused forward (statistics, affine map) and backward, CPU and CUDA, against the
formulas written out in NumPy (float64), in train and eval form, with and without the fused ReLU, on drawn shapes;
the one-pass statistics on data far from 0; PTX of the CUDA kernels."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import batchnorm as B


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 3), C=st.integers(1, 4), L=st.integers(1, 9), seed=st.integers(0, 9), relu=st.booleans())
def test_batch_norm_kernels_match_reference(device, N, C, L, seed, relu):
    if N * L < 2:
        return
    rng = np.random.default_rng(seed)
    x, gy = rng.standard_normal((N, C, L)) * 3 + 1, rng.standard_normal((N, C, L))
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, mean, var, inv_std = B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True, relu)
    y_ref, mean_ref, var_ref = B.batch_norm_forward_ref(x, w, b, 1e-5, relu)
    for got, ref in [(y, y_ref), (mean, mean_ref), (var, var_ref)]:
        np.testing.assert_allclose(to_cpu(got), ref, rtol=1e-10, atol=1e-10)
    gx, gw, gb = B.batch_norm_backward(d(x), d(gy), mean, inv_std, d(w), True, d(b), relu)
    for got, ref in zip((gx, gw, gb), B.batch_norm_backward_ref(x, gy, w, mean_ref, var_ref, 1e-5, b, relu)):
        np.testing.assert_allclose(to_cpu(got), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_fused_relu_is_relu_of_batch_norm_and_masks_the_gradient(device):
    """relu=True gives exactly max(y, 0) of relu=False's y, and the gradient only where y > 0: half the values of
    a zero-bias normalisation are cut, so a missing mask or a wrong one shows."""
    rng = np.random.default_rng(3)
    x, gy = rng.standard_normal((4, 3, 10)).astype(np.float32), rng.standard_normal((4, 3, 10)).astype(np.float32)
    w, b = np.array([1.0, 2.0, -1.0], np.float32), np.zeros(3, np.float32)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, mean, _, inv_std = B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True)
    y_relu, *_ = B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True, True)
    y, y_relu = to_cpu(y), to_cpu(y_relu)
    assert 0.3 < (y > 0).mean() < 0.7
    np.testing.assert_array_equal(y_relu, np.maximum(y, 0))
    gx_masked, *_ = B.batch_norm_backward(d(x), d(gy * (y > 0)), mean, inv_std, d(w), True, d(b))
    gx_fused, *_ = B.batch_norm_backward(d(x), d(gy), mean, inv_std, d(w), True, d(b), True)
    np.testing.assert_allclose(to_cpu(gx_fused), to_cpu(gx_masked), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("relu", [False, True])
def test_eval_form_is_the_affine_map(device, relu):
    """Constant statistics: y = (x - mean) * scale + b (then the ReLU), gx = scale * gy (where the ReLU passed)."""
    rng = np.random.default_rng(1)
    x, gy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    mean, var, w, b = rng.standard_normal(3), rng.random(3) + 0.5, rng.standard_normal(3), rng.standard_normal(3)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, *_ = B.batch_norm_forward(d(x), d(mean), d(var), d(w), d(b), 1e-5, False, relu)
    scale = w / np.sqrt(var + 1e-5)
    y_ref = (x - mean[:, None]) * scale[:, None] + b[:, None]
    passed = y_ref > 0 if relu else np.ones_like(y_ref, bool)
    np.testing.assert_allclose(to_cpu(y), y_ref * passed, rtol=1e-12)
    gx, gw, gb = B.batch_norm_backward(d(x), d(gy), d(mean), d(1 / np.sqrt(var + 1e-5)), d(w), False, d(b), relu)
    np.testing.assert_allclose(to_cpu(gx), gy * passed * scale[:, None], rtol=1e-12)
    np.testing.assert_allclose(to_cpu(gb), (gy * passed).sum(axis=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize("offset", [1e3, 1e6])
def test_float32_statistics_keep_their_digits(offset):
    """131,072 float32 values a thousand and a million standard deviations from 0: the float64 partial sums of the
    shifted data keep the variance right (plain sums of x and x^2 would lose it to cancellation at 1e6)."""
    x = (offset + np.random.default_rng(2).standard_normal((128, 1, 1024))).astype(np.float32)
    _, mean, var, _ = B.batch_norm_forward(x, None, None, np.ones(1, np.float32), np.zeros(1, np.float32), 1e-5,
                                           True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(), rtol=1e-5)
    np.testing.assert_allclose(mean, x64.mean(), rtol=1e-7)


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
def test_cuda_kernels_compile_to_ptx():
    a, v = T.float32[:, :, ::1], T.float32[::1]
    assert ".entry" in compile_ptx(B._affine_gpu, (a, v, v, T.boolean, a))
    assert ".entry" in compile_ptx(B._masked_gpu, (a, a, v, v, a))
    assert ".entry" in compile_ptx(B._affine_add_relu_gpu, (a, v, v, a, a, T.boolean[:, :, ::1]))
    assert ".entry" in compile_ptx(B._grad_input_gpu, (a, a, v, v, v, v, T.boolean, v, v, a))


@pytest.mark.parametrize("device", DEVICES)
def test_residual_is_added_before_the_relu_and_its_mask_masks_the_backward(device):
    rng = np.random.default_rng(5)
    x, r = rng.standard_normal((3, 2, 7)) * 2 + 1, rng.standard_normal((3, 2, 7))
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    d = lambda a: backend.to_device(a, device)                        # noqa: E731
    y, mean, var, inv_std, mask = B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True, True, d(r))
    y_ref, mean_ref, var_ref = B.batch_norm_forward_ref(x, w, b, 1e-5, True, r)
    np.testing.assert_allclose(to_cpu(y), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(to_cpu(mask), y_ref > 0)
    assert 0.2 < to_cpu(mask).mean() < 0.8
    gy = rng.standard_normal(x.shape)
    gx, gw, gb, gr = B.batch_norm_backward(d(x), d(gy), mean, inv_std, d(w), True, mask=mask)
    np.testing.assert_array_equal(to_cpu(gr), gy * (y_ref > 0))
    refs = B.batch_norm_backward_ref(x, gy * (y_ref > 0), w, mean_ref, var_ref, 1e-5)
    for got, ref in zip((gx, gw, gb), refs):
        np.testing.assert_allclose(to_cpu(got), ref, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="only before a ReLU"):
        B.batch_norm_forward(d(x), None, None, d(w), d(b), 1e-5, True, False, d(r))
