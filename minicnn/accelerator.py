"""``mc.accelerator``, as ``torch.accelerator`` (newer PyTorch scripts pick their device with it): the GPU
(``cuda``) when there is one, else none."""
from minicnn import cuda as _cuda
from minicnn._device import device as _device

__all__ = ["is_available", "current_accelerator", "device_count", "synchronize"]


def is_available():
    return _cuda.is_available()


def current_accelerator(check_available=False):
    """``mc.device("cuda")`` where a GPU (or the simulator) is there, else None."""
    return _device("cuda") if is_available() else None


def device_count():
    return _cuda.device_count()


def synchronize(device=None):
    _cuda.synchronize()
