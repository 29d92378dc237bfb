"""torchvision's per-sample transforms: one image in (a PIL image, a ``(C, H, W)`` Tensor or an ``(H, W[, C])``
array), one image out, composed with ``Compose`` and converted with ``ToTensor``.

``Compose``, ``Normalize``, ``RandomCrop`` and ``RandomHorizontalFlip`` share their names with the batched
transforms of ``minicnn.data.transforms``: they are subclasses of those, so a 4-d batch ``(N, C, H, W)`` still
takes the fast vectorised path (random choices drawn per image), and anything else is treated as one image,
as torchvision does.  A dataset whose transform holds a per-sample-only step (``ToTensor``, ``Resize``,
``CenterCrop``, ``Lambda``, any plain function) hands it one PIL image at a time, as torchvision's datasets do.
Random choices come from the ``rng`` passed (the DataLoader's per-batch generator) or minicnn's generator.
"""
import numbers

import numpy as np

from minicnn import backend
from minicnn import random as mc_random
from minicnn.autograd import Tensor
from minicnn.data import transforms as batch

__all__ = ["ToTensor", "PILToTensor", "ToPILImage", "Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "Resize", "CenterCrop", "Lambda", "is_per_sample"]


def _pil():
    from PIL import Image                        # Pillow: only needed once PIL images are used
    return Image


def _is_pil(x):
    return type(x).__module__.startswith("PIL.")


def _is_batch(x):
    return not _is_pil(x) and getattr(x, "ndim", 0) == 4


def _array(x):
    """(array, layout): Tensors and their arrays are ``CHW``, other arrays ``HWC`` (or ``HW``), PIL ``HWC``."""
    if isinstance(x, Tensor):
        return x.data, "chw"
    if _is_pil(x):
        return np.asarray(x), "hwc"
    if isinstance(x, np.ndarray) and x.ndim in (2, 3):
        return x, "hwc"
    raise TypeError(f"expected a PIL image, a (C, H, W) Tensor or an (H, W[, C]) array, got {type(x).__name__} "
                    f"of shape {getattr(x, 'shape', None)}")


def _hw_axes(a, layout):
    return (a.ndim - 2, a.ndim - 1) if layout == "chw" else (0, 1)


def _rewrap(a, like):
    if isinstance(like, Tensor):
        return Tensor._make(a, like.device)
    if _is_pil(like):
        out = _pil().fromarray(np.ascontiguousarray(a))
        return out if out.mode == like.mode else out.convert(like.mode)
    return a


def image_size(x):
    """(H, W) of one image."""
    a, layout = _array(x)
    h, w = _hw_axes(a, layout)
    return a.shape[h], a.shape[w]


def _crop(x, top, left, height, width):
    a, layout = _array(x)
    h, w = _hw_axes(a, layout)
    index = [slice(None)] * a.ndim
    index[h], index[w] = slice(top, top + height), slice(left, left + width)
    return _rewrap(a[tuple(index)], x)


def _pad(x, left, top, right, bottom, fill=0):
    a, layout = _array(x)
    h, w = _hw_axes(a, layout)
    widths = [(0, 0)] * a.ndim
    widths[h], widths[w] = (top, bottom), (left, right)
    xp = backend.get_array_module(a)
    return _rewrap(xp.pad(a, widths, constant_values=fill), x)


def _flip(x, axis):
    a, layout = _array(x)
    return _rewrap(backend.get_array_module(a).flip(a, _hw_axes(a, layout)[axis]).copy(), x)


def _rng(rng):
    return rng if rng is not None else mc_random.generator()


def _pair(name, size):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    if len(size) != 2:
        raise ValueError(f"{name}: size must be an int or (height, width), got {size}")
    return int(size[0]), int(size[1])


class SampleTransform:
    """Base of the per-sample-only transforms (``per_sample``: a dataset must call them image by image)."""
    per_sample, takes_rng = True, False

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ToTensor(SampleTransform):
    """PIL image or ``(H, W[, C])`` array -> Tensor ``(C, H, W)``: uint8 becomes float32 scaled to [0, 1], other
    dtypes are kept unscaled (as torchvision)."""
    def __call__(self, pic):
        if isinstance(pic, Tensor):
            raise TypeError("ToTensor: the input is already a Tensor")
        a, _ = _array(pic)
        a = a[:, :, None] if a.ndim == 2 else a
        if a.dtype == np.uint8:
            return Tensor._make(a.transpose(2, 0, 1) * np.float32(1 / 255), "cpu")
        return Tensor._make(np.ascontiguousarray(a.transpose(2, 0, 1)), "cpu")


class PILToTensor(SampleTransform):
    """PIL image -> Tensor ``(C, H, W)`` of its own dtype (uint8), unscaled."""
    def __call__(self, pic):
        a = np.asarray(pic)
        return Tensor._make(np.ascontiguousarray((a[:, :, None] if a.ndim == 2 else a).transpose(2, 0, 1)), "cpu")


class ToPILImage(SampleTransform):
    """Tensor ``(C, H, W)`` (floats in [0, 1] or uint8) or ``(H, W[, C])`` array -> PIL image."""
    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, pic):
        a = backend.to_cpu(pic.data).transpose(1, 2, 0) if isinstance(pic, Tensor) else np.asarray(pic)
        if a.dtype.kind == "f":
            a = np.clip(np.round(a * 255), 0, 255).astype(np.uint8)
        a = a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a
        return _pil().fromarray(np.ascontiguousarray(a), mode=self.mode)


