"""Learning-rate schedules: call ``scheduler.step()`` once per epoch, after the optimizer's steps."""
import math


class _Stateful:
    """What every schedule shares: the current learning rates, and its state (all but the optimizer) for resuming."""
    def get_last_lr(self):
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state):
        self.__dict__.update(state)


class _Scheduler(_Stateful):
    """A closed-form schedule ``lr = _lr(base)`` of ``last_epoch``.  ``base`` is each group's ``initial_lr``
    (set by the first schedule made on the optimizer, as PyTorch, so schedules chained by SequentialLR share it)."""
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0

    def step(self, epoch=None):
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        self._apply()

    def _apply(self):
        for i, (g, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            self._group = i
            g["lr"] = self._lr(base)


class StepLR(_Scheduler):
    """lr = base * gamma ** (epoch // step_size)."""
    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def _lr(self, base):
        return base * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(_Scheduler):
    """lr = base * gamma ** (number of milestones reached)."""
    def __init__(self, optimizer, milestones, gamma=0.1):
        super().__init__(optimizer)
        self.milestones, self.gamma = sorted(milestones), gamma

    def _lr(self, base):
        return base * self.gamma ** sum(self.last_epoch >= m for m in self.milestones)


class CosineAnnealingLR(_Scheduler):
    """lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2 (Loshchilov & Hutter 2017, without restarts)."""
    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def _lr(self, base):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class ReduceLROnPlateau(_Stateful):
    """Multiply lr by ``factor`` once the metric passed to ``step(metric)`` has not improved for ``patience``
    epochs (relative threshold, PyTorch's default 'rel' mode); then wait ``cooldown`` epochs."""
    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, cooldown=0, min_lr=0.0):
        if mode not in ("min", "max") or not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min'/'max' and 0 < factor < 1, got {mode!r}, {factor}")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.cooldown, self.min_lr = threshold, cooldown, min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0

    def _better(self, metric):
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def step(self, metric):
        self.last_epoch += 1
        if self._better(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g in self.optimizer.param_groups:
                g["lr"] = max(g["lr"] * self.factor, self.min_lr)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0


# ---- PyTorch's other schedules (each sets epoch 0's learning rate when it is made, as PyTorch) ----------------
def _per_group(name, value, optimizer):
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(optimizer.param_groups)
    if len(values) != len(optimizer.param_groups):
        raise ValueError(f"{name}: {len(values)} values for {len(optimizer.param_groups)} parameter groups")
    return values


class LambdaLR(_Scheduler):
    """lr = base * lr_lambda(epoch) (one function, or one per parameter group)."""
    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        super().__init__(optimizer)
        self.lr_lambdas = _per_group("LambdaLR", lr_lambda, optimizer)
        self._apply()

    def _lr(self, base):
        return base * self.lr_lambdas[self._group](self.last_epoch)

    def state_dict(self):                        # functions are not state (PyTorch drops them too)
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class MultiplicativeLR(LambdaLR):
    """lr = base * lr_lambda(1) * ... * lr_lambda(epoch)."""
    def _lr(self, base):
        f = self.lr_lambdas[self._group]
        return base * math.prod(f(e) for e in range(1, self.last_epoch + 1))


class ExponentialLR(_Scheduler):
    """lr = base * gamma ** epoch."""
    def __init__(self, optimizer, gamma, last_epoch=-1):
        super().__init__(optimizer)
        self.gamma = gamma

    def _lr(self, base):
        return base * self.gamma ** self.last_epoch


class LinearLR(_Scheduler):
    """lr = base * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters): a linear
    warm-up (or decay) over ``total_iters`` steps, then constant."""
    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                             f"{start_factor}, {end_factor}")
        super().__init__(optimizer)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        self._apply()

    def _lr(self, base):
        frac = min(self.last_epoch, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class ConstantLR(_Scheduler):
    """lr = base * factor for the first ``total_iters`` steps, then base."""
    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        super().__init__(optimizer)
        self.factor, self.total_iters = factor, total_iters
        self._apply()

    def _lr(self, base):
        return base * (self.factor if self.last_epoch < self.total_iters else 1.0)


class PolynomialLR(_Scheduler):
    """lr = base * (1 - min(epoch, total_iters) / total_iters) ** power."""
    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        super().__init__(optimizer)
        self.total_iters, self.power = total_iters, power

    def _lr(self, base):
        return base * (1 - min(self.last_epoch, self.total_iters) / self.total_iters) ** self.power


class CosineAnnealingWarmRestarts(_Scheduler):
    """SGDR (Loshchilov & Hutter 2017): lr = eta_min + (base - eta_min) (1 + cos(pi T_cur / T_i)) / 2, where a
    period starts over (T_cur = 0) after T_i epochs and the next one is T_mult times longer (T_0 first).
    ``step(epoch)`` takes fractional epochs (``epoch + batch / batches``) for restarts within an epoch."""
    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if T_0 <= 0 or not isinstance(T_0, int) or T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive int and T_mult an int >= 1, "
                             f"got {T_0}, {T_mult}")
        super().__init__(optimizer)
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min

    def _period(self):
        """(T_cur, T_i) at ``last_epoch``."""
        e, T_0, T_mult = self.last_epoch, self.T_0, self.T_mult
        if e < T_0:
            return e, T_0
        if T_mult == 1:
            return e % T_0, T_0
        n = int(math.log(e / T_0 * (T_mult - 1) + 1, T_mult))
        return e - T_0 * (T_mult ** n - 1) / (T_mult - 1), T_0 * T_mult ** n

    def _lr(self, base):
        T_cur, T_i = self._period()
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


