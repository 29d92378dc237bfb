"""BatchNorm1d/2d, LocalResponseNorm, Dropout, Dropout2d: PyTorch's buffers and state-dict keys, running
statistics over several steps by hand, train/eval switching, devices and errors."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from helpers import DEVICES, randn


def test_batch_norm_state_dict_keys_and_buffers_as_pytorch():
    bn = nn.BatchNorm2d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(4))
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.item() == 0
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(nn.BatchNorm1d(3, affine=False, track_running_stats=False).state_dict()) == []


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm2d_running_stats_over_steps(device):
    bn = nn.BatchNorm2d(3, momentum=0.3).to(device)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = randn(4, 3, 2, 2, seed=step) * (step + 1) + step
        y = bn(mc.tensor(x, device=device))
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        rm, rv = 0.7 * rm + 0.3 * mean, 0.7 * rv + 0.3 * var * 16 / 15
        expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.item() == 3 and bn.running_mean.device == device
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5)
    bn.eval()                                            # eval: running statistics, buffers untouched
    x = randn(2, 3, 2, 2, seed=9)
    y = bn(mc.tensor(x, device=device))
    np.testing.assert_allclose(y.numpy(), (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5),
                               rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.item() == 3


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [randn(5, 2, seed=s) + s for s in range(3)]
    for x in xs:
        bn(mc.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(axis=0) for x in xs], axis=0), rtol=1e-5)


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    x = randn(6, 3, 4, seed=1)
    expected = (x - x.mean(axis=(0, 2))[:, None]) / np.sqrt(x.var(axis=(0, 2))[:, None] + 1e-5)
    np.testing.assert_allclose(bn(mc.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def batch_norm_forward_backward_ref(x, gy, weight, bias, eps, mean=None, var=None):
    """NumPy batch norm over (N, C, *), written from Ioffe & Szegedy (2015), algorithm 1 and section 3, without
    minicnn.  mean/var None: the batch's (biased) statistics, which depend on x; given: constants (eval).
    Returns y and the gradients of sum(y * gy) for x, weight and bias."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]                                       # values per channel
    batch = mean is None
    if batch:
        mean, var = x.mean(axis=axes), ((x - x.mean(axis=axes, keepdims=True)) ** 2).mean(axis=axes)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    y = weight.reshape(shape) * xhat + bias.reshape(shape)
    g_xhat = gy * weight.reshape(shape)
    if batch:                                                      # dL/dx = (m g - sum g - xhat sum(g xhat)) / (m s)
        gx = (m * g_xhat - g_xhat.sum(axis=axes, keepdims=True)
              - xhat * (g_xhat * xhat).sum(axis=axes, keepdims=True)) * inv_std.reshape(shape) / m
    else:
        gx = g_xhat * inv_std.reshape(shape)
    return y, gx, (gy * xhat).sum(axis=axes), gy.sum(axis=axes)