class Lambda(SampleTransform):
    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class Resize(SampleTransform):
    """``size`` (h, w), or an int: the shorter side becomes ``size``, keeping the aspect ratio (torchvision's
    rule).  Bilinear by default, through Pillow (which smooths when shrinking, like ``antialias=True``)."""
    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size, self.interpolation, self.max_size = size, str(interpolation).lower().split(".")[-1], max_size

    def _target(self, h, w):
        if isinstance(self.size, numbers.Integral) or len(self.size) == 1:
            s = int(self.size if isinstance(self.size, numbers.Integral) else self.size[0])
            short, long = (h, w) if h <= w else (w, h)
            new_short, new_long = s, int(s * long / short)
            if self.max_size is not None and new_long > self.max_size:
                new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
            return (new_short, new_long) if h <= w else (new_long, new_short)
        return _pair("Resize", self.size)

    def __call__(self, img):
        Image = _pil()
        resample = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}.get(
            self.interpolation)
        if resample is None:
            raise ValueError(f"Resize: interpolation must be nearest, bilinear or bicubic, got {self.interpolation}")
        th, tw = self._target(*image_size(img))
        if _is_pil(img):
            return img.resize((tw, th), resample)
        a, layout = _array(img)
        host = backend.to_cpu(a)
        planes = host.reshape((-1,) + host.shape[-2:]) if layout == "chw" else (
            host[None] if host.ndim == 2 else host.transpose(2, 0, 1))
        out = np.stack([np.asarray(Image.fromarray(p.astype(np.float32), mode="F").resize((tw, th), resample))
                        for p in planes]).astype(host.dtype if host.dtype.kind == "f" else np.float32)
        if host.dtype.kind in "iu":
            out = np.clip(np.round(out), np.iinfo(host.dtype).min, np.iinfo(host.dtype).max).astype(host.dtype)
        if layout == "chw":
            return _rewrap(backend.to_device(out.reshape(host.shape[:-2] + (th, tw)), backend.device_of(a)), img)
        return out[0] if host.ndim == 2 else out.transpose(1, 2, 0)


class CenterCrop(SampleTransform):
    """The central ``size`` window (zero-padded first where the image is smaller), torchvision's rounding."""
    def __init__(self, size):
        self.size = _pair("CenterCrop", size)

    def __call__(self, img):
        th, tw = self.size
        h, w = image_size(img)
        if th > h or tw > w:
            pl, pt = max(tw - w, 0) // 2, max(th - h, 0) // 2
            img = _pad(img, pl, pt, max(tw - w, 0) - pl, max(th - h, 0) - pt)
            h, w = image_size(img)
        return _crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


