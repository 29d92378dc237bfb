"""The one random generator behind weight initialisation, dropout masks and data shuffling."""
import random as _pyrandom

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed everything minicnn draws from (and Python's ``random``), like ``torch.manual_seed``."""
    global _rng
    _rng = np.random.default_rng(seed)
    _pyrandom.seed(seed)
    return _rng


def generator():
    return _rng


def get_rng_state():
    """A JSON-serialisable snapshot of the generator, for checkpoints."""
    return _rng.bit_generator.state


def set_rng_state(state):
    _rng.bit_generator.state = state


class Generator:
    """A separate random stream, as ``torch.Generator``: ``g = mc.Generator().manual_seed(42)`` then
    ``randn(3, generator=g)``, ``random_split(..., generator=g)``, ``DataLoader(..., generator=g)``."""
    def __init__(self, device="cpu"):
        self.device = str(device)
        self._seed = int(np.random.default_rng().integers(2 ** 63))
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed):
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state
        return self


def rng_of(generator=None):
    """The NumPy generator behind ``generator`` (a ``Generator``), or minicnn's global one."""
    return _rng if generator is None else generator.rng
