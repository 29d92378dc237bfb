"""AdamW, Adagrad, Adadelta, Adamax, NAdam against their update rules written out by hand over a few steps;
parameter groups with their own options; the new learning-rate schedules against their formulas."""
import math

import numpy as np
import pytest

import minicnn as mc
from minicnn import optim
from minicnn.optim import lr_scheduler as S

A = np.array([0.5, -1.5, 2.0, 0.3])
P0 = np.array([1.0, -2.0, 0.5, 3.0])


def grad_of(p):
    """Gradient of the test loss sum((A p)^2) + sum(p)."""
    return 2 * A * A * p + 1


def run(opt_cls, steps=4, **kw):
    p = mc.nn.Parameter(P0.copy())
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (((p * mc.tensor(A, dtype=mc.float64)) ** 2).sum() + p.sum()).backward()
        opt.step()
    return p.numpy(), opt


def by_hand(update, steps=4):
    p, state = P0.copy(), {}
    for t in range(1, steps + 1):
        p = update(p, grad_of(p), t, state)
    return p


def test_adamw():
    lr, (b1, b2), eps, wd = 0.1, (0.8, 0.95), 1e-8, 0.2

    def update(p, g, t, s):
        p = p * (1 - lr * wd)
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        return p - lr * (s["m"] / (1 - b1 ** t)) / (np.sqrt(s["v"] / (1 - b2 ** t)) + eps)
    got, opt = run(optim.AdamW, lr=lr, betas=(b1, b2), weight_decay=wd)
    np.testing.assert_allclose(got, by_hand(update), rtol=1e-12)
    assert opt.defaults["weight_decay"] == 0.2 and optim.AdamW([mc.nn.Parameter(P0)]).defaults["weight_decay"] == 0.01

    def update_ams(p, g, t, s):
        p = p * (1 - lr * wd)
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        s["vmax"] = np.maximum(s.get("vmax", 0), s["v"])
        return p - lr * (s["m"] / (1 - b1 ** t)) / (np.sqrt(s["vmax"] / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(run(optim.AdamW, lr=lr, betas=(b1, b2), weight_decay=wd, amsgrad=True)[0],
                               by_hand(update_ams), rtol=1e-12)


def test_adagrad():
    lr, decay, wd, init, eps = 0.3, 0.1, 0.05, 0.2, 1e-10

    def update(p, g, t, s):
        g = g + wd * p
        s["sum"] = s.get("sum", init) + g * g
        return p - lr / (1 + (t - 1) * decay) * g / (np.sqrt(s["sum"]) + eps)
    got, _ = run(optim.Adagrad, lr=lr, lr_decay=decay, weight_decay=wd, initial_accumulator_value=init)
    np.testing.assert_allclose(got, by_hand(update), rtol=1e-12)


def test_adadelta():
    lr, rho, eps, wd = 1.0, 0.9, 1e-6, 0.1

    def update(p, g, t, s):
        g = g + wd * p
        s["v"] = rho * s.get("v", 0) + (1 - rho) * g * g
        d = np.sqrt(s.get("u", 0) + eps) / np.sqrt(s["v"] + eps) * g
        s["u"] = rho * s.get("u", 0) + (1 - rho) * d * d
        return p - lr * d
    got, opt = run(optim.Adadelta, weight_decay=wd)
    np.testing.assert_allclose(got, by_hand(update), rtol=1e-12)
    assert opt.defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1)


def test_adamax():
    lr, (b1, b2), eps, wd = 0.05, (0.9, 0.99), 1e-8, 0.01

    def update(p, g, t, s):
        g = g + wd * p
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g) + eps)
        return p - lr / (1 - b1 ** t) * s["m"] / s["u"]
    got, _ = run(optim.Adamax, lr=lr, betas=(b1, b2), weight_decay=wd)
    np.testing.assert_allclose(got, by_hand(update), rtol=1e-12)


@pytest.mark.parametrize("decoupled", [False, True])
def test_nadam(decoupled):
    lr, (b1, b2), eps, wd, psi = 0.02, (0.9, 0.999), 1e-8, 0.1, 4e-3

    def update(p, g, t, s):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        s["prod"] = s.get("prod", 1.0) * mu
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        d = np.sqrt(s["v"] / (1 - b2 ** t)) + eps
        return p - lr * (1 - mu) / (1 - s["prod"]) * g / d - lr * mu1 / (1 - s["prod"] * mu1) * s["m"] / d
    got, _ = run(optim.NAdam, lr=lr, weight_decay=wd, decoupled_weight_decay=decoupled)
    np.testing.assert_allclose(got, by_hand(update), rtol=1e-12)


def test_per_group_options_and_add_param_group():
    a, b, c = (mc.nn.Parameter(np.ones(2)) for _ in range(3))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.param_groups[1]["momentum"] == 0.9
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert opt.param_groups[2]["lr"] == 0.01 and opt.param_groups[2]["momentum"] == 0.0
    for p in (a, b, c):
        p.grad = mc.tensor(np.ones(2), dtype=mc.float64)
    opt.step()
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0], c.numpy()[0]], [0.9, 0.5, 0.99])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.add_param_group({"params": [mc.nn.Parameter(np.ones(1))], "lr": -1})
    sd = opt.state_dict()
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5, 0.01]
    loss = opt.step(closure=lambda: mc.tensor(3.0))
    assert loss.item() == 3.0