class Compose(batch.Compose):
    """Apply ``transforms`` in order (one image or, with only batch-capable steps, a whole batch)."""
    def __call__(self, x, rng=None):
        rng = _rng(rng)
        for t in self.transforms:
            x = t(x, rng=rng) if getattr(t, "takes_rng", False) else t(x)
        return x


class Normalize(batch.Normalize):
    """``(x - mean[c]) / std[c]`` on a ``(C, H, W)`` Tensor (or a batch); ``inplace`` is accepted."""
    def __init__(self, mean, std, inplace=False):
        super().__init__(mean, std)

    def __call__(self, x, rng=None):
        if _is_batch(x):
            return _batched(super().__call__, x, rng)
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        if a.ndim < 3 or a.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a float (C, H, W) tensor (use ToTensor() first), got "
                            f"{type(x).__name__} of shape {tuple(getattr(a, 'shape', ()))} and dtype {a.dtype}")
        if len(self.mean) not in (1, a.shape[-3]):
            raise ValueError(f"Normalize: {len(self.mean)} means for an image with {a.shape[-3]} channels")
        xp = backend.get_array_module(a)
        mean = xp.asarray(self.mean, dtype=a.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=a.dtype).reshape(-1, 1, 1)
        out = (a - mean) / std
        return Tensor._make(out, x.device) if isinstance(x, Tensor) else out


class RandomCrop(batch.RandomCrop):
    """A random ``size`` window after padding by ``padding`` (an int, (left/right, top/bottom) or (left, top,
    right, bottom)) with ``fill``; ``pad_if_needed`` pads images smaller than ``size``."""
    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        if padding_mode != "constant":
            raise ValueError(f"RandomCrop: only padding_mode='constant' is supported, got {padding_mode!r}")
        pads = (0,) * 4 if padding is None else (padding,) * 4 if isinstance(padding, numbers.Integral) else (
            tuple(padding) * 2 if len(padding) == 2 else tuple(padding))
        super().__init__(size, padding=pads[0] if len(set(pads)) == 1 else 0)
        self.pads, self.pad_if_needed, self.fill = pads, pad_if_needed, fill

    def __call__(self, x, rng=None):
        if _is_batch(x):
            if len(set(self.pads)) != 1 or self.fill != 0:
                raise ValueError("RandomCrop: a batch takes one int padding and fill=0")
            return _batched(super().__call__, x, rng)
        rng = _rng(rng)
        if any(self.pads):
            x = _pad(x, *self.pads, fill=self.fill)
        th, tw = self.size
        h, w = image_size(x)
        if self.pad_if_needed and (h < th or w < tw):
            x = _pad(x, max(tw - w, 0), max(th - h, 0), max(tw - w, 0), max(th - h, 0), fill=self.fill)
            h, w = image_size(x)
        if th > h or tw > w:
            raise ValueError(f"RandomCrop: size {self.size} exceeds the (padded) image {h}x{w}")
        top, left = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        return _crop(x, top, left, th, tw)


class RandomHorizontalFlip(batch.RandomHorizontalFlip):
    """Mirror left-right with probability ``p``."""
    def __call__(self, x, rng=None):
        if _is_batch(x):
            return _batched(super().__call__, x, rng)
        return _flip(x, 1) if _rng(rng).random() < self.p else x


class RandomVerticalFlip(SampleTransform):
    """Mirror top-bottom with probability ``p``."""
    takes_rng = True

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x, rng=None):
        return _flip(x, 0) if _rng(rng).random() < self.p else x


def _batched(fn, x, rng):
    """A batch transform applied to an array, or to a Tensor's array (rewrapped)."""
    if isinstance(x, Tensor):
        return Tensor._make(fn(x.data, rng=rng), x.device)
    return fn(x, rng=rng)


_BatchCompose, _BatchTransform = batch.Compose, batch.Transform     # before transforms.py re-exports ours


def is_per_sample(transform):
    """True if ``transform`` must see one image at a time: it holds a per-sample-only step, or is any callable
    that is not one of minicnn's batch-capable transforms."""
    if transform is None:
        return False
    if isinstance(transform, _BatchCompose):
        return any(is_per_sample(t) for t in transform.transforms)
    return getattr(transform, "per_sample", not isinstance(transform, _BatchTransform))
