"""Test helpers: devices to run on, inputs without ties, copies back to the host."""
import numpy as np
from numba import cuda

import minicnn as mc
from minicnn.backend import to_cpu  # noqa: F401  (re-exported for tests)

DEVICES = ["cpu"] + (["cuda"] if cuda.is_available() and mc.cuda_available() else [])


def distinct_values(shape, seed=0, spacing=0.01):
    """float64 array of ``shape`` whose entries differ pairwise by >= ``spacing`` (random order, centred on 0):
    no pooling ties and no ReLU kinks within a gradcheck's eps."""
    n = int(np.prod(shape))
    values = (np.arange(n) - (n - 1) / 2) * spacing + spacing / 4      # never 0: nearest is spacing / 4
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def randn(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def compile_ptx(kernel, sig):
    """PTX of a CUDA kernel for compute capability 8.0, no GPU needed: catches what the simulator cannot (typing,
    unsupported features).  Device functions ask the (absent) current device for its compute capability when
    the kernel calling them is typed; without a GPU, answer that with 8.0 too."""
    import types
    from unittest import mock

    import numba.cuda.dispatcher
    if cuda.is_available():
        return cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))[0]
    fake = types.SimpleNamespace(compute_capability=(8, 0))
    with mock.patch.object(numba.cuda.dispatcher, "get_current_device", lambda: fake):
        return cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))[0]
