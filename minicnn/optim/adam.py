"""Adam (Kingma & Ba 2015, Algorithm 1) and RMSprop (Hinton's lecture 6e; PyTorch's variant)."""

from minicnn.backend import get_array_module
from minicnn.kernels import optim as fused
from minicnn.optim.optimizer import Optimizer


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr * m_hat / (sqrt(v_hat) + eps), with the
    bias corrections m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).  ``weight_decay`` adds wd * p to g (L2)."""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):           # one fused pass per parameter (kernels/optim.py)
        xp = get_array_module(p.data)
        if "step" not in state:
            state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, xp.zeros_like(p.data), xp.zeros_like(p.data)
        state["step"] += 1
        b1, b2 = group["betas"]
        fused.adam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], group["lr"], b1, b2, group["eps"],
                        group["weight_decay"], state["step"])


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g^2;  (centered: minus the squared running mean of g);  p -= lr g / (sqrt(v) + eps),
    optionally through a momentum buffer."""
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def _update(self, p, g, state, group):
        xp = get_array_module(g)
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        if "square_avg" not in state:
            state["step"], state["square_avg"] = 0, xp.zeros_like(g)
            if group["momentum"]:
                state["momentum_buffer"] = xp.zeros_like(g)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(g)
        state["step"] += 1
        a, v = group["alpha"], state["square_avg"]
        v *= a
        v += (1 - a) * g * g
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= a
            ga += (1 - a) * g
            denom = xp.sqrt(v - ga * ga) + group["eps"]
        else:
            denom = xp.sqrt(v) + group["eps"]
        if group["momentum"]:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / denom
            p.data -= (group["lr"] * buf).astype(p.dtype)
        else:
            p.data -= (group["lr"] * g / denom).astype(p.dtype)