@given(N=st.integers(1, 4), C=st.integers(1, 3), spatial=st.lists(st.integers(1, 3), max_size=2),
       momentum=st.sampled_from([0.1, 0.5]), training=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm_module_gradients_match_numpy_reference(N, C, spatial, momentum, training, seed):
    shape = (N, C, *spatial)
    assume(not training or N * np.prod(spatial, dtype=int) > 1)
    bn = (nn.BatchNorm2d if len(spatial) == 2 else nn.BatchNorm1d)(C, eps=1e-3, momentum=momentum).double()
    bn.weight.data[:], bn.bias.data[:] = randn(C, seed=seed) + 1.5, randn(C, seed=seed + 1)
    bn.running_mean.data[:], bn.running_var.data[:] = randn(C, seed=seed + 2), np.linspace(0.5, 2.0, C)
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    bn.train(training)
    x = mc.tensor(randn(*shape, seed=seed + 3) * 2 + 0.5, dtype=np.float64, requires_grad=True)
    gy = randn(*shape, seed=seed + 4)
    y = bn(x)
    y.backward(mc.tensor(gy, dtype=np.float64))
    ref_y, gx, gw, gb = batch_norm_forward_backward_ref(
        x.numpy(), gy, bn.weight.numpy(), bn.bias.numpy(), 1e-3, *(() if training else (rm, rv)))
    np.testing.assert_allclose(y.numpy(), ref_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.bias.grad.numpy(), gb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.weight.grad.numpy(), gw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-8, atol=1e-10 * np.abs(gy).max())
    if training:                                                   # running statistics: unbiased variance
        xs = np.moveaxis(x.numpy(), 1, 0).reshape(C, -1)
        np.testing.assert_allclose(bn.running_mean.numpy(), (1 - momentum) * rm + momentum * xs.mean(1),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(bn.running_var.numpy(), (1 - momentum) * rv + momentum * xs.var(1, ddof=1),
                                   rtol=1e-12)


def test_batch_norm_load_state_dict_round_trip():
    a, b = nn.BatchNorm2d(2), nn.BatchNorm2d(2)
    a(mc.tensor(randn(3, 2, 2, 2, seed=4)))
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k].numpy(), v.numpy())


@pytest.mark.parametrize("layer, shape, message", [
    (nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d: expected 4D input, got shape \(2, 3, 4\)"),
    (nn.BatchNorm1d(3), (2, 3, 4, 4), r"BatchNorm1d: expected 2D or 3D input, got shape \(2, 3, 4, 4\)"),
    (nn.BatchNorm2d(3), (2, 5, 4, 4), r"BatchNorm2d: input has 5 channels .* expected num_features=3"),
    (nn.BatchNorm1d(3), (1, 3), "batch_norm: expected more than 1 value per channel"),
])
def test_batch_norm_errors(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(mc.tensor(np.ones(shape)))


def test_local_response_norm_module_matches_functional():
    layer = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    x = mc.tensor(randn(2, 7, 3, 3, seed=5))
    np.testing.assert_array_equal(layer(x).numpy(), F.local_response_norm(x, 5, 5e-4, 0.75, 2.0).numpy())
    assert list(layer.state_dict()) == [] and "5, alpha=0.0005" in repr(layer)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_dropout_modules_follow_train_and_eval(cls):
    layer, x = cls(0.5), mc.tensor(np.ones((4, 6, 3, 3)))
    mc.manual_seed(0)
    y = layer(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match=f"{cls.__name__}: dropout probability p has to be between 0 and 1"):
        cls(1.2)


def test_batch_norm_relu_2d_is_a_batch_norm_with_the_same_keys_and_a_relu_output():
    fused, plain = nn.BatchNormReLU2d(3), nn.BatchNorm2d(3)
    assert isinstance(fused, nn.BatchNorm2d)
    assert list(fused.state_dict()) == list(plain.state_dict())
    plain.weight.data[...] = fused.weight.data[...] = [1.0, -2.0, 0.5]
    x = mc.tensor(np.random.default_rng(0).standard_normal((4, 3, 5, 5)))
    np.testing.assert_allclose(fused(x).numpy(), F.relu(plain(x)).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused.running_var.numpy(), plain.running_var.numpy(), rtol=1e-6)
    fused.eval(), plain.eval()
    np.testing.assert_allclose(fused(x).numpy(), F.relu(plain(x)).numpy(), rtol=1e-6, atol=1e-7)


def test_batch_norm_relu_2d_adds_the_residual_before_the_relu():
    fused, plain = nn.BatchNormReLU2d(3), nn.BatchNorm2d(3)
    x, r = (mc.tensor(np.random.default_rng(s).standard_normal((4, 3, 5, 5))) for s in (1, 2))
    np.testing.assert_allclose(fused(x, residual=r).numpy(), F.relu(plain(x) + r).numpy(), rtol=1e-6, atol=1e-7)
