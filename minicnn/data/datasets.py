"""The dataset base: images kept whole as one uint8 array, served a batch at a time.

A dataset holds ``data`` (uint8, ``(N, C, H, W)``) and ``targets`` (int64, ``(N,)``).  ``get_batch(indices, rng)``
turns the chosen images into float32 in ``[0, 1]`` and applies the transform to the whole batch at once, which
is what the ``DataLoader`` calls; ``dataset[i]`` is the same for one image, like torchvision's.
"""
import os

import numpy as np

__all__ = ["VisionDataset", "TensorDataset", "Subset", "default_root"]


def default_root():
    """Where downloads go when no ``root`` is given: ``$MINICNN_DATA`` or ``~/.cache/minicnn``."""
    return os.environ.get("MINICNN_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minicnn")


def apply_transform(transform, x, rng):
    """Call a minicnn transform with the random generator; any other callable with the batch alone."""
    if transform is None:
        return x
    return transform(x, rng=rng) if getattr(transform, "takes_rng", False) else transform(x)


class VisionDataset:
    """Images ``data`` (uint8 ``(N, C, H, W)``) with labels ``targets`` (int64 ``(N,)``) and a batch transform."""
    classes = []

    def __init__(self, data, targets, transform=None, target_transform=None):
        data, targets = np.asarray(data), np.asarray(targets, dtype=np.int64)
        if data.ndim != 4 or targets.shape != (len(data),):
            raise ValueError(f"{type(self).__name__}: expected data (N, C, H, W) and targets (N,), "
                             f"got {data.shape} and {targets.shape}")
        self.data, self.targets = data, targets
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.data)

    def get_batch(self, indices, rng=None):
        """float32 images ``(B, C, H, W)`` (scaled to ``[0, 1]`` if stored as uint8, then transformed) and int64
        labels ``(B,)`` for the int array ``indices``; ``rng`` drives random transforms."""
        x = self.data[indices]
        x = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
        y = self.targets[indices]
        return apply_transform(self.transform, x, rng), (self.target_transform(y) if self.target_transform else y)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"{type(self).__name__}: index {i} out of range for {len(self)} images")
        x, y = self.get_batch(np.array([i % len(self)]))
        return x[0], int(y[0])

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} images of shape {tuple(self.data.shape[1:])})"


class TensorDataset(VisionDataset):
    """In-memory images (uint8 or float, ``(N, C, H, W)``) and labels; for tests and small experiments."""


class Subset:
    """The images of ``dataset`` at ``indices`` (e.g. the first N for a quick run)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64)
        self.classes = getattr(dataset, "classes", [])

    def __len__(self):
        return len(self.indices)

    def get_batch(self, indices, rng=None):
        return self.dataset.get_batch(self.indices[indices], rng)

    @property
    def targets(self):
        return self.dataset.targets[self.indices]

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]
