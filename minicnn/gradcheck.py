"""Finite-difference gradient check: every op's backward against float64 central differences."""
import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor, no_grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=256, seed=0):
    """Check ``fn``'s gradients for every floating input against central differences, in float64.

    ``fn`` takes Tensors and returns a Tensor ``y``; the scalar checked is ``sum(y * gy)`` with a random upstream
    gradient ``gy`` (never all ones, which would let errors cancel).  Every element of an input is perturbed, or a
    random sample of ``max_elements`` of them for big inputs.  The analytic gradients are computed twice, once
    with non-contiguous inputs, and must agree.  Integer inputs (labels, indices) are passed through unchanged.
    Returns True, or raises AssertionError naming the worst element: input, index, analytic, numeric.
    """
    rng = np.random.default_rng(seed)
    arrays = [_float64(x) for x in inputs]
    devices = [x.device if isinstance(x, Tensor) else "cpu" for x in inputs]
    checked = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check")

    def run(arrs, grad, noncontiguous=False):
        ts = [Tensor(_strided(a) if noncontiguous else a, dtype=a.dtype, device=d,
                     requires_grad=grad and i in checked) for i, (a, d) in enumerate(zip(arrs, devices))]
        return ts, fn(*ts)

    tensors, y = run(arrays, True)
    if not isinstance(y, Tensor) or y.dtype != np.float64:
        raise TypeError(f"gradcheck: fn must return a float64 Tensor, got {type(y).__name__} "
                        f"{getattr(y, 'dtype', '')}; compute in the inputs' dtype")
    gy = rng.standard_normal(y.shape)
    y.backward(Tensor(gy, dtype=np.float64, device=y.device))
    analytic = {i: _grad(tensors[i]) for i in checked}

    tensors_nc, y_nc = run(arrays, True, noncontiguous=True)
    y_nc.backward(Tensor(gy, dtype=np.float64, device=y_nc.device))
    for i in checked:
        if not np.allclose(_grad(tensors_nc[i]), analytic[i], rtol=1e-10, atol=1e-12):
            raise AssertionError(f"gradcheck: input {i}: the gradient differs for a non-contiguous input")

    def objective(arrs):
        with no_grad():
            return float(np.sum(backend.to_cpu(run(arrs, False)[1].data) * gy))

    worst = None
    for i in checked:
        x = arrays[i]
        flat = np.arange(x.size)
        if x.size > max_elements:
            flat = rng.choice(x.size, max_elements, replace=False)
        for j in flat:
            idx = np.unravel_index(j, x.shape)
            plus, minus = x.copy(), x.copy()
            plus[idx] += eps
            minus[idx] -= eps
            num = (objective(arrays[:i] + [plus] + arrays[i + 1:]) -
                   objective(arrays[:i] + [minus] + arrays[i + 1:])) / (2 * eps)
            ana = analytic[i][idx]
            excess = abs(ana - num) - (atol + rtol * abs(num))
            if worst is None or excess > worst[0]:
                worst = (excess, i, idx, ana, num)
    excess, i, idx, ana, num = worst
    if not excess <= 0:                          # also catches NaN
        raise AssertionError(f"gradcheck failed: input {i} (shape {arrays[i].shape}) at index {tuple(map(int, idx))}: "
                             f"analytic {ana:.8g}, numeric {num:.8g} (atol {atol}, rtol {rtol})")
    return True


def _float64(x):
    a = backend.to_cpu(x.data if isinstance(x, Tensor) else np.asarray(x))
    return a.astype(np.float64) if a.dtype.kind == "f" else a.copy()


def _strided(a):
    """The same values as a non-contiguous view (every other element of a buffer twice as long)."""
    if a.ndim == 0:
        return a
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    buf[..., ::2] = a
    return buf[..., ::2]


def _grad(t):
    if t.grad is None:
        return np.zeros(t.shape)
    return backend.to_cpu(t.grad.data).astype(np.float64)