# ---- schedules ----------------------------------------------------------------------------------------------
def lrs(make, n, opt_cls=optim.SGD, **okw):
    opt = opt_cls([mc.nn.Parameter(np.zeros(1))], lr=0.1, **okw)
    sched = make(opt)
    out, lrs.momenta = [], []
    for _ in range(n):
        g = opt.param_groups[0]
        out.append(g["lr"])
        lrs.momenta.append(g["betas"][0] if "betas" in g else g["momentum"])
        opt.step()
        sched.step()
    return out, opt, sched


def test_lambda_exponential_linear_constant_polynomial():
    got, _, s = lrs(lambda o: S.LambdaLR(o, lambda e: 1 / (e + 1)), 5)
    np.testing.assert_allclose(got, [0.1 / (e + 1) for e in range(5)])
    assert "lr_lambdas" not in s.state_dict()
    got, _, _ = lrs(lambda o: S.ExponentialLR(o, 0.5), 5)
    np.testing.assert_allclose(got, [0.1 * 0.5 ** e for e in range(5)])
    got, _, _ = lrs(lambda o: S.LinearLR(o, start_factor=0.25, total_iters=3), 6)
    np.testing.assert_allclose(got, [0.1 * (0.25 + 0.75 * min(e, 3) / 3) for e in range(6)])
    got, _, _ = lrs(lambda o: S.ConstantLR(o, factor=0.5, total_iters=2), 4)
    np.testing.assert_allclose(got, [0.05, 0.05, 0.1, 0.1])
    got, _, _ = lrs(lambda o: S.PolynomialLR(o, total_iters=4, power=2), 6)
    np.testing.assert_allclose(got, [0.1 * (1 - min(e, 4) / 4) ** 2 for e in range(6)])
    got, _, _ = lrs(lambda o: S.MultiplicativeLR(o, lambda e: 0.9), 4)
    np.testing.assert_allclose(got, [0.1 * 0.9 ** e for e in range(4)])


def test_cosine_annealing_warm_restarts():
    got, _, _ = lrs(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.01), 14)
    periods, ref = [2, 4, 8], []
    for T in periods:                              # restarts at epochs 2 and 6, periods 2, 4, 8
        ref += [0.01 + 0.09 * (1 + math.cos(math.pi * c / T)) / 2 for c in range(T)]
    np.testing.assert_allclose(got, ref[:14])
    opt = optim.SGD([mc.nn.Parameter(np.zeros(1))], lr=0.1)
    s = S.CosineAnnealingWarmRestarts(opt, T_0=4)
    s.step(5.5)                                    # fractional epochs: 1.5 into the second period
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * 1.5 / 4)) / 2)


def test_one_cycle_lr_and_momentum():
    total, top = 10, 1.0
    got, opt, _ = lrs(lambda o: S.OneCycleLR(o, max_lr=top, total_steps=total), total, momentum=0.9)
    lo, end = top / 25, top / 25 / 1e4
    up = 0.3 * total - 1                           # the peak step (2.0)

    def cos(a, b, pct):
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
    ref = [cos(lo, top, s / up) if s <= up else cos(top, end, (s - up) / (total - 1 - up)) for s in range(total)]
    np.testing.assert_allclose(got, ref)
    ref_m = [cos(0.95, 0.85, s / up) if s <= up else cos(0.85, 0.95, (s - up) / (total - 1 - up)) for s in range(total)]
    np.testing.assert_allclose(lrs.momenta, ref_m)                   # momentum cycles the other way
    got, opt, _ = lrs(lambda o: S.OneCycleLR(o, max_lr=top, epochs=2, steps_per_epoch=5, anneal_strategy="linear",
                                             three_phase=True), total, opt_cls=optim.Adam)
    ends = [2.0, 4.0, 9.0]
    ref = [lo + (top - lo) * s / 2 if s <= 2 else top + (lo - top) * (s - 2) / 2 if s <= 4 else
           lo + (end - lo) * (s - 4) / 5 for s in range(total)]
    np.testing.assert_allclose(got, ref)
    ref_m = [0.95 + (0.85 - 0.95) * s / 2 if s <= 2 else 0.85 + 0.1 * (s - 2) / 2 if s <= 4 else 0.95
             for s in range(total)]
    np.testing.assert_allclose(lrs.momenta, ref_m)                   # Adam's beta1
    assert ends[-1] == total - 1 and opt.param_groups[0]["betas"][1] == 0.999
    with pytest.raises(ValueError, match="OneCycleLR: give total_steps, or both epochs and steps_per_epoch"):
        S.OneCycleLR(opt, max_lr=1.0)


def test_sequential_lr_warmup_then_decay(tmp_path):
    got, opt, s = lrs(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                     S.ExponentialLR(o, 0.5)], milestones=[3]), 7)
    np.testing.assert_allclose(got, [0.01, 0.04, 0.07, 0.1, 0.05, 0.025, 0.0125])
    state = s.state_dict()
    assert state["last_epoch"] == 7 and len(state["_schedulers"]) == 2
    mc.save(state, tmp_path / "sched.pt")                    # a schedule's state is plain numbers and dicts
    assert mc.load(tmp_path / "sched.pt")["_schedulers"][1]["gamma"] == 0.5
