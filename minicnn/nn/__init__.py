"""Layers: Modules that own parameters and buffers (``import minicnn.nn as nn``)."""
from minicnn.nn import init  # noqa: F401
from minicnn.nn.module import Module, Parameter  # noqa: F401
from minicnn.nn.containers import *  # noqa: F401,F403
from minicnn.nn.linear import *  # noqa: F401,F403
from minicnn.nn.activation import *  # noqa: F401,F403
from minicnn.nn.loss import *  # noqa: F401,F403
from minicnn.nn.conv import *  # noqa: F401,F403
from minicnn.nn.pooling import *  # noqa: F401,F403
from minicnn.nn.normalization import *  # noqa: F401,F403
from minicnn.nn.dropout import *  # noqa: F401,F403
from minicnn.nn.upsample import *  # noqa: F401,F403
from minicnn.nn.roi import *  # noqa: F401,F403
from minicnn.nn.misc import *  # noqa: F401,F403
from minicnn.nn import utils  # noqa: F401,E402  (nn.utils.clip_grad_norm_, ...)

import sys as _sys  # noqa: E402
from minicnn import functional  # noqa: E402,F401

_sys.modules[__name__ + ".functional"] = functional    # import minicnn.nn.functional as F, as torch.nn.functional
