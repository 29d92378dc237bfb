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
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
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
