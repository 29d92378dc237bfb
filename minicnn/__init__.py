"""minicnn: a convolutional-network engine written from scratch to be read.  See README.md."""
import os

# OpenBLAS's idle threads spin for ~0.1 s after each GEMM and take a core from the im2col/col2im kernels that
# follow (measured: conv fwd+bwd 223 -> 189 ms, a LeNet-5 step 27 -> 20 ms on 2 cores).  Takes effect only when
# minicnn is imported before NumPy (as with python -m minicnn); a user's setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

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
