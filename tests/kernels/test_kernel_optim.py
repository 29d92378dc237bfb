"""Fused SGD and Adam steps (kernels/optim.py) against their NumPy formulas, on every device; the optimizers that
use them against the same step on the CPU."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import backend
from minicnn.kernels import optim as K
from helpers import DEVICES, randn, to_cpu

SGD_CASES = [dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(momentum=0.9, dampening=0.0, weight_decay=1e-2, nesterov=False),
             dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
             dict(momentum=0.5, dampening=0.3, weight_decay=5e-2, nesterov=False)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", SGD_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_step_matches_reference(device, case, dtype):
    p0, g0, b0 = (randn(3, 7, seed=s).astype(dtype) for s in (0, 1, 2))
    for first in (True, False):
        p, g, buf = (backend.to_device(a.copy(), device) for a in (p0, g0, b0))
        K.sgd_step(p, g, buf, lr=0.1, first=first, **case)
        ref_p, ref_buf = K.sgd_step_ref(p0, g0, b0, 0.1, first=first, **case)
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(to_cpu(p), ref_p, rtol=tol, atol=tol)
        if case["momentum"]:
            np.testing.assert_allclose(to_cpu(buf), ref_buf, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(to_cpu(buf), b0)          # untouched without momentum


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_step_matches_reference(device, weight_decay):
    p0, g0 = randn(5, 4, seed=3).astype(np.float32), randn(5, 4, seed=4).astype(np.float32)
    m0, v0 = randn(5, 4, seed=5).astype(np.float32) * 0.1, np.abs(randn(5, 4, seed=6)).astype(np.float32) * 0.01
    p, g, m, v = (backend.to_device(a.copy(), device) for a in (p0, g0, m0, v0))
    K.adam_step(p, g, m, v, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, step=3)
    ref = K.adam_step_ref(p0, g0, m0, v0, 1e-2, 0.9, 0.999, 1e-8, weight_decay, 3)
    for got, want in zip((p, m, v), ref):
        np.testing.assert_allclose(to_cpu(got), want, rtol=2e-6, atol=1e-7)


def test_non_contiguous_parameter_is_updated_in_place():
    p0, g0 = randn(4, 6, seed=7), randn(6, 4, seed=8)
    base = p0.copy()
    p = base[:, ::2]                                               # a strided view: updated through a copy
    g = np.ascontiguousarray(g0.T[:, ::2])
    K.sgd_step(p, g, g, lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, first=False)
    np.testing.assert_allclose(base[:, ::2], p0[:, ::2] - 0.5 * g, rtol=1e-13)
    np.testing.assert_array_equal(base[:, 1::2], p0[:, 1::2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make", [lambda ps: mc.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                                  lambda ps: mc.optim.Adam(ps, lr=1e-2, weight_decay=1e-3)], ids=["sgd", "adam"])
def test_optimizer_steps_on_device_match_cpu(device, make):
    results = []
    for d in ("cpu", device):
        w = mc.nn.Parameter(mc.tensor(randn(3, 4, seed=9), device=d))
        opt = make([w])
        for step in range(3):
            opt.zero_grad()
            w.grad = mc.tensor(randn(3, 4, seed=10 + step), device=d)
            opt.step()
        results.append(w.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-7)
