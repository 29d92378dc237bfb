"""``Normalize``: the per-channel (x - mean) / std that dense-prediction and embedding models apply to their
input themselves, so that a checkpoint works on plain images in [0, 1] without the training pipeline."""
import numpy as np

from minicnn import nn
from minicnn.autograd import constant

__all__ = ["Normalize", "MNIST_SEGMENTATION_STATS", "MNIST_STATS", "IMAGENET_STATS"]

MNIST_STATS = ((0.1307,), (0.3081,))                 # of the 60,000 training digits
MNIST_SEGMENTATION_STATS = ((0.0497,), (0.2003,))    # of MNISTSegmentation's 64 x 64 canvases (seed 0)
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class Normalize(nn.Module):
    """(N, C, H, W) in [0, 1] -> (x - mean[c]) / std[c]; no parameters or buffers (no state-dict keys)."""
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: {len(self.mean)} means but {len(self.std)} stds")

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != len(self.mean):
            raise ValueError(f"Normalize: expected (N, {len(self.mean)}, H, W) images, got {tuple(x.shape)}")
        if len(set(self.mean)) == 1 and len(set(self.std)) == 1:
            return (x - self.mean[0]) * (1.0 / self.std[0])
        shape = (1, len(self.mean), 1, 1)
        m = constant(np.asarray(self.mean, x.dtype).reshape(shape), x.device)
        s = constant(np.asarray([1.0 / v for v in self.std], x.dtype).reshape(shape), x.device)
        return (x - m) * s

    def extra_repr(self):
        return f"mean={self.mean}, std={self.std}"
