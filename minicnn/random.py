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
