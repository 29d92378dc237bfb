"""``mc.cuda``: what ``torch.cuda`` offers a training script (is the GPU there, how many, wait for it, seed it).

minicnn drives one GPU; the simulated device (``NUMBA_ENABLE_CUDASIM=1``) counts as one.
"""
from minicnn import backend
from minicnn import random as mc_random

__all__ = ["is_available", "device_count", "current_device", "synchronize", "manual_seed", "manual_seed_all",
           "get_device_name", "set_device", "empty_cache"]


def is_available():
    """True where ``device="cuda"`` works: a GPU with CuPy, or Numba's CUDA simulator."""
    return backend.cuda_available()


def device_count():
    if backend.HAS_CUPY:
        return int(backend.cupy.cuda.runtime.getDeviceCount())
    return 1 if backend.SIMULATED else 0


def current_device():
    if not is_available():
        raise RuntimeError("mc.cuda.current_device: no CUDA device (see mc.cuda.is_available())")
    return 0


def set_device(device):
    if str(device) not in ("0", "cuda", "cuda:0"):
        raise ValueError(f"mc.cuda.set_device: minicnn drives one GPU (index 0), got {device}")


def get_device_name(device=None):
    if backend.HAS_CUPY:
        props = backend.cupy.cuda.runtime.getDeviceProperties(0)
        return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    if backend.SIMULATED:
        return "Numba CUDA simulator"
    raise RuntimeError("mc.cuda.get_device_name: no CUDA device (see mc.cuda.is_available())")


def synchronize(device=None):
    """Wait for every queued GPU kernel to finish (a no-op without a GPU)."""
    backend.synchronize()


def empty_cache():
    """Give CuPy's cached, unused GPU memory back to the driver (a no-op without a GPU)."""
    if backend.HAS_CUPY:
        backend.cupy.get_default_memory_pool().free_all_blocks()


def manual_seed(seed):
    """minicnn has one generator for every device: the same as ``mc.manual_seed``."""
    mc_random.manual_seed(seed)


manual_seed_all = manual_seed
