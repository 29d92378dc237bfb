"""minicnn: a convolutional-network engine written from scratch to be read.  See README.md."""
import os

# OpenBLAS's idle threads spin for 2**28 cycles (~0.1 s) after each GEMM and take a core from the Numba kernels
# that follow.  2**16 cycles (~25 us) keeps them awake between the GEMMs of one batched matmul and lets them sleep
# before the next kernel; measured on 2 cores in one process, switching the timeout round by round (4, 8, ..., 24):
# 2**16 was the fastest of the six on each of W1, W2 and W3 (LeNet-5 step 3.06 ms, ResNet-20 step 271 ms).
# OpenBLAS reads the variable when it loads; if NumPy was imported first, minicnn.backend restarts OpenBLAS's
# threads with it.  A user's setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

from minicnn import ops  # noqa: E402
from minicnn.autograd import Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from minicnn.backend import cuda_available, set_num_threads
from minicnn.ops import (abs, cast, clip, concat, exp, expand, flatten, log, matmul, max, maximum, mean, min,
                         minimum, pad, permute, reshape, split, sqrt, squeeze, stack, sum, transpose, unsqueeze,
                         var, where)
from minicnn.random import manual_seed
from minicnn.gradcheck import gradcheck
from minicnn.serialization import load, save
from minicnn import backends, functional, nn, optim  # torch-style access: mc.nn, mc.optim, mc.backends
from minicnn.summary import summary  # mc.summary is the function; the module is minicnn.summary's main's home

cat = concat

# ---- PyTorch's names: dtypes, devices, factories, tensor functions, torch.utils.data (issue 14) -----------
from minicnn.dtypes import (bool_, double, float16, float32, float64, half, int8, int16, int32, int64,  # noqa: E402
                            long, short, uint8, get_default_dtype)
from minicnn.dtypes import ALIASES as _DTYPE_ALIASES  # noqa: E402
from minicnn._device import device  # noqa: E402
from minicnn.random import Generator  # noqa: E402
from minicnn.ops.creation import *  # noqa: E402,F401,F403
from minicnn.ops.indexing import (allclose, argmin, argsort, chunk, clamp, eq, equal, gather, ge, gt,  # noqa: E402
                                  isclose, le, lt, masked_fill, ne, nonzero, norm, repeat, scatter, scatter_add,
                                  sort, topk)
from minicnn.ops.indexing import torch_max as max, torch_min as min, torch_where as where  # noqa: E402,F811
from minicnn.ops.methods import clone, std  # noqa: E402
from minicnn.ops.reduce import argmax  # noqa: E402
from minicnn.autograd import set_grad_enabled  # noqa: E402
from minicnn import accelerator, autograd, backends, cuda, utils  # noqa: E402,F401

globals().update(_DTYPE_ALIASES)            # mc.float, mc.int, mc.bool (they would shadow builtins if written out)
inference_mode = no_grad
sum, mean, var = Tensor.sum, Tensor.mean, Tensor.var     # torch.sum(x, dim=1, keepdim=True) as well as axis=
from minicnn.functional import log_softmax, relu, sigmoid, softmax, tanh  # noqa: E402  torch.relu(x), x.relu()
for _f in (log_softmax, relu, sigmoid, softmax, tanh):
    setattr(Tensor, _f.__name__, _f)
del _f
