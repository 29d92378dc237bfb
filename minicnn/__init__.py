"""minicnn: a convolutional-network engine written from scratch to be read.  See README.md."""
from minicnn import ops
from minicnn.autograd import Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from minicnn.backend import cuda_available
from minicnn.ops import (abs, cast, clip, concat, exp, expand, flatten, log, matmul, max, maximum, mean, min,
                         minimum, pad, permute, reshape, split, sqrt, squeeze, stack, sum, transpose, unsqueeze,
                         var, where)
from minicnn.random import manual_seed
from minicnn.gradcheck import gradcheck
from minicnn.serialization import load, save
from minicnn.summary import summary  # mc.summary is the function; "from minicnn.summary import main" reaches the module

cat = concat
from minicnn import functional, nn, optim  # noqa: E402  (torch-style access: mc.nn, mc.optim)
