"""Dropout masks (kernels/dropout.py): the counter-based draw against its NumPy reference on every device."""
import numpy as np
import pytest

from minicnn import backend
from minicnn.kernels import dropout as D
from helpers import DEVICES, to_cpu


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p", [0.0, 0.25, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_matches_reference(device, p, dtype):
    like = backend.to_device(np.zeros(1, dtype), device)
    mask = D.dropout_mask((6, 7), p, seed=2 ** 62 + 12345, dtype=dtype, like=like)
    assert backend.device_of(mask) == device and mask.dtype == dtype and mask.shape == (6, 7)
    keep = D.uniform_ref(2 ** 62 + 12345, 42).astype(np.float32) >= np.float32(p)
    np.testing.assert_array_equal(to_cpu(mask).ravel(), np.where(keep, dtype(1 / (1 - p)) if p < 1 else 0, 0))


def test_uniform_is_uniform_and_seeds_differ():
    u = D.uniform_ref(7, 200_000)
    assert 0 <= u.min() and u.max() < 1
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 20_000) < 5 * np.sqrt(20_000))     # chi-by-eye: 5 sigma per bin
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01              # neighbours uncorrelated
    assert np.mean(D.uniform_ref(8, 1000) == u[:1000]) < 0.01
