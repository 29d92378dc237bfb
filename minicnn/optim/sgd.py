"""SGD with momentum (Polyak; Nesterov as in Sutskever et al. 2013), dampening and L2 weight decay."""
from minicnn.backend import get_array_module
from minicnn.kernels import optim as fused
from minicnn.optim.optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's formulation: g += wd * p;  buf = momentum * buf + (1 - dampening) * g (buf = g at the first
    step);  g = g + momentum * buf if nesterov else buf;  p -= lr * g."""
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def _update(self, p, g, state, group):           # one fused pass per parameter (kernels/optim.py)
        m = group["momentum"]
        first = bool(m) and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = get_array_module(p.data).empty_like(p.data)
        fused.sgd_step(p.data, g, state.get("momentum_buffer", g), group["lr"], m, group["dampening"],
                       group["weight_decay"], group["nesterov"], first)
