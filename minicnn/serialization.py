"""``mc.save`` / ``mc.load``: state dicts and checkpoints as ``.npz`` files, written atomically.

A flat ``{name: array}`` state dict is stored under its own keys, so ``np.load(path)["conv1.weight"]`` works.
Nested checkpoints (model, optimizer, epoch, RNG state) store each array under its path (``model/conv1.weight``)
and the rest of the structure (numbers, strings, lists, dicts) as JSON in the entry ``__minicnn_tree__``, which
also records which arrays were Tensors, so ``load`` gives Tensors back as Tensors and arrays as arrays.  No
pickle is written or read; the file name is free (``.npz``, ``.pt``, ...).
"""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from minicnn import backend
from minicnn.autograd import Tensor

_TREE = "__minicnn_tree__"


def save(obj, path):
    """Write ``obj`` to ``path`` atomically (see ``atomic_write``)."""
    arrays = {}
    tree = _encode(obj, "", arrays)
    arrays[_TREE] = np.frombuffer(json.dumps(tree).encode(), np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """``with atomic_write(path) as f: ...`` writes a temporary file in the same folder, then renames it over
    ``path``: a crash or an error leaves either the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def publish(tmp, path):
    """Rename the finished temporary file ``tmp`` over ``path``, with the permissions a plain open() would give
    (mkstemp makes files readable by their owner only)."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def load(path, map_location=None, weights_only=None, **kwargs):
    """Read what ``save`` wrote: Tensors come back as Tensors (on ``map_location``: "cpu", "cuda" or an
    ``mc.device``; default cpu), NumPy arrays as arrays, numbers, strings, lists, tuples and dicts as they were.
    Any file name works (``model.pt`` too); nothing is unpickled, so ``weights_only`` is always true.
    A missing, truncated or corrupt file raises an error naming the file."""
    device = backend.check_device(map_location) if map_location is not None else None
    if not os.path.exists(path):
        raise FileNotFoundError(f"mc.load: no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ValueError(f"mc.load: {path} is corrupt or truncated (not a complete .npz file: {e}); "
                         f"use an earlier checkpoint or save it again") from None
    if _TREE not in arrays:                      # a plain .npz of named arrays (e.g. converted weights)
        return arrays
    try:
        return _decode(json.loads(arrays.pop(_TREE).tobytes().decode()), arrays, device)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"mc.load: {path} has a damaged structure entry ({e})") from None


def _encode(obj, prefix, arrays):
    if isinstance(obj, Tensor):                  # stored as its array, read back as a Tensor
        key = prefix or "array"
        arrays[key] = backend.to_cpu(obj.data)
        return {"tensor": key}
    if hasattr(obj, "__array__") and not isinstance(obj, (list, tuple, dict, str, bool, int, float)) or \
            isinstance(obj, np.generic):
        key = prefix or "array"
        arrays[key] = backend.to_cpu(obj) if not isinstance(obj, np.generic) else np.asarray(obj)
        if arrays[key].dtype.hasobject:          # np.savez would pickle it, and load() reads no pickles
            raise TypeError(f"mc.save: cannot store an array of dtype object at '{key}'")
        return {"array": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            return {"dict_items": [[_encode(k, f"{prefix}/k{i}", arrays), _encode(v, f"{prefix}/v{i}", arrays)]
                                   for i, (k, v) in enumerate(obj.items())]}
        return {"dict": {k: _encode(v, f"{prefix}/{k}" if prefix else k, arrays) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple":
                [_encode(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"mc.save: cannot store an object of type {type(obj).__name__} at '{prefix}'")


def _decode(node, arrays, device=None):
    (kind, v), = node.items()
    if kind == "array":
        return arrays[v]
    if kind == "tensor":
        return Tensor._make(backend.to_device(arrays[v], device or "cpu"), device or "cpu")
    if kind == "dict":
        return {k: _decode(x, arrays, device) for k, x in v.items()}
    if kind == "dict_items":
        return {_decode(k, arrays, device): _decode(x, arrays, device) for k, x in v}
    if kind == "list":
        return [_decode(x, arrays, device) for x in v]
    if kind == "tuple":
        return tuple(_decode(x, arrays, device) for x in v)
    if kind == "value":
        return v
    raise ValueError(f"unknown entry kind {kind!r}")
