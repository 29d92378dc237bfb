"""SGD with momentum (Polyak; Nesterov as in Sutskever et al. 2013), dampening and L2 weight decay."""
from minicnn.optim.optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's formulation: g += wd * p;  buf = momentum * buf + (1 - dampening) * g (buf = g at the first
    step);  g = g + momentum * buf if nesterov else buf;  p -= lr * g."""
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        m = group["momentum"]
        if m:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= m
                buf += (1 - group["dampening"]) * g
            buf = state["momentum_buffer"]
            g = g + m * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g
