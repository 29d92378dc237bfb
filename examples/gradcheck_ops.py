"""Check the gradients of LeNet-5's ops against float64 central finite differences: python examples/gradcheck_ops.py

``mc.gradcheck(fn, inputs)`` perturbs every input element by +-eps, compares (f(x + eps) - f(x - eps)) / 2 eps
with what ``backward`` computed, and raises an AssertionError naming the worst element if they disagree.
"""
import numpy as np

import minicnn as mc
import minicnn.functional as F

rng = np.random.default_rng(0)


def spaced(*shape):
    """Values at least 0.01 apart and away from 0: no pooling ties, no ReLU kink within eps."""
    n = int(np.prod(shape))
    return rng.permutation((np.arange(n) - n / 2 + 0.5) * 0.01).reshape(shape)


labels = np.array([3, 0, 1])
cases = {
    "conv2d":        (lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1), [spaced(2, 3, 6, 6),
                                                                               rng.standard_normal((4, 3, 3, 3)),
                                                                               rng.standard_normal(4)]),
    "max_pool2d":    (lambda x: F.max_pool2d(x, 2), [spaced(2, 3, 6, 6)]),
    "relu":          (F.relu, [spaced(4, 5)]),
    "linear":        (F.linear, [rng.standard_normal((3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, mc.tensor(labels)), [rng.standard_normal((3, 4))]),
}
for name, (fn, inputs) in cases.items():
    mc.gradcheck(fn, inputs)                 # float64 inputs; raises on a wrong gradient
    print(f"{name:<14} gradients match finite differences")
