"""Normalisation layers: BatchNorm1d/2d (Ioffe & Szegedy 2015) and LocalResponseNorm (AlexNet, section 3.3)."""
import numpy as np

from minicnn import functional as F
from minicnn.nn.module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNormReLU2d", "LocalResponseNorm"]


class _BatchNorm(Module):
    """Per-channel normalisation with learnable weight/bias and running statistics, PyTorch's ``_BatchNorm``.

    Buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (int64) as torchvision's,
    so state-dict keys read ``bn1.running_mean``.  In training mode the batch's statistics normalise and update
    the running ones (``momentum=None``: a cumulative average over ``num_batches_tracked`` batches); in eval
    mode the running statistics normalise.  ``track_running_stats=False``: batch statistics in both modes.
    """
    expected_dims = ()
    normalize = staticmethod(F.batch_norm)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype))
            self.bias = Parameter(np.zeros(num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def forward(self, input):
        return self._normalize(input)

    def _normalize(self, input, **extra):
        """``self.normalize`` (F.batch_norm, or a fused variant) of input with this layer's statistics, after the
        checks; ``extra``: keyword arguments for it."""
        name = type(self).__name__
        if input.ndim not in self.expected_dims:
            dims = " or ".join(f"{d}D" for d in self.expected_dims)
            raise ValueError(f"{name}: expected {dims} input, got shape {input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {input.shape[1]} channels (shape {input.shape}), "
                             f"expected num_features={self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:                   # cumulative average: 1 / batches, kept on the device
                factor = 1.0 / self.num_batches_tracked.data    # (a float() here would wait for the GPU)
        use_batch_stats = self.training or self.running_mean is None
        tracked = not self.training or self.track_running_stats
        return self.normalize(input, self.running_mean if tracked else None,
                              self.running_var if tracked else None, self.weight, self.bias, use_batch_stats, factor,
                              self.eps, **extra)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over N (and L)."""
    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W."""
    expected_dims = (4,)


class BatchNormReLU2d(BatchNorm2d):
    """``relu(BatchNorm2d(x))`` in one module and in the passes of the normalisation alone
    (``F.batch_norm_relu``): what a conv -> BN -> ReLU block runs to spare the ReLU's own passes over the data.

    The parameters and buffers are BatchNorm2d's, under the same names (state-dict keys ``bn1.weight``,
    ``bn1.running_mean``, ... load from and into torchvision's and timm's checkpoints), and it is a BatchNorm2d
    for ``isinstance`` (initialisation, weight decay rules); only its output is the ReLU's.  PyTorch has no such
    training module (``torch.ao.nn.intrinsic.BNReLU2d`` is its quantisation-side cousin).

    ``bn(x, residual=s)`` is ``relu(bn(x) + s)``, a residual block's end, with the sum in the same pass.
    """
    normalize = staticmethod(F.batch_norm_relu)

    def forward(self, input, residual=None):
        return self._normalize(input, residual=residual)


class LocalResponseNorm(Module):
    """Local response normalisation across ``size`` channels (PyTorch's formula; AlexNet uses size=5,
    alpha=5e-4 in this convention — the paper's 1e-4 times n=5 — beta=0.75, k=2)."""
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
