"""``mc.backends``: the switches PyTorch scripts set or query (``torch.backends.cudnn.benchmark = True``,
``torch.backends.mps.is_available()``).  minicnn has no cuDNN and no Apple GPU backend, so the cuDNN flags are
accepted and change nothing, and MPS is never available."""
import types

__all__ = ["cudnn", "mps"]

cudnn = types.SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                              is_available=lambda: False)
mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
