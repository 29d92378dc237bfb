"""kernels/grad_sum.py: the autograd's sum of two gradients against a + b on every device, into a new array and in
place, on the CPU past the parallel threshold; operands the kernels do not take go through the reference."""
import numpy as np
import pytest

from minicnn import backend
from minicnn.kernels import grad_sum
from helpers import DEVICES, to_cpu


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_matches_reference_new_and_in_place(device, dtype):
    shape = (3, 5, 7) if device == "cuda" else (4, 64, 300)            # CPU: past PARALLEL_MIN
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    da, db = backend.to_device(a, device), backend.to_device(b, device)
    s = grad_sum.add(da, db)
    assert backend.device_of(s) == device and s.dtype == dtype and s is not da
    np.testing.assert_array_equal(to_cpu(s), grad_sum.add_ref(a, b))
    np.testing.assert_array_equal(to_cpu(da), a)                       # the operands are left alone
    assert grad_sum.add(s, db, out=s) is s
    np.testing.assert_array_equal(to_cpu(s), (a + b) + b)


def test_other_operands_take_the_reference():
    a, b = np.ones((2, 3), np.float32), np.full((2, 3), 0.5)
    assert not grad_sum.runs_kernel(a, b)
    s = grad_sum.add(a, b)
    assert s.dtype == np.float64 and np.all(s == 1.5)                   # NumPy's promotion
    h = np.ones(4, np.float16)
    assert not grad_sum.runs_kernel(h, h) and np.all(grad_sum.add(h, h) == 2)
