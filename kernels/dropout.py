"""Dropout masks drawn where the data lives, identical on every device: a counter-based generator.

Element ``i`` of a mask drawn with seed ``s`` is kept when ``u(s, i) >= p``, where ``u`` is the top 24 bits of
SplitMix64 (Steele, Lea and Flood 2014) of ``s + (i + 1) * golden``, as a float in [0, 1).  Each element depends
on its index only, so a CUDA thread per element draws it without any generator state, the CPU draws the same
values, and nothing is uploaded: one integer seed per mask comes from ``minicnn.random.generator()`` on the host
(no device round trip), so a seeded run (and a resumed one) gives the same masks on the CPU and on CUDA.
"""
import numpy as np
from numba import cuda, njit, prange

from minicnn.backend import device_of, get_array_module, launch, to_device
from minicnn.kernels.im2col import cpu_launch
from minicnn.kernels.scalar import like

__all__ = ["dropout_mask", "uniform_ref"]

_GOLDEN, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def uniform_ref(seed, n):
    """u(seed, i) for i < n in float64, with NumPy's uint64 arithmetic (wrapping): the reference."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / 2.0 ** 24


def _keep_one(mask, i, seed, p, scale):
    z = seed + (np.uint64(i) + np.uint64(1)) * np.uint64(_GOLDEN)          # uint64 throughout: wraps mod 2^64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    z = z ^ (z >> np.uint64(31))
    u = np.float32(z >> np.uint64(40)) * np.float32(1.0 / 2 ** 24)         # exact: 24 bits fit a float32
    mask[i] = scale if u >= p else like(0, scale)


_keep_one_cpu, _keep_one_gpu = njit(inline="always", cache=True)(_keep_one), cuda.jit(device=True)(_keep_one)


@njit(parallel=True, cache=True)
def _mask_cpu(mask, seed, p, scale):
    for i in prange(mask.shape[0]):
        _keep_one_cpu(mask, i, seed, p, scale)


@cuda.jit(cache=True)
def _mask_gpu(mask, seed, p, scale):
    i = cuda.grid(1)
    if i < mask.shape[0]:
        _keep_one_gpu(mask, i, seed, p, scale)


def dropout_mask(shape, p, seed, dtype, device="cpu", like=None):
    """The inverted-dropout mask of ``shape``: 1 / (1 - p) where u(seed, i) >= p, else 0, in ``dtype``, made on
    ``device`` (``like``: an array whose array module to use there)."""
    xp = get_array_module(like) if like is not None else np
    mask = xp.empty(int(np.prod(shape)), dtype)
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0             # p = 1 drops everything (a zero mask, as PyTorch)
    args = (np.uint64(seed), np.float32(p), mask.dtype.type(scale))
    device = device_of(like) if like is not None else device
    if device == "cpu":
        cpu_launch(_mask_cpu, mask.size)(mask, *args)
    elif mask.size:
        with np.errstate(over="ignore"):                   # the simulator's NumPy uint64 scalars wrap, as meant
            launch(_mask_gpu, mask.size)(mask, *args)
    mask = mask.reshape(shape)
    return to_device(mask, device) if like is not None and device != "cpu" else mask   # no copy: only re-tagged
