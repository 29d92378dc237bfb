"""The layers of MobileNetV2 / EfficientNet / MobileNetV3: relu6, silu, hardswish, hardsigmoid against NumPy
references from PyTorch's documented formulas and float64 finite differences (inputs kept off the kinks at
-3, 0, 3, 6); stochastic_depth's per-sample / per-batch masks; SqueezeExcitation against a NumPy forward."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from helpers import DEVICES, randn


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = {
    "relu6": (F.relu6, nn.ReLU6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "silu": (F.silu, nn.SiLU, lambda x: x * sigmoid(x)),
    "hardswish": (F.hardswish, nn.Hardswish, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6),
    "hardsigmoid": (F.hardsigmoid, nn.Hardsigmoid, lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6),
}


def off_kinks(shape, seed):
    """Values in (-8, 8) at least 0.05 away from -3, 0, 3 and 6."""
    x = np.random.default_rng(seed).uniform(-8, 8, shape)
    for k in (-3.0, 0.0, 3.0, 6.0):
        near = np.abs(x - k) < 0.05
        x[near] = k + 0.1
    return x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_and_gradients(name, device):
    fn, module, ref = ACTIVATIONS[name]
    x = off_kinks((3, 4, 5, 2), seed=len(name))
    np.testing.assert_allclose(fn(mc.tensor(x, dtype=np.float64, device=device)).numpy(), ref(x), rtol=1e-12,
                               atol=1e-14)
    y32 = module()(mc.tensor(x, device=device))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32.numpy(), ref(x), rtol=1e-5, atol=1e-6)
    mc.gradcheck(fn, [mc.tensor(x, dtype=np.float64, device=device)])


def test_gradients_at_the_kinks_follow_pytorch():
    """relu6 passes nothing at exactly 0 and 6; hardswish's slope is (2x + 3) / 6 on [-3, 3] (so -1/2 at -3 and
    3/2 at 3), 1 above; hardsigmoid passes 1/6 strictly inside (-3, 3)."""
    x = mc.tensor([-3.0, 0.0, 3.0, 6.0], dtype=np.float64, requires_grad=True)
    expected = {F.relu6: [0, 0, 1, 0], F.hardswish: [-0.5, 0.5, 1.5, 1], F.hardsigmoid: [0, 1 / 6, 0, 0]}
    for fn, grad in expected.items():
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=0, atol=1e-15)


def test_activations_reject_integer_input():
    for name, (fn, _, _) in ACTIVATIONS.items():
        with pytest.raises(TypeError, match=name):
            fn(mc.tensor(np.arange(3)))


@pytest.mark.parametrize("device", DEVICES)
def test_stochastic_depth_row_drops_whole_samples(device):
    x = np.random.default_rng(0).uniform(1, 2, (400, 2, 3, 3))
    mc.manual_seed(3)
    y = F.stochastic_depth(mc.tensor(x, dtype=np.float64, device=device), 0.3, "row").numpy()
    dropped = (y == 0).reshape(400, -1)
    assert (dropped.all(1) | ~dropped.any(1)).all()                  # a sample is dropped entirely or not at all
    assert abs(dropped.all(1).mean() - 0.3) < 0.07
    kept = ~dropped.all(1)
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-12)
    mc.manual_seed(3)                                                 # seeded: the same decisions again
    again = F.stochastic_depth(mc.tensor(x, dtype=np.float64, device=device), 0.3, "row").numpy()
    np.testing.assert_array_equal(again, y)


def test_stochastic_depth_batch_mode_eval_and_gradient():
    x = randn(6, 3, 2, 2, seed=1)
    mc.manual_seed(0)
    outs = [F.stochastic_depth(mc.tensor(x), 0.5, "batch").numpy() for _ in range(20)]
    for y in outs:                                                    # one decision for the whole batch
        assert (not y.any()) or np.allclose(y, 2 * x.astype(np.float32))
    assert 0 < sum(not y.any() for y in outs) < 20
    np.testing.assert_array_equal(F.stochastic_depth(mc.tensor(x), 0.5, "row", training=False).numpy(),
                                  mc.tensor(x).numpy())
    m = nn.StochasticDepth(0.5, "row").eval()
    assert m(mc.tensor(x)).numpy().tolist() == mc.tensor(x).numpy().tolist()

    def fn(t):                                                        # a fixed mask each evaluation
        mc.manual_seed(5)
        return F.stochastic_depth(t, 0.4, "row")
    mc.gradcheck(fn, [x])
    with pytest.raises(ValueError, match="stochastic_depth: mode"):
        F.stochastic_depth(mc.tensor(x), 0.5, "col")
    with pytest.raises(ValueError, match="StochasticDepth: drop probability"):
        nn.StochasticDepth(1.5, "row")


def test_squeeze_excitation_against_numpy():
    mc.manual_seed(0)
    se = nn.SqueezeExcitation(6, 2, activation=nn.SiLU).double()
    x = randn(2, 6, 4, 3, seed=2)
    w1, b1 = se.fc1.weight.numpy()[:, :, 0, 0], se.fc1.bias.numpy()
    w2, b2 = se.fc2.weight.numpy()[:, :, 0, 0], se.fc2.bias.numpy()
    s = x.mean(axis=(2, 3))                                           # squeeze: (N, C)
    h = s @ w1.T + b1
    gate = sigmoid((h * sigmoid(h)) @ w2.T + b2)                      # excitation: (N, C) in (0, 1)
    np.testing.assert_allclose(se(mc.tensor(x, dtype=np.float64)).numpy(), x * gate[:, :, None, None],
                               rtol=1e-12)
    assert list(se.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert se.fc1.weight.shape == (2, 6, 1, 1)
    mc.gradcheck(lambda t: se(t), [x])
