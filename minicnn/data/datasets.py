"""The dataset base: images kept whole as one uint8 array, served a batch at a time.

A dataset holds ``data`` (uint8, ``(N, C, H, W)``) and ``targets`` (int64, ``(N,)``).  ``get_batch(indices, rng)``
turns the chosen images into float32 in ``[0, 1]`` and applies the transform to the whole batch at once, which
is what the ``DataLoader`` calls; ``dataset[i]`` is the same for one image, like torchvision's.

A transform with a per-sample step (torchvision's ``ToTensor``, ``Resize``, any plain function) is called the
torchvision way instead: once per image, on a PIL image (mode ``L`` or ``RGB``), with ``target_transform`` on
the int label; ``get_batch`` then stacks the results.
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

    @property
    def per_sample(self):
        from minicnn.data.sample_transforms import is_per_sample
        return is_per_sample(self.transform)

    def sample(self, i, rng=None):
        """Image ``i`` the torchvision way: the PIL image through ``transform``, the int label through
        ``target_transform``."""
        from PIL import Image
        img = self.data[i]
        img = Image.fromarray(img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0)))
        if self.transform is not None:
            img = apply_transform(self.transform, img, rng)
        y = int(self.targets[i])
        return img, (self.target_transform(y) if self.target_transform is not None else y)

    def get_batch(self, indices, rng=None):
        """float32 images ``(B, C, H, W)`` (scaled to ``[0, 1]`` if stored as uint8, then transformed) and int64
        labels ``(B,)`` for the int array ``indices``; ``rng`` drives random transforms."""
        if self.per_sample:
            items = [self.sample(int(i), rng) for i in np.asarray(indices).reshape(-1)]
            return (np.stack([np.asarray(x, dtype=np.float32) for x, _ in items]),
                    np.asarray([y for _, y in items]))
        x = self.data[indices]
        x = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
        y = self.targets[indices]
        return apply_transform(self.transform, x, rng), (self.target_transform(y) if self.target_transform else y)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"{type(self).__name__}: index {i} out of range for {len(self)} images")
        if self.per_sample:
            return self.sample(int(i) % len(self))
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

    @property
    def target_transform(self):                  # the loader's label check skips remapped labels
        return getattr(self.dataset, "target_transform", None)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


_TORCHVISION_NAMES = ("MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "ImageFolder", "DatasetFolder")


def __getattr__(name):
    """``from minicnn.data import datasets; datasets.MNIST(...)``, as ``torchvision.datasets``."""
    if name in _TORCHVISION_NAMES:
        import minicnn.data
        return getattr(minicnn.data, name)
    raise AttributeError(f"module 'minicnn.data.datasets' has no attribute '{name}'")
