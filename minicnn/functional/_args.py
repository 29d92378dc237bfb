"""Argument checks shared by the functional ops."""
import numpy as np


def pair(op, name, v, minimum):
    """``v`` as a pair of ints (an int means both axes), each at least ``minimum``; else an error naming the op."""
    p = (v, v) if isinstance(v, (int, np.integer)) else tuple(v) if isinstance(v, (tuple, list)) else None
    if p is None or len(p) != 2 or not all(isinstance(a, (int, np.integer)) for a in p):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    if min(p) < minimum:
        raise ValueError(f"{op}: {name} must be {'positive' if minimum else 'non-negative'}, got {v!r}")
    return tuple(int(a) for a in p)
