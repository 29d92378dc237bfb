"""batch_norm and local_response_norm: values against NumPy, running-statistic updates by hand, float64
gradients against finite differences (training and eval), errors before any work."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, distinct_values, randn
from minicnn.kernels import lrn


def batch_norm_ref(x, mean, var, weight, bias, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * weight.reshape(shape) + bias.reshape(shape)


def batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)


def bn_shapes(training=False):
    """(N, C), (N, C, L) or (N, C, H, W), small; batch 1 too.  In training, more than one value per channel."""
    shapes = st.builds(lambda N, C, spatial: (N, C, *spatial), st.integers(1, 4), st.integers(1, 3),
                       st.lists(st.integers(1, 3), max_size=2))
    return shapes.filter(lambda s: s[0] * np.prod(s[2:], dtype=int) > 1) if training else shapes


def spread(shape, seed):
    """Values in random order, pairwise >= 0.25 apart: every channel's batch variance is well away from 0, so
    normalising is well conditioned and central differences are accurate."""
    return distinct_values(shape, seed=seed, spacing=0.25)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=bn_shapes(training=True), seed=st.integers(0, 2**16))
def test_batch_norm_training_matches_reference_float32(device, shape, seed):
    x, w, b = spread(shape, seed) * 4 + 1, randn(shape[1], seed=seed + 1), randn(shape[1], seed=seed + 2)
    y = F.batch_norm(mc.tensor(x, device=device), None, None, mc.tensor(w, device=device),
                     mc.tensor(b, device=device), training=True)
    ref = batch_norm_ref(x, *batch_stats(x), w, b, 1e-5)
    assert y.dtype == np.float32 and y.device == device
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("device", DEVICES)
@given(shape=bn_shapes(), seed=st.integers(0, 2**16))
def test_batch_norm_eval_uses_running_stats(device, shape, seed):
    C = shape[1]
    x, rm, rv = randn(*shape, seed=seed), randn(C, seed=seed + 1), np.linspace(0.5, 2.0, C)
    rm_t, rv_t = mc.tensor(rm, device=device), mc.tensor(rv, device=device)
    y = F.batch_norm(mc.tensor(x, device=device), rm_t, rv_t, training=False, eps=1e-3)
    np.testing.assert_allclose(y.numpy(), batch_norm_ref(x, rm, rv, np.ones(C), np.zeros(C), 1e-3),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rm_t.numpy(), rm.astype(np.float32))    # eval leaves the buffers alone
    np.testing.assert_array_equal(rv_t.numpy(), rv.astype(np.float32))


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_training_updates_running_stats_in_place(device):
    x = np.array([[1.0, 10.0], [3.0, 20.0], [8.0, 60.0]])              # (N=3, C=2)
    rm, rv = mc.tensor([0.5, -1.0], device=device), mc.tensor([2.0, 1.0], device=device)
    rm_data, rv_data = rm.data, rv.data
    F.batch_norm(mc.tensor(x, device=device), rm, rv, training=True, momentum=0.2)
    mean = np.array([4.0, 30.0])                                          # by hand
    unbiased = np.array([((1 - 4) ** 2 + (3 - 4) ** 2 + (8 - 4) ** 2) / 2, (400 + 100 + 900) / 2])
    np.testing.assert_allclose(rm.numpy(), 0.8 * np.array([0.5, -1.0]) + 0.2 * mean, rtol=1e-6)
    np.testing.assert_allclose(rv.numpy(), 0.8 * np.array([2.0, 1.0]) + 0.2 * unbiased, rtol=1e-6)
    assert rm.data is rm_data and rv.data is rv_data                    # the very buffers handed in
    rm_arr = mc.tensor(np.zeros(2), device=device).data                  # plain arrays (of the input's device)
    F.batch_norm(mc.tensor(x, device=device), rm_arr, None, training=True, momentum=1.0)   # are updated too
    np.testing.assert_allclose(mc.tensor(rm_arr).numpy(), mean, rtol=1e-6)
    if device == "cuda":                                                  # a host buffer for a device input
        with pytest.raises(RuntimeError, match="batch_norm: running_mean is on cpu, input on cuda"):
            F.batch_norm(mc.tensor(x, device=device), np.zeros(2), None, training=True)


@given(shape=bn_shapes(training=True), seed=st.integers(0, 2**16), affine=st.booleans())
def test_batch_norm_gradcheck_training(shape, seed, affine):
    C = shape[1]
    wb = [randn(C, seed=seed + 1), randn(C, seed=seed + 2)] if affine else []
    mc.gradcheck(lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True), [spread(shape, seed), *wb])


@given(shape=bn_shapes(), seed=st.integers(0, 2**16))
def test_batch_norm_gradcheck_eval(shape, seed):
    C = shape[1]
    rm, rv = randn(C, seed=seed), np.linspace(0.3, 3.0, C)
    mc.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False),
                 [randn(*shape, seed=seed + 1), randn(C, seed=seed + 2), randn(C, seed=seed + 3)])


@pytest.mark.parametrize("device", DEVICES)
@given(shape=bn_shapes(training=True), seed=st.integers(0, 2**16), training=st.booleans())
def test_batch_norm_gradcheck_on_device(device, shape, seed, training):
    C = shape[1]
    x = mc.tensor(spread(shape, seed), dtype=np.float64, device=device)
    w = mc.tensor(randn(C, seed=seed + 1), dtype=np.float64, device=device)
    rm, rv = (None, None) if training else (mc.tensor(v, dtype=np.float64, device=device)
                                            for v in (randn(C, seed=seed + 2), np.linspace(0.3, 3.0, C)))
    mc.gradcheck(lambda x, w: F.batch_norm(x, rm, rv, w, None, training=training), [x, w])


@pytest.mark.parametrize("call, message", [
    (lambda x: F.batch_norm(x[:1], None, None, training=True), "more than 1 value per channel"),
    (lambda x: F.batch_norm(mc.tensor(np.ones((1, 3, 1, 1))), None, None, training=True),
     "more than 1 value per channel"),
    (lambda x: F.batch_norm(x, np.zeros(3), np.ones(4), training=False), r"running_var must have shape \(3,\)"),
    (lambda x: F.batch_norm(x, None, None, weight=mc.tensor(np.ones(2)), training=True), r"weight .*\(2,\)"),
    (lambda x: F.batch_norm(x, None, None, training=False), "running_mean and running_var are needed"),
    (lambda x: F.batch_norm(mc.tensor(np.ones(3)), None, None, training=True), r"got shape \(3,\)"),
])
def test_batch_norm_errors(call, message):
    with pytest.raises(ValueError, match="batch_norm: .*" + message):
        call(mc.tensor(randn(4, 3, seed=0)))


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 2), C=st.integers(1, 6), L=st.integers(1, 3), size=st.integers(1, 7))
def test_local_response_norm_matches_reference_float32(device, N, C, L, size):
    x = randn(N, C, L, 2, seed=C) * 2
    y = F.local_response_norm(mc.tensor(x, device=device), size, alpha=0.1, beta=0.75, k=2.0)
    np.testing.assert_allclose(y.numpy(), lrn.lrn_forward_ref(x, size, 0.1, 0.75, 2.0)[0], rtol=1e-5, atol=1e-7)


def test_local_response_norm_alexnet_convention():
    x = randn(1, 8, 2, 2, seed=1)
    paper = x.copy()                                    # the AlexNet paper: k + alpha * sum, alpha NOT / n
    for c in range(8):
        paper[:, c] = x[:, c] / (2 + 1e-4 * (x[:, max(0, c - 2):c + 3] ** 2).sum(axis=1)) ** 0.75
    y = F.local_response_norm(mc.tensor(x, dtype=np.float64), 5, alpha=5e-4, beta=0.75, k=2.0)
    np.testing.assert_allclose(y.numpy(), paper, rtol=1e-12)


@given(C=st.integers(1, 6), size=st.integers(1, 7), beta=st.floats(0.3, 1.2))
def test_local_response_norm_gradcheck(C, size, beta):
    mc.gradcheck(lambda x: F.local_response_norm(x, size, alpha=0.5, beta=beta, k=1.0), [randn(2, C, 3, seed=C)])


@pytest.mark.parametrize("device", DEVICES)
def test_local_response_norm_gradcheck_on_device(device):
    x = mc.tensor(randn(1, 4, 2, seed=2), dtype=np.float64, device=device)
    mc.gradcheck(lambda x: F.local_response_norm(x, 3, alpha=0.5, beta=0.75, k=1.0), [x])


def test_local_response_norm_errors():
    with pytest.raises(ValueError, match=r"local_response_norm: expected 3D .* got shape \(2, 3\)"):
        F.local_response_norm(mc.tensor(np.ones((2, 3))), 2)
    with pytest.raises(ValueError, match="local_response_norm: size must be a positive integer, got 0"):
        F.local_response_norm(mc.tensor(np.ones((2, 3, 4))), 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_is_relu_of_batch_norm(device, training):
    x = mc.tensor(randn(4, 3, 5, 5, seed=7), device=device, requires_grad=True)
    w, b = (mc.tensor(randn(3, seed=s), device=device, requires_grad=True) for s in (8, 9))
    rm, rv = (None, None) if training else (mc.tensor(randn(3, seed=10), device=device),
                                            mc.tensor(np.linspace(0.5, 2.0, 3), device=device))
    gy = randn(4, 3, 5, 5, seed=11)
    grads = []
    for f in (lambda: F.batch_norm_relu(x, rm, rv, w, b, training=training),
              lambda: F.relu(F.batch_norm(x, rm, rv, w, b, training=training))):
        x.grad = w.grad = b.grad = None
        y = f()
        y.backward(mc.tensor(gy, device=device))
        grads.append([y.numpy()] + [t.grad.numpy() for t in (x, w, b)])
    assert 0.1 < (grads[0][0] > 0).mean() < 0.9                      # the ReLU cuts a good share
    for got, ref in zip(*grads):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@given(shape=bn_shapes(training=True), seed=st.integers(0, 2**16), training=st.booleans())
def test_batch_norm_relu_gradcheck(shape, seed, training):
    """float64 finite differences, away from the ReLU's kink (no output within 0.01 of 0)."""
    C = shape[1]
    x, w, b = spread(shape, seed), randn(C, seed=seed + 1), randn(C, seed=seed + 2)
    rm, rv = (None, None) if training else (randn(C, seed=seed + 3), np.linspace(0.3, 3.0, C))
    y = F.batch_norm(mc.tensor(x, dtype=np.float64), rm, rv, mc.tensor(w, dtype=np.float64),
                     mc.tensor(b, dtype=np.float64), training=training).numpy()
    assume(np.abs(y).min() > 0.01)
    mc.gradcheck(lambda x, w, b: F.batch_norm_relu(x, rm, rv, w, b, training=training), [x, w, b])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_with_residual_is_relu_of_the_sum(device, training):
    x, r = (mc.tensor(randn(4, 3, 5, 5, seed=s), device=device, requires_grad=True) for s in (12, 13))
    w, b = (mc.tensor(randn(3, seed=s), device=device, requires_grad=True) for s in (14, 15))
    rm, rv = (None, None) if training else (mc.tensor(randn(3, seed=16), device=device),
                                            mc.tensor(np.linspace(0.5, 2.0, 3), device=device))
    gy = randn(4, 3, 5, 5, seed=17)
    results = []
    for f in (lambda: F.batch_norm_relu(x, rm, rv, w, b, training=training, residual=r),
              lambda: F.relu(F.batch_norm(x, rm, rv, w, b, training=training) + r)):
        x.grad = r.grad = w.grad = b.grad = None
        y = f()
        y.backward(mc.tensor(gy, device=device))
        results.append([y.numpy()] + [t.grad.numpy() for t in (x, r, w, b)])
    assert 0.1 < (results[0][0] > 0).mean() < 0.9
    for got, ref in zip(*results):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@given(shape=bn_shapes(training=True), seed=st.integers(0, 2**16))
