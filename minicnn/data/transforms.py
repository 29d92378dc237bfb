"""Transforms on whole batches: float32 ``(N, C, H, W)`` in, float32 ``(N, C, H', W')`` out, vectorised.

Random transforms draw from the ``rng`` they are handed (the ``DataLoader`` passes one derived from its seed, the
epoch and the batch number, so augmentation is reproducible whatever thread prepares the batch); with none they
draw from minicnn's global generator (``mc.manual_seed``).  Works on NumPy and CuPy arrays alike.
"""
import numpy as np

from minicnn import random as mc_random
from minicnn.backend import get_array_module

__all__ = ["Transform", "Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip"]


def _check_batch(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch (N, C, H, W), got shape {tuple(x.shape)}")


class Transform:
    """Base class: ``__call__(x, rng=None)`` maps a batch to a batch."""
    takes_rng = True

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply ``transforms`` in order, all drawing from the same ``rng``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        rng = rng if rng is not None else mc_random.generator()
        for t in self.transforms:
            x = t(x, rng=rng) if getattr(t, "takes_rng", False) else t(x)
        return x


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel; ``mean``, ``std`` are sequences of length C (or numbers)."""

    def __init__(self, mean, std):
        self.mean, self.std = tuple(np.atleast_1d(mean).tolist()), tuple(np.atleast_1d(std).tolist())
        if len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} must have one positive std per mean")

    def __call__(self, x, rng=None):
        _check_batch("Normalize", x)
        if len(self.mean) not in (1, x.shape[1]):
            raise ValueError(f"Normalize: {len(self.mean)} means for a batch with {x.shape[1]} channels "
                             f"(shape {tuple(x.shape)})")
        xp = get_array_module(x)
        mean = xp.asarray(self.mean, dtype=x.dtype).reshape(1, -1, 1, 1)
        std = xp.asarray(self.std, dtype=x.dtype).reshape(1, -1, 1, 1)
        return (x - mean) / std


class RandomCrop(Transform):
    """Zero-pad each side by ``padding``, then cut a ``size`` window at a random place, drawn per image."""

    def __init__(self, size, padding=0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding or 0)

    def __call__(self, x, rng=None):
        _check_batch("RandomCrop", x)
        rng = rng if rng is not None else mc_random.generator()
        xp, p = get_array_module(x), self.padding
        N, C, H, W = x.shape
        TH, TW = self.size
        if TH > H + 2 * p or TW > W + 2 * p:
            raise ValueError(f"RandomCrop: size {self.size} exceeds the padded input {H + 2 * p}x{W + 2 * p}")
        if p:
            x = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        top = xp.asarray(rng.integers(0, H + 2 * p - TH + 1, N))         # one window corner per image
        left = xp.asarray(rng.integers(0, W + 2 * p - TW + 1, N))
        rows = (top[:, None] + xp.arange(TH))[:, None, :, None]            # (N, 1, TH, 1)
        cols = (left[:, None] + xp.arange(TW))[:, None, None, :]           # (N, 1, 1, TW)
        n, c = xp.arange(N)[:, None, None, None], xp.arange(C)[None, :, None, None]
        return x[n, c, rows, cols]                                         # broadcast to (N, C, TH, TW)


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p``, drawn per image."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x, rng=None):
        _check_batch("RandomHorizontalFlip", x)
        rng = rng if rng is not None else mc_random.generator()
        xp = get_array_module(x)
        flip = xp.asarray(rng.random(x.shape[0]) < self.p)
        return xp.where(flip[:, None, None, None], x[..., ::-1], x)


# the augmentations of the lectures' classifiers (AlexNet's PCA colour, Inception's crops, YOLO's HSV, TTA crops)
from minicnn.data.augment import (FiveCrop, RandomAffine, RandomErasing, RandomResizedCrop,  # noqa: E402
                                  RandomRotation, TenCrop, average_crops)
from minicnn.data.color import ColorJitter, FancyPCA, RandomHSV  # noqa: E402
__all__ += ["FancyPCA", "RandomResizedCrop", "RandomRotation", "RandomAffine", "RandomHSV", "ColorJitter",
            "RandomErasing", "FiveCrop", "TenCrop", "average_crops"]

# torchvision's per-sample transforms (ToTensor, Resize, ...).  Compose, Normalize, RandomCrop and
# RandomHorizontalFlip are replaced by subclasses that also take one image; on a batch they run the code above.
from minicnn.data.sample_transforms import (CenterCrop, Compose, Lambda, Normalize, PILToTensor,  # noqa: E402,F811
                                            RandomCrop, RandomHorizontalFlip, RandomVerticalFlip, Resize,
                                            ToPILImage, ToTensor)
__all__ += ["ToTensor", "PILToTensor", "ToPILImage", "Resize", "CenterCrop", "Lambda", "RandomVerticalFlip"]
