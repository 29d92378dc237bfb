"""backward(retain_graph=...), mc.autograd.grad, retain_grad, set_grad_enabled: values against hand-derived
gradients and finite differences."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F


def t64(a, requires_grad=True):
    return mc.tensor(a, dtype=mc.float64, requires_grad=requires_grad)


def test_retain_graph_allows_a_second_backward():
    x = t64([1.0, 2.0, 3.0])
    y = (x * x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.0, 4, 9]))
    y.backward()                                  # accumulates, as PyTorch
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, 4, 9]))
    with pytest.raises(RuntimeError, match="the graph was freed by an earlier backward"):
        y.backward()
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        (x * 2).sum().backward(create_graph=True)


def test_backward_with_gradient_argument():
    x = t64(np.arange(4.0))
    (x * 3).backward(gradient=mc.tensor([1.0, 0.0, 2.0, -1.0], dtype=mc.float64))
    np.testing.assert_allclose(x.grad.numpy(), [3, 0, 6, -3])


def test_grad_returns_gradients_without_touching_dot_grad():
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    x, w = t64(xa), t64(wa)
    h = x @ w
    loss = F.tanh(h).sum()
    gx, gw, gh = mc.autograd.grad(loss, [x, w, h])
    assert x.grad is None and w.grad is None
    dh = 1 - np.tanh(xa @ wa) ** 2
    np.testing.assert_allclose(gh.numpy(), dh)
    np.testing.assert_allclose(gx.numpy(), dh @ wa.T)
    np.testing.assert_allclose(gw.numpy(), xa.T @ dh)


def test_grad_with_grad_outputs_several_outputs_and_unused_inputs():
    x, y, unused = t64([1.0, 2.0]), t64([3.0, -1.0]), t64([5.0])
    a, b = x * y, x * x
    ga = mc.tensor([1.0, 2.0], dtype=mc.float64)
    gx, = mc.autograd.grad([a, b], x, grad_outputs=[ga, mc.ones(2, dtype=mc.float64)],
                           retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [3 * 1 + 2 * 1, -1 * 2 + 2 * 2])
    with pytest.raises(RuntimeError, match="input 1 was not used to compute the outputs"):
        mc.autograd.grad(a.sum(), [x, unused], retain_graph=True)
    g = mc.autograd.grad(a.sum(), [x, unused], allow_unused=True, retain_graph=True)
    assert g[1] is None
    g = mc.autograd.grad(a.sum(), [x, unused], materialize_grads=True, retain_graph=True)
    assert g[1].tolist() == [0.0]
    with pytest.raises(RuntimeError, match="pass grad_outputs for non-scalar outputs"):
        mc.autograd.grad(a, x)
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        mc.autograd.grad(a.sum(), t64([1.0], requires_grad=False))


def test_saliency_map_on_a_loader_batch_input():
    """The classic use: d(class score)/d(input image) for a batch that came without requires_grad."""
    model = mc.nn.Sequential(mc.nn.Conv2d(1, 2, 3), mc.nn.ReLU(), mc.nn.Flatten(), mc.nn.Linear(2 * 4 * 4, 3))
    images = mc.tensor(np.random.default_rng(1).standard_normal((2, 1, 6, 6)))
    images.requires_grad_()
    score = model(images)[:, 1].sum()
    sal, = mc.autograd.grad(score, images)
    assert sal.shape == images.shape and float(sal.abs().sum()) > 0
    for p in model.parameters():
        assert p.grad is None


def test_grad_agrees_with_finite_differences():
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((2, 3))

    def f(t):
        return (mc.exp(t) * t).sum(dim=1)

    x = t64(xa)
    g, = mc.autograd.grad(f(x), x, grad_outputs=mc.tensor([1.0, -2.0], dtype=mc.float64))
    eps, num = 1e-6, np.zeros_like(xa)
    for idx in np.ndindex(*xa.shape):
        p, m = xa.copy(), xa.copy()
        p[idx] += eps
        m[idx] -= eps
        w = np.array([1.0, -2.0])
        num[idx] = ((np.exp(p) * p).sum(1) @ w - (np.exp(m) * m).sum(1) @ w) / (2 * eps)
    np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-8)


def test_retain_grad_and_set_grad_enabled():
    x = t64([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6, 12])
    np.testing.assert_allclose(x.grad.numpy(), [18, 36])
    with mc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with mc.set_grad_enabled(True):
        assert (x * 2).requires_grad
    with mc.inference_mode():
        assert not (x * 2).requires_grad
    assert mc.is_grad_enabled()