def test_batch_norm_relu_with_residual_gradcheck(shape, seed):
    C = shape[1]
    x, r, w, b = spread(shape, seed), randn(*shape, seed=seed + 3), randn(C, seed=seed + 1), randn(C, seed=seed + 2)
    y = F.batch_norm(mc.tensor(x, dtype=np.float64), None, None, mc.tensor(w, dtype=np.float64),
                     mc.tensor(b, dtype=np.float64), training=True).numpy() + r
    assume(np.abs(y).min() > 0.01)
    mc.gradcheck(lambda x, r, w, b: F.batch_norm_relu(x, None, None, w, b, training=True, residual=r), [x, r, w, b])


@pytest.mark.parametrize("residual, message", [
    (np.ones((2, 3, 4, 4)), "residual must be a Tensor"),
    (mc.tensor(np.ones((2, 3, 4, 3))), r"residual must match input \(shape \(2, 3, 4, 4\)"),
    (mc.tensor(np.ones((2, 3, 4, 4)), dtype=np.float64), "residual must match input"),
])
def test_batch_norm_relu_residual_errors(residual, message):
    with pytest.raises((TypeError, ValueError), match="batch_norm_relu: " + message):
        F.batch_norm_relu(mc.tensor(np.ones((2, 3, 4, 4), np.float32)), None, None, training=True,
                          residual=residual)
