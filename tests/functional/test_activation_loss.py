"""Activations and losses: values against NumPy references written from PyTorch's documented formulas,
float64 gradients against finite differences, errors on bad targets."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import distinct_values, randn


def log_softmax_ref(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "softmax": (lambda t: F.softmax(t, dim=1), lambda x: np.exp(log_softmax_ref(x, 1))),
    "log_softmax": (lambda t: F.log_softmax(t, dim=-1), lambda x: log_softmax_ref(x, -1)),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(n=st.integers(1, 4), c=st.integers(1, 5), seed=st.integers(0, 50))
def test_activations(name, n, c, seed):
    fn, ref = ACTIVATIONS[name]
    x = distinct_values((n, c, 3), seed=seed, spacing=0.13)
    np.testing.assert_allclose(fn(mc.tensor(x, dtype=np.float64)).numpy(), ref(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fn(mc.tensor(x)).numpy(), ref(x), rtol=1e-5, atol=1e-7)    # float32
    mc.gradcheck(fn, [x])


def test_softmax_is_stable_for_huge_logits():
    y = F.log_softmax(mc.tensor([[1000.0, 0.0, -1000.0]]), dim=1).numpy()
    assert np.isfinite(y).all() and abs(y[0, 0]) < 1e-6
    assert np.isfinite(F.sigmoid(mc.tensor([-1000.0, 1000.0])).numpy()).all()


def cross_entropy_ref(x, t, weight=None, ignore_index=-100, reduction="mean", eps=0.0):
    """PyTorch's formula for class-index targets, (N, C) logits."""
    C = x.shape[1]
    lp = log_softmax_ref(x, 1)
    w = np.ones(C) if weight is None else weight
    valid = t != ignore_index
    tt = np.where(valid, t, 0)
    nll = -lp[np.arange(len(t)), tt] * w[tt] * valid
    smooth = -(lp * w).sum(1) * valid
    if reduction == "none":
        return (1 - eps) * nll + eps / C * smooth
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / C * smooth.sum()
    total = (w[tt] * valid).sum()
    return (1 - eps) * nll.sum() / total + eps / C * smooth.sum() / total


@given(n=st.integers(1, 6), c=st.integers(2, 5), eps=st.sampled_from([0.0, 0.1, 0.3]),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(), ignore=st.booleans(),
       seed=st.integers(0, 100))
def test_cross_entropy(n, c, eps, reduction, weighted, ignore, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((n, c)), rng.integers(0, c, n)
    if ignore:
        t[0] = -100
        if n == 1 and reduction == "mean":
            return                                # 0/0, as in PyTorch
    w = rng.uniform(0.5, 2, c) if weighted else None
    got = F.cross_entropy(mc.tensor(x, dtype=np.float64), t, weight=w, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(got.numpy(), cross_entropy_ref(x, t, w, -100, reduction, eps), rtol=1e-10)
    mc.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction, label_smoothing=eps), [x])


def test_cross_entropy_spatial_and_probability_targets():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3, 2, 2)), rng.integers(0, 3, (2, 2, 2))
    flat_x, flat_t = x.transpose(0, 2, 3, 1).reshape(-1, 3), t.reshape(-1)
    np.testing.assert_allclose(F.cross_entropy(mc.tensor(x, dtype=np.float64), t).item(),
                               cross_entropy_ref(flat_x, flat_t))
    p = rng.dirichlet(np.ones(3), 4)
    x2 = rng.standard_normal((4, 3))
    np.testing.assert_allclose(F.cross_entropy(mc.tensor(x2, dtype=np.float64), mc.tensor(p, dtype=np.float64)).item(),
                               -(p * log_softmax_ref(x2, 1)).sum(1).mean())
    mc.gradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.1), [x])


def test_nll_loss_matches_cross_entropy():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    lp = F.log_softmax(mc.tensor(x, dtype=np.float64), dim=1)
    np.testing.assert_allclose(F.nll_loss(lp, t).item(), cross_entropy_ref(x, t))


def test_loss_errors():
    x = mc.tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy: target shape \(5,\) does not match input shape \(4, 3\)"):
        F.cross_entropy(x, np.zeros(5, int))
    with pytest.raises(ValueError, match=r"target holds class 3, outside \[0, 3\)"):
        F.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(x, mc.tensor(np.zeros(4, np.float32)).numpy().astype(np.float32))
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(mc.tensor(np.zeros((4, 3), int)), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(4,\) must equal input shape \(4, 3\)"):
        F.mse_loss(x, np.zeros(4))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, np.zeros((4, 3)), reduction="avg")


def test_regression_losses():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    X = mc.tensor(x, dtype=np.float64)
    np.testing.assert_allclose(F.mse_loss(X, y).item(), ((x - y) ** 2).mean())
    d = np.abs(x - y)
    for beta in (0.0, 0.5, 1.0):
        ref = d if beta == 0 else np.where(d < beta, 0.5 * d ** 2 / max(beta, 1e-12), d - 0.5 * beta)
        np.testing.assert_allclose(F.smooth_l1_loss(X, y, reduction="sum", beta=beta).item(), ref.sum())
        mc.gradcheck(lambda a, b: F.smooth_l1_loss(a, b, beta=beta), [x, y])
    t, pw = rng.uniform(0, 1, (3, 4)), np.array([1.0, 2.0, 0.5, 3.0])
    sig = 1 / (1 + np.exp(-x))
    ref = -(pw * t * np.log(sig) + (1 - t) * np.log(1 - sig))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(X, t, pos_weight=pw, reduction="none").numpy(), ref)
    mc.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw), [x, t])
    mc.gradcheck(F.mse_loss, [x, y])
    a, p, n = rng.standard_normal((3, 5, 4))
    ref = np.maximum(np.linalg.norm(a - p + 1e-6, axis=1) - np.linalg.norm(a - n + 1e-6, axis=1) + 1.0, 0).mean()
    np.testing.assert_allclose(F.triplet_margin_loss(*(mc.tensor(v, dtype=np.float64) for v in (a, p, n))).item(), ref)
    mc.gradcheck(F.triplet_margin_loss, [a, p, n])


@given(n=st.integers(1, 5), i=st.integers(1, 6), o=st.integers(1, 4), bias=st.booleans())
def test_linear(n, i, o, bias):
    x, w, b = randn(n, i, seed=1), randn(o, i, seed=2), randn(o, seed=3)
    args = [x, w] + ([b] if bias else [])
    want = x @ w.T + (b if bias else 0)
    np.testing.assert_allclose(F.linear(*(mc.tensor(a, dtype=np.float64) for a in args)).numpy(), want)
    mc.gradcheck(F.linear, args)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input shape \(2, 3\) does not end in in_features=4"):
        F.linear(mc.tensor(np.ones((2, 3))), mc.tensor(np.ones((5, 4))))
