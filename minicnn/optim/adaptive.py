"""AdamW, Adagrad, Adadelta, Adamax and NAdam, each PyTorch's formulation (same defaults, same state names).

``g`` is the gradient, ``t`` the step count from 1, ``wd`` the weight decay; "L2" decay adds ``wd * p`` to ``g``,
"decoupled" decay multiplies ``p`` by ``1 - lr * wd`` before the update (Loshchilov & Hutter 2019).
"""
import math

from minicnn.backend import get_array_module
from minicnn.optim.optimizer import Optimizer

__all__ = ["AdamW", "Adagrad", "Adadelta", "Adamax", "NAdam"]


def _check_betas(name, betas):
    if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
        raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
    return tuple(betas)


def _l2(p, g, group):
    return g + group["weight_decay"] * p.data if group["weight_decay"] else g


class AdamW(Optimizer):
    """p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (amsgrad: v_max = max(v_max, v));
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=_check_betas("AdamW", betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        lr, (b1, b2) = group["lr"], group["betas"]
        if "step" not in state:
            state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, xp.zeros_like(g), xp.zeros_like(g)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(g)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if group["weight_decay"]:
            p.data *= p.data.dtype.type(1 - lr * group["weight_decay"])
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = xp.sqrt(v) / math.sqrt(1 - b2 ** t) + group["eps"]
        p.data -= (lr / (1 - b1 ** t) * m / denom).astype(p.dtype)


class Adagrad(Optimizer):
    """g += wd p (L2);  sum += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)  (Duchi et al. 2011)."""
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        g = _l2(p, g, group)
        if "step" not in state:
            state["step"] = 0
            state["sum"] = xp.full_like(g, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        p.data -= (clr * g / (xp.sqrt(state["sum"]) + group["eps"])).astype(p.dtype)


class Adadelta(Optimizer):
    """g += wd p (L2);  v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d^2;  p -= lr d  (Zeiler 2012, with PyTorch's ``lr`` factor)."""
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        g = _l2(p, g, group)
        rho, eps = group["rho"], group["eps"]
        if "step" not in state:
            state["step"], state["square_avg"], state["acc_delta"] = 0, xp.zeros_like(g), xp.zeros_like(g)
        state["step"] += 1
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * g * g
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        p.data -= (group["lr"] * delta).astype(p.dtype)


class Adamax(Optimizer):
    """g += wd p (L2);  m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps);  p -= lr / (1 - b1^t) * m / u
    (Kingma & Ba 2015, section 7.1)."""
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=_check_betas("Adamax", betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        g = _l2(p, g, group)
        b1, b2 = group["betas"]
        if "step" not in state:
            state["step"], state["exp_avg"], state["exp_inf"] = 0, xp.zeros_like(g), xp.zeros_like(g)
        state["step"] += 1
        m, u = state["exp_avg"], state["exp_inf"]
        m *= b1
        m += (1 - b1) * g
        xp.maximum(u * b2, xp.abs(g) + group["eps"], out=u)
        p.data -= (group["lr"] / (1 - b1 ** state["step"]) * m / u).astype(p.dtype)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat 2016), PyTorch's form: mu_t = b1 (1 - 0.5 * 0.96^(t psi)),
    P_t = prod mu_1..mu_t;  m, v as Adam;  d = sqrt(v / (1 - b2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - P_t) * g / d + lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / d  (psi = momentum_decay).
    ``decoupled_weight_decay`` decays as AdamW instead of adding wd * p to g."""
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=_check_betas("NAdam", betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        lr, (b1, b2), psi = group["lr"], group["betas"], group["momentum_decay"]
        if group["weight_decay"]:
            if group["decoupled_weight_decay"]:
                p.data *= p.data.dtype.type(1 - lr * group["weight_decay"])
            else:
                g = g + group["weight_decay"] * p.data
        if "step" not in state:
            state["step"], state["mu_product"] = 0, 1.0
            state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(g), xp.zeros_like(g)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] *= mu
        prod = state["mu_product"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        denom = xp.sqrt(v / (1 - b2 ** t)) + group["eps"]
        step = lr * (1 - mu) / (1 - prod) * g / denom + lr * mu_next / (1 - prod * mu_next) * m / denom
        p.data -= step.astype(p.dtype)
