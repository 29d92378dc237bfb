"""Activations and losses: values against NumPy references written from PyTorch's documented formulas,
float64 gradients against finite differences, errors on bad targets."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

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


@given(n=st.integers(1, 3), c=st.integers(2, 4), spatial=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       seed=st.integers(0, 2**16))
def test_cross_entropy_spatial_and_probability_targets(n, c, spatial, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((n, c, *spatial)), rng.integers(0, c, (n, *spatial))
    flat_x, flat_t = np.moveaxis(x, 1, -1).reshape(-1, c), t.reshape(-1)
    np.testing.assert_allclose(F.cross_entropy(mc.tensor(x, dtype=np.float64), t).item(),
                               cross_entropy_ref(flat_x, flat_t))
    p = rng.dirichlet(np.ones(c), n)
    x2 = rng.standard_normal((n, c))
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


REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}
reductions = st.sampled_from(list(REDUCE))
small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def pair(shape, seed):
    """Input and target whose entries all differ by >= 0.07: no |x - y| lands near L1's kink at 0."""
    x, y = distinct_values((2, *shape), seed=seed, spacing=0.07)
    return x, y


@given(shape=small_shapes, reduction=reductions, seed=st.integers(0, 2**16))
def test_mse_loss(shape, reduction, seed):
    x, y = pair(shape, seed)
    got = F.mse_loss(mc.tensor(x, dtype=np.float64), y, reduction=reduction)
    np.testing.assert_allclose(got.numpy(), REDUCE[reduction]((x - y) ** 2), rtol=1e-12)
    mc.gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [x, y])


@given(shape=small_shapes, reduction=reductions, beta=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
       seed=st.integers(0, 2**16))
def test_smooth_l1_loss(shape, reduction, beta, seed):
    x, y = pair(shape, seed)
    d = np.abs(x - y)
    ref = d if beta == 0 else np.where(d < beta, 0.5 * d ** 2 / max(beta, 1e-12), d - 0.5 * beta)
    got = F.smooth_l1_loss(mc.tensor(x, dtype=np.float64), y, reduction=reduction, beta=beta)
    np.testing.assert_allclose(got.numpy(), REDUCE[reduction](ref), rtol=1e-12)
    mc.gradcheck(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, y])


@given(shape=small_shapes, reduction=reductions, weighted=st.booleans(), pos_weighted=st.booleans(),
       seed=st.integers(0, 2**16))
def test_binary_cross_entropy_with_logits(shape, reduction, weighted, pos_weighted, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape) * 3, rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2, shape) if weighted else None
    pw = rng.uniform(0.5, 3, shape[-1]) if pos_weighted else None   # per class: broadcasts over the last dim
    sig = 1 / (1 + np.exp(-x))
    ref = -((1 if pw is None else pw) * t * np.log(sig) + (1 - t) * np.log(1 - sig)) * (1 if w is None else w)
    got = F.binary_cross_entropy_with_logits(mc.tensor(x, dtype=np.float64), t, weight=w, reduction=reduction,
                                             pos_weight=pw)
    np.testing.assert_allclose(got.numpy(), REDUCE[reduction](ref), rtol=1e-10)
    mc.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, reduction=reduction,
                                                                 pos_weight=pw), [x, t])


@given(n=st.integers(1, 4), d=st.integers(1, 5), p=st.sampled_from([1, 2, 3]), swap=st.booleans(),
       margin=st.sampled_from([0.5, 1.0, 3.0]), reduction=reductions, seed=st.integers(0, 2**16))
def test_triplet_margin_loss(n, d, p, swap, margin, reduction, seed):
    # continuous draws: values on a lattice (distinct_values) give exactly equal distances, the kink of swap's min
    a, pos, neg = np.random.default_rng(seed).standard_normal((3, n, d))

    def dist(u, v):
        return (np.abs(u - v + 1e-6) ** p).sum(axis=-1) ** (1 / p)
    d_an = np.minimum(dist(a, neg), dist(pos, neg)) if swap else dist(a, neg)
    ref = np.maximum(dist(a, pos) - d_an + margin, 0)
    got = F.triplet_margin_loss(*(mc.tensor(v, dtype=np.float64) for v in (a, pos, neg)), margin=margin, p=p,
                                swap=swap, reduction=reduction)
    np.testing.assert_allclose(got.numpy(), REDUCE[reduction](ref), rtol=1e-10)
    mc.gradcheck(lambda *t: F.triplet_margin_loss(*t, margin=margin, p=p, swap=swap, reduction=reduction),
                 [a, pos, neg])


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
