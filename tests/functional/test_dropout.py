"""dropout and dropout2d: inverted scaling, identity in eval, seeded masks equal on every device, float64
gradients with a fixed mask, errors for bad p and shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, randn


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_zeros_a_fraction_p_and_scales_the_rest(device, p):
    mc.manual_seed(0)
    x = np.linspace(1, 2, 4000).reshape(40, 100)
    y = F.dropout(mc.tensor(x, device=device), p, training=True).numpy()
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.03
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_dropout_is_the_identity_in_eval_and_for_p0(fn):
    x = mc.tensor(randn(2, 3, 4, 4, seed=0))
    state = mc.random.get_rng_state()
    for y in (fn(x, 0.5, training=False), fn(x, 0.0, training=True)):
        np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert mc.random.get_rng_state() == state            # no mask drawn


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_dropout_p1_zeros_everything_and_its_gradient(fn):
    x = mc.tensor(randn(2, 3, 2, 2, seed=1), requires_grad=True)
    y = fn(x, 1.0)
    assert not y.numpy().any()
    (y * 3.0).sum().backward()
    assert not x.grad.numpy().any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_seeded_masks_match_across_devices(device, fn):
    x = randn(3, 4, 2, 3, seed=2)
    mc.manual_seed(7)
    y_cpu = fn(mc.tensor(x), 0.5).numpy()
    mc.manual_seed(7)
    y_dev = fn(mc.tensor(x, device=device), 0.5)
    assert y_dev.device == device
    np.testing.assert_array_equal(y_dev.numpy(), y_cpu)
    mc.manual_seed(8)
    assert not np.array_equal(fn(mc.tensor(x), 0.5).numpy(), y_cpu)   # the seed matters


@pytest.mark.parametrize("device", DEVICES)
def test_dropout2d_drops_whole_channels(device):
    mc.manual_seed(1)
    x = mc.tensor(np.ones((4, 8, 3, 3)), device=device, requires_grad=True)
    y = F.dropout2d(x, 0.5)
    planes = y.numpy().reshape(4, 8, 9)
    assert set(np.unique(planes)) == {0.0, 2.0}
    assert (planes == planes[:, :, :1]).all()           # every plane all kept or all dropped
    y.backward(mc.tensor(np.ones((4, 8, 3, 3)), device=device))
    np.testing.assert_array_equal(x.grad.numpy(), planes.reshape(4, 8, 3, 3))   # gradient = the mask
    assert F.dropout2d(mc.tensor(np.ones((8, 3, 3))), 0.5).shape == (8, 3, 3)  # unbatched (C, H, W)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data(), p=st.floats(0.05, 0.95))
def test_dropout_fn_gradcheck_with_fixed_mask(shape, data, p):
    mask_shape = data.draw(st.tuples(*[st.sampled_from([n, 1]) for n in shape]), label="mask_shape")  # broadcasts
    mask = (np.random.default_rng(len(shape)).random(mask_shape) >= p) / (1 - p)
    mc.gradcheck(lambda x: F.DropoutFn(mask)(x), [randn(*shape, seed=3)])


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
@given(shape=hnp.array_shapes(min_dims=3, max_dims=4, max_side=4), p=st.floats(0.05, 0.95), seed=st.integers(0, 99))
def test_dropout_gradcheck_with_a_reseeded_mask(fn, shape, p, seed):
    # cpu only: each evaluation draws a mask, ~100 per example, too slow in the CUDA simulator; the device's
    # gradient is checked against its mask in test_dropout2d_drops_whole_channels
    def f(t):
        mc.manual_seed(seed)                                # the same mask at every evaluation
        return fn(t, p)
    y = f(mc.tensor(np.ones(shape))).numpy()                # the mask itself: 0 or 1 / (1 - p) ...
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    if fn is F.dropout2d:                                   # ... one value per (n, c) plane for dropout2d
        assert (y == y[..., :1, :1]).all()
    mc.gradcheck(f, [randn(*shape, seed=seed)])


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_0_1(fn, p):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: dropout probability p has to be between 0 and 1, got {p}"):
        fn(mc.tensor(np.ones((2, 2, 2, 2))), p)


def test_dropout2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"dropout2d: expected input \(N, C, H, W\) or \(C, H, W\), got shape \(2, 5\)"):
        F.dropout2d(mc.tensor(np.ones((2, 5))), 0.5)
