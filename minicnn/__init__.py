"""minicnn: a convolutional-network engine written from scratch to be read.  See README.md."""
from minicnn import ops
from minicnn.autograd import Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from minicnn.backend import cuda_available, set_num_threads
from minicnn.ops import (abs, cast, clip, concat, exp, expand, flatten, log, matmul, max, maximum, mean, min,
                         minimum, pad, permute, reshape, split, sqrt, squeeze, stack, sum, transpose, unsqueeze,
                         var, where)
from minicnn.random import manual_seed
from minicnn.gradcheck import gradcheck
from minicnn.serialization import load, save
from minicnn import functional, nn, optim  # torch-style access: mc.nn, mc.optim
from minicnn.summary import summary  # mc.summary is the function; the module is minicnn.summary's main's home

cat = concat
