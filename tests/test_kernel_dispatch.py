"""Which kernels actually run: every op with a kernel file, forward and backward, records the Numba CPU kernels
called and the CUDA kernels launched.  On the cpu device only CPU kernels may run; on the (simulated) cuda
device only CUDA kernels: a buffer that lost its device type on the way (a plain ndarray scratch buffer, say)
would send that step to a CPU kernel and fail here, although every value would still be right."""
import contextlib

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, distinct_values
from minicnn import backend, backends
from minicnn.functional.conv import ALGORITHMS


@contextlib.contextmanager
def recorded():
    """Yield (cpu, gpu): sets of 'module.kernel' names of minicnn.kernels functions called while inside."""
    cpu, gpu = set(), set()
    patches = [(CPUDispatcher, "__call__", cpu, lambda self: self.py_func)]
    if backend.SIMULATED:
        from numba.cuda.simulator.kernel import FakeCUDAKernel
        patches.append((FakeCUDAKernel, "__call__", gpu, lambda self: None if self._device else self.fn))
    originals = [getattr(cls, attr) for cls, attr, _, _ in patches]
    for (cls, attr, sink, func_of), orig in zip(patches, originals):
        def call(self, *args, _orig=orig, _sink=sink, _func_of=func_of, **kwargs):
            fn = _func_of(self)
            if fn is not None and fn.__module__.startswith("minicnn.kernels"):
                _sink.add(f"{fn.__module__.rsplit('.', 1)[1]}.{fn.__name__}")
            return _orig(self, *args, **kwargs)
        setattr(cls, attr, call)
    try:
        yield cpu, gpu
    finally:
        for (cls, attr, _, _), orig in zip(patches, originals):
            setattr(cls, attr, orig)


def _t(shape, seed, device, grad=True):
    return mc.tensor(distinct_values(shape, seed=seed), device=device, requires_grad=grad)


def _conv(name):
    def run(device):
        x, w = _t((2, 3, 6, 6), 1, device), _t((4, 3, 3, 3), 2, device)
        return F.conv2d(x, w, padding=1) if name != "gemm_1x1" else F.conv2d(x, _t((4, 3, 1, 1), 3, device))
    return run


def _conv_t(device):
    return F.conv_transpose2d(_t((2, 3, 4, 4), 4, device), _t((3, 2, 3, 3), 5, device), stride=2, padding=1)


OPS = {f"conv2d[{name}]": _conv(name) for name in ALGORITHMS}
OPS.update({
    "conv_transpose2d": _conv_t,
    "conv2d depthwise": lambda d: F.conv2d(_t((2, 3, 6, 6), 6, d), _t((3, 1, 3, 3), 7, d), padding=1, groups=3),
    "max_pool2d": lambda d: F.max_pool2d(_t((2, 3, 6, 6), 8, d), 2),
    "avg_pool2d": lambda d: F.avg_pool2d(_t((2, 3, 6, 6), 9, d), 3, stride=2, padding=1),
    "adaptive_avg_pool2d": lambda d: F.adaptive_avg_pool2d(_t((2, 3, 7, 5), 10, d), (3, 2)),
    "adaptive_max_pool2d": lambda d: F.adaptive_max_pool2d(_t((2, 3, 7, 5), 11, d), (3, 2)),
    "batch_norm": lambda d: F.batch_norm(_t((4, 3, 5, 5), 12, d), None, None, training=True),
    "local_response_norm": lambda d: F.local_response_norm(_t((2, 6, 4, 4), 13, d), 5),
    "roi_pool": lambda d: F.roi_pool(_t((2, 3, 8, 8), 14, d),
                                     mc.tensor(np.array([[0, 0, 0, 5, 5], [1, 2, 1, 7, 6]], np.float32), device=d),
                                     (2, 2), 1.0),
})


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("device", DEVICES)
def test_only_the_devices_kernels_run(device, op, monkeypatch):
    """Convolutions run with their algorithm forced (forward and backward), the rest of the ops as they are."""
    monkeypatch.setattr(backends, "conv_algorithm", op[7:-1] if op.startswith("conv2d[") else "im2col")
    with recorded() as (cpu, gpu):
        y = OPS[op](device)
        y.backward(mc.tensor(np.random.default_rng(0).standard_normal(y.shape), device=device))
    if op == "conv2d[gemm_1x1]":                                           # GEMMs only: no kernel of ours
        assert not cpu and not gpu, (sorted(cpu), sorted(gpu))
    elif device == "cpu":
        assert cpu and not gpu, f"{op} on cpu ran CUDA kernels {sorted(gpu)}"
    else:
        assert gpu and not cpu, f"{op} on cuda ran CPU kernels {sorted(cpu)} (next to {sorted(gpu)})"