class OneCycleLR(_Scheduler):
    """The 1cycle policy (Smith & Topin 2018), stepped once per *batch*: lr rises from max_lr / div_factor to
    max_lr over the first ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``), then anneals to
    max_lr / (div_factor * final_div_factor) (``three_phase``: back to the start first); ``anneal_strategy``
    'cos' or 'linear'.  Momentum (SGD's ``momentum``, Adam's beta1) cycles the other way, max -> base -> max."""
    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0 or not 0 <= pct_start <= 1 or anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: total_steps must be > 0, pct_start in [0, 1] and anneal_strategy "
                             f"'cos' or 'linear', got {total_steps}, {pct_start}, {anneal_strategy!r}")
        self.optimizer, self.total_steps, self.anneal_strategy = optimizer, int(total_steps), anneal_strategy
        self.cycle_momentum, self.last_epoch = cycle_momentum, 0
        if three_phase:
            ends = [pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1]
            phases = [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      ("initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            ends = [pct_start * total_steps - 1, total_steps - 1]
            phases = [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      ("max_lr", "min_lr", "base_momentum", "max_momentum")]
        self.phases = [dict(end_step=float(e), start_lr=a, end_lr=b, start_momentum=c, end_momentum=d)
                       for e, (a, b, c, d) in zip(ends, phases)]
        groups = optimizer.param_groups
        for g, top, bm, mm in zip(groups, _per_group("OneCycleLR", max_lr, optimizer),
                                  _per_group("OneCycleLR", base_momentum, optimizer),
                                  _per_group("OneCycleLR", max_momentum, optimizer)):
            g["initial_lr"] = top / div_factor
            g["max_lr"], g["min_lr"] = top, top / div_factor / final_div_factor
            if cycle_momentum:
                if "momentum" not in g and "betas" not in g:
                    raise ValueError("OneCycleLR: optimizer must support momentum or betas with cycle_momentum")
                g["base_momentum"], g["max_momentum"] = bm, mm
        self.base_lrs = [g["initial_lr"] for g in groups]
        self._apply()

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _apply(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; total_steps is {self.total_steps}")
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, ph in enumerate(self.phases):
                if step <= ph["end_step"] or i == len(self.phases) - 1:
                    pct = (step - start) / (ph["end_step"] - start)
                    g["lr"] = self._anneal(g[ph["start_lr"]], g[ph["end_lr"]], pct)
                    if self.cycle_momentum:
                        m = self._anneal(g[ph["start_momentum"]], g[ph["end_momentum"]], pct)
                        if "betas" in g:
                            g["betas"] = (m,) + tuple(g["betas"][1:])
                        else:
                            g["momentum"] = m
                    break
                start = ph["end_step"]


class SequentialLR(_Stateful):
    """``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` started afresh (its epoch 0), ...; all
    made on ``optimizer`` (their base is each group's ``initial_lr``)."""
    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: every scheduler must belong to the optimizer given")
        self.optimizer, self._schedulers, self._milestones = optimizer, list(schedulers), list(milestones)
        self.last_epoch = 0
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"]
        self._schedulers[0].last_epoch = 0
        self._schedulers[0]._apply()

    def step(self):
        import bisect
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        s = self._schedulers[idx]
        s.last_epoch = 0 if idx > 0 and self._milestones[idx - 1] == self.last_epoch else s.last_epoch + 1
        s._apply()

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "_milestones": self._milestones,
                "_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state):
        self.last_epoch, self._milestones = state["last_epoch"], list(state["_milestones"])
        for s, st in zip(self._schedulers, state["_schedulers"]):
            s.load_state_dict(st)
