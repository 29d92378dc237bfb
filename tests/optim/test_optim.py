"""Optimizers: update rules against hand-written NumPy formulas, schedules, resuming, and a real fit."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import optim


def two_spirals(n=200, seed=0):
    """Two interleaved spirals, n points each: a classic problem a linear model cannot solve."""
    rng = np.random.default_rng(seed)
    r = np.linspace(0.15, 1.0, n)
    theta = r * 3 * np.pi
    pts, labels = [], []
    for k in (0, 1):
        a = theta + k * np.pi
        pts.append(np.stack([r * np.cos(a), r * np.sin(a)], 1) + rng.normal(0, 0.01, (n, 2)))
        labels.append(np.full(n, k))
    return np.concatenate(pts).astype(np.float32), np.concatenate(labels)


@pytest.mark.parametrize("make_opt, steps", [
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), 1500),
    (lambda p: optim.Adam(p, lr=0.01), 1000),
    (lambda p: optim.RMSprop(p, lr=0.003), 1000),
])
def test_mlp_fits_two_spirals(make_opt, steps):
    mc.manual_seed(0)
    x, y = two_spirals()
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    opt = make_opt(model.parameters())
    X, Y = mc.tensor(x), mc.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(X), Y).backward()
        opt.step()
    with mc.no_grad():
        acc = (model(X).numpy().argmax(1) == y).mean()
    assert acc >= 0.98, f"{type(opt).__name__} reached only {acc:.3f}"


def run_steps(opt_factory, grads, p0):
    p = nn.Parameter(p0.copy())
    opt = opt_factory([p])
    for g in grads:
        p.grad = mc.tensor(g, dtype=np.float64)
        opt.step()
    return p.numpy()


def test_sgd_matches_formula():
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    lr, m, d, wd = 0.1, 0.9, 0.1, 0.01
    for nesterov in (False, True):
        damp = 0.0 if nesterov else d
        p, buf = p0.copy(), None
        for g in grads:
            g = g + wd * p
            buf = g.copy() if buf is None else m * buf + (1 - damp) * g
            p = p - lr * (g + m * buf if nesterov else buf)
        got = run_steps(lambda ps: optim.SGD(ps, lr=lr, momentum=m, dampening=damp, weight_decay=wd,
                                             nesterov=nesterov), grads, p0)
        np.testing.assert_allclose(got, p, rtol=1e-12)


def test_adam_and_rmsprop_match_formulas():
    rng = np.random.default_rng(1)
    p0, grads = rng.standard_normal(5), rng.standard_normal((5, 5))
    p, m, v = p0.copy(), 0, 0
    for t, g in enumerate(grads, 1):
        g = g + 0.01 * p
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        p = p - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(run_steps(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01), grads, p0), p,
                               rtol=1e-10)
    p, v, ga, buf = p0.copy(), 0, 0, 0
    for g in grads:
        v, ga = 0.99 * v + 0.01 * g * g, 0.99 * ga + 0.01 * g
        buf = 0.5 * buf + g / (np.sqrt(v - ga * ga) + 1e-8)
        p = p - 0.01 * buf
    np.testing.assert_allclose(run_steps(lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
                                         grads, p0), p, rtol=1e-10)


def test_frozen_and_gradless_parameters_are_skipped():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    b.requires_grad_(False)
    b.grad = mc.tensor(np.ones(3))
    opt = optim.SGD([a, b], lr=1.0)
    opt.step()                                     # a has no grad, b is frozen: neither moves
    np.testing.assert_array_equal(a.numpy(), 1)
    np.testing.assert_array_equal(b.numpy(), 1)


def test_resume_from_state_dict_continues_identically(tmp_path):
    rng = np.random.default_rng(2)
    p0, grads = rng.standard_normal(4), rng.standard_normal((6, 4))
    for factory in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1),
                    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.3)):
        straight = run_steps(factory, grads, p0)
        p = nn.Parameter(p0.copy())
        opt = factory([p])
        for g in grads[:3]:
            p.grad = mc.tensor(g, dtype=np.float64)
            opt.step()
        mc.save({"p": p.numpy(), "opt": opt.state_dict()}, tmp_path / "ck.npz")
        ck = mc.load(tmp_path / "ck.npz")
        q = nn.Parameter(ck["p"])
        opt2 = factory([q])
        opt2.load_state_dict(ck["opt"])
        for g in grads[3:]:
            q.grad = mc.tensor(g, dtype=np.float64)
            opt2.step()
        np.testing.assert_array_equal(q.numpy(), straight)


def test_schedulers():
    p = nn.Parameter(np.ones(1))
    opt = optim.SGD([p], lr=1.0)
    s = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt = optim.SGD([p], lr=1.0)
    s = optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.1)
    for _ in range(3):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    opt = optim.SGD([p], lr=1.0)
    s = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95]:
        s.step(loss)
    assert opt.param_groups[0]["lr"] == 0.25        # 2 bad epochs -> halve, twice
    s2 = optim.lr_scheduler.ReduceLROnPlateau(optim.SGD([p], lr=1.0))
    s2.load_state_dict(s.state_dict())
    assert s2.best == 0.9 and s2.num_bad_epochs == s.num_bad_epochs


def test_optimizer_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.Adam([nn.Parameter(np.ones(1))], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([nn.Parameter(np.ones(1))], lr=0.1, nesterov=True)
