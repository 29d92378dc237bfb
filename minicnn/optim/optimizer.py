"""The Optimizer base: parameter groups, per-parameter state, and state dicts for resuming."""
import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor


class Optimizer:
    """Holds ``param_groups`` (lists of parameters with their hyper-parameters) and ``state`` per parameter.

    ``step()`` updates ``p.data`` in place for every parameter that requires grad and has one; the rest are
    skipped (frozen layers, unused branches)."""
    def __init__(self, params, defaults):
        params = [params] if isinstance(params, (dict, Tensor)) else list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults, self.param_groups, self.state = defaults, [], {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Add a group ``{"params": [...], option: value, ...}``; options it does not set take the defaults
        (e.g. a smaller ``lr`` for a pretrained backbone, none of its parameters in another group)."""
        group = dict(self.defaults, **param_group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: params must be Tensors, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]) or len({id(p) for p in group["params"]}) < len(group["params"]):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        for key, value in group.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{type(self).__name__}: {key} must be >= 0, got {value}")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.requires_grad and p.grad is not None:
                yield p, p.grad.data, self.state.setdefault(id(p), {})

    def step(self, closure=None):
        """One update of every parameter with a gradient; ``closure`` (re-evaluates the model and returns the
        loss) is called first, with gradients enabled, and its loss returned."""
        loss = None
        if closure is not None:
            from minicnn.autograd import enable_grad
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p, g, state in self._params_with_grad(group):
                self._update(p, g, state, group)
        return loss

    def _update(self, p, g, state, group):
        raise NotImplementedError

    # ---- resuming -------------------------------------------------------------------------------------------
    def _index(self):
        return [id(p) for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        """``{"state": {param index: {name: array or number}}, "param_groups": [hyper-parameters]}``, with
        parameters numbered in order across groups, as PyTorch."""
        state = {}
        for i, pid in enumerate(self._index()):
            if pid in self.state:
                state[i] = {k: backend.to_cpu(v) if hasattr(v, "shape") else v for k, v in self.state[pid].items()}
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(groups)} parameter groups in the state, "
                             f"{len(self.param_groups)} in the optimizer")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[id(p)] = {k: backend.to_device(np.asarray(v), p.device).copy() if hasattr(v, "shape") else v
                                 for k, v in s.items()}
        for g, saved in zip(self.param_groups, groups):
            g.update({k: v for k, v in saved.items() if k != "params"})
