"""PyTorch's dtype names (``mc.float32``, ``mc.long``, ...) as the NumPy scalar types minicnn arrays use.

``t.dtype == mc.float32`` works because a NumPy dtype compares equal to its scalar type.
"""
import numpy as np

__all__ = ["float16", "half", "float32", "float64", "double", "uint8", "int8", "int16", "short", "int32",
           "int64", "long", "bool_", "ALIASES", "as_dtype", "is_dtype", "get_default_dtype"]

float16 = half = np.float16
float32 = np.float32
float64 = double = np.float64
uint8, int8 = np.uint8, np.int8
int16 = short = np.int16
int32 = np.int32
int64 = long = np.int64
bool_ = np.bool_
ALIASES = {"float": float32, "int": int32, "bool": bool_}     # names that would shadow builtins in this file


def is_dtype(x):
    """True for anything ``as_dtype`` accepts: NumPy dtypes and scalar types (``mc.float32``), ``float``, ``int``."""
    if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, (np.generic, bool, int, float))):
        return True
    return False


def as_dtype(dtype):
    """A ``np.dtype`` for a minicnn/NumPy dtype, or Python's ``float`` (float32, as torch), ``int`` (int64),
    ``bool``; None stays None."""
    if dtype is None:
        return None
    if dtype is float:
        return np.dtype(np.float32)
    if dtype is int:
        return np.dtype(np.int64)
    if dtype is bool:
        return np.dtype(np.bool_)
    return np.dtype(dtype)


def get_default_dtype():
    return float32
