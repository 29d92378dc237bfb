"""ReLU kernels (kernels/relu.py) against their NumPy reference on every device, the kernels' own path forced
(float32, float64; on the CPU enough elements for the parallel path) and the reference path (float16, integers)."""
import numpy as np
import pytest

from minicnn import backend
from minicnn.kernels import relu as R
from helpers import DEVICES, to_cpu


def _data(shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    x.ravel()[:5] = [0.0, -0.0, np.nan, np.inf, -np.inf]              # the edge cases, all in one array
    return x.astype(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_forward_and_backward_match_reference(device, dtype):
    shape = (3, 5, 7, 11) if device == "cuda" else (3, 64, 20, 19)   # CPU: past PARALLEL_MIN, on every thread
    x, gy = _data(shape, dtype), _data(shape, dtype, seed=1)
    y, mask = R.relu_forward(backend.to_device(x, device))
    assert backend.device_of(y) == device and y.dtype == dtype and mask.dtype == np.bool_ and y.shape == shape
    y_ref, mask_ref = R.relu_forward_ref(x)
    np.testing.assert_array_equal(to_cpu(mask), mask_ref)
    np.testing.assert_array_equal(to_cpu(y), y_ref)                  # NaN stays NaN, -inf and 0 give 0
    assert np.isnan(to_cpu(y).ravel()[2]) and to_cpu(y).ravel()[3] == np.inf
    gx = R.relu_backward(backend.to_device(gy, device), mask)
    assert backend.device_of(gx) == device and gx.dtype == dtype
    np.testing.assert_array_equal(to_cpu(gx), R.relu_backward_ref(gy, mask_ref))


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_input(device):
    x = _data((4, 6, 5), np.float32)
    xt = backend.to_device(x, device).transpose(2, 0, 1)              # a view: the kernels see a contiguous copy
    y, mask = R.relu_forward(xt)
    np.testing.assert_array_equal(to_cpu(y), R.relu_forward_ref(x.transpose(2, 0, 1))[0])
    assert y.flags["C_CONTIGUOUS"]


def test_integers_and_empty_go_through_the_reference():
    x = np.array([[-2, 0, 3]], np.int64)
    y, mask = R.relu_forward(x)
    assert y.dtype == np.int64 and y.tolist() == [[0, 0, 3]] and mask.tolist() == [[False, False, True]]
    y, mask = R.relu_forward(np.zeros((0, 3), np.float32))
    assert y.shape == (0, 3) and mask.shape == (0, 3)
