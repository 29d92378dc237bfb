"""The geometric augmentations the lectures' classifiers were trained with, on whole batches ``(N, C, H, W)``,
every random draw per image from the ``rng`` handed in (the colour ones are in ``minicnn/data/color.py``).

- ``RandomResizedCrop``: Inception's scale and aspect-ratio augmentation (Szegedy et al. 2015, §6), torchvision's.
- ``RandomRotation``, ``RandomAffine``: rotation, translation, scaling (and shear), torchvision's arguments.
- ``RandomErasing``: Zhong et al. 2017, torchvision's.
- ``TenCrop``, ``FiveCrop`` and ``average_crops``: AlexNet's test-time augmentation (four corners and the centre,
  and their mirrors; the predictions averaged).

Resampling (crops, rotations) uses pixel centres, like torchvision: output pixel (i, j) of a crop of height h
scaled to TH rows reads input row ``top + (i + 0.5) h / TH - 0.5``.  "bilinear" interpolates the 4 nearest pixels
(edge pixels repeated), "nearest" rounds, and points outside the image read ``fill``.
"""
import math

import numpy as np

from minicnn import random as mc_random
from minicnn.backend import get_array_module
from minicnn.data.transforms import Transform, _check_batch

__all__ = ["RandomResizedCrop", "RandomRotation", "RandomAffine", "RandomErasing", "FiveCrop", "TenCrop",
           "average_crops"]


def _rng(rng):
    return rng if rng is not None else mc_random.generator()


def _size(name, size):
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size}")
    return size


def _sample(x, ys, xs, mode, fill=0.0):
    """x (N, C, H, W) read at real coordinates ys, xs (N, OH, OW) -> (N, C, OH, OW).  "bilinear": the 4
    neighbours weighted by distance (coordinates clamped to the border); "nearest": the closest pixel.  Points
    more than half a pixel outside the image read ``fill``."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    n = xp.arange(N)[:, None, None, None]
    c = xp.arange(C)[None, :, None, None]
    ys, xs = ys[:, None], xs[:, None]                                       # (N, 1, OH, OW)
    outside = (ys < -0.5) | (ys > H - 0.5) | (xs < -0.5) | (xs > W - 0.5)
    if mode == "nearest":
        iy = xp.clip(xp.floor(ys + 0.5), 0, H - 1).astype(np.int64)
        ix = xp.clip(xp.floor(xs + 0.5), 0, W - 1).astype(np.int64)
        out = x[n, c, iy, ix]
    else:
        ys, xs = xp.clip(ys, 0, H - 1), xp.clip(xs, 0, W - 1)
        y0, x0 = xp.floor(ys).astype(np.int64), xp.floor(xs).astype(np.int64)
        y1, x1 = xp.minimum(y0 + 1, H - 1), xp.minimum(x0 + 1, W - 1)
        wy, wx = (ys - y0).astype(x.dtype), (xs - x0).astype(x.dtype)
        top = x[n, c, y0, x0] * (1 - wx) + x[n, c, y0, x1] * wx
        bottom = x[n, c, y1, x0] * (1 - wx) + x[n, c, y1, x1] * wx
        out = top * (1 - wy) + bottom * wy
    return xp.where(outside, xp.asarray(fill, dtype=x.dtype), out).astype(x.dtype)


class RandomResizedCrop(Transform):
    """Crop a random area fraction in ``scale`` with aspect ratio (w / h) in ``ratio`` (log-uniform), then
    resize it to ``size``; ten tries per image, then torchvision's fallback (the centre crop of the whole image
    clamped to ``ratio``)."""
    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear"):
        self.size = _size("RandomResizedCrop", size)
        self.scale, self.ratio, self.interpolation = tuple(scale), tuple(ratio), interpolation
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale {scale} and ratio {ratio} must be (min, max)")

    def get_params(self, H, W, rng):
        """(top, left, height, width) of one crop, torchvision's ``get_params``."""
        area, log_ratio = H * W, np.log(self.ratio)
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= W and 0 < h <= H:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            w, h = W, int(round(W / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = H, int(round(H * self.ratio[1]))
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def __call__(self, x, rng=None):
        _check_batch("RandomResizedCrop", x)
        rng, xp = _rng(rng), get_array_module(x)
        N, _, H, W = x.shape
        TH, TW = self.size
        boxes = np.array([self.get_params(H, W, rng) for _ in range(N)], dtype=np.float64)   # (N, 4)
        top, left, h, w = (boxes[:, i:i + 1] for i in range(4))
        ys = top + (np.arange(TH) + 0.5) * h / TH - 0.5                                   # (N, TH)
        xs = left + (np.arange(TW) + 0.5) * w / TW - 0.5                                  # (N, TW)
        ys = xp.asarray(np.broadcast_to(ys[:, :, None], (N, TH, TW)))
        xs = xp.asarray(np.broadcast_to(xs[:, None, :], (N, TH, TW)))
        return _sample(x, ys, xs, self.interpolation)


def _affine_grid(N, H, W, angle, translate, scale, shear):
    """Input coordinates (N, H, W) of every output pixel for the forward map p -> c + t + s R(angle) Sh (p - c)
    about the centre c; positive angles turn the picture counter-clockwise, as torchvision's."""
    a, sx = np.deg2rad(angle)[:, None, None], np.deg2rad(shear[:, 0])[:, None, None]
    sy = np.deg2rad(shear[:, 1])[:, None, None]
    cy, cx = (H - 1) / 2, (W - 1) / 2
    v, u = np.meshgrid(np.arange(H) - cy, np.arange(W) - cx, indexing="ij")         # output rows, columns
    u, v = u - translate[:, 0, None, None], v - translate[:, 1, None, None]
    # undo the rotation (image axes: x right, y down, so counter-clockwise is [[cos, sin], [-sin, cos]])
    ur = (np.cos(a) * u - np.sin(a) * v) / scale[:, None, None]
    vr = (np.sin(a) * u + np.cos(a) * v) / scale[:, None, None]
    # undo the shear x' = x + tan(sx) y, y' = y + tan(sy) x
    det = 1 - np.tan(sx) * np.tan(sy)
    ui, vi = (ur - np.tan(sx) * vr) / det, (vr - np.tan(sy) * ur) / det
    return vi + cy, ui + cx


def _range(name, v, centred=True):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError(f"{name} must be non-negative, got {v}")
        return (-float(v), float(v)) if centred else (float(v), float(v))
    return tuple(float(t) for t in v)


class RandomAffine(Transform):
    """torchvision's RandomAffine: angle ~ U(degrees), translation (round(U(-a W, a W)), round(U(-b H, b H)))
    pixels for ``translate=(a, b)``, scale ~ U(scale), shear ~ U(shear) degrees along x (and y with 4 values);
    output pixels outside the input read ``fill``."""
    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation="nearest", fill=0.0):
        self.degrees = _range("RandomAffine: degrees", degrees)
        self.translate, self.scale = translate, scale
        if translate is not None and not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"RandomAffine: translate values must be in [0, 1], got {translate}")
        if scale is not None and not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffine: scale must be (min, max) with 0 < min, got {scale}")
        self.shear = _range("RandomAffine: shear", shear)
        self.interpolation, self.fill = interpolation, fill

    def __call__(self, x, rng=None):
        _check_batch(type(self).__name__, x)
        rng = _rng(rng)
        N, _, H, W = x.shape
        angle = rng.uniform(*self.degrees, N)
        if self.translate is not None:
            t = np.stack([np.round(rng.uniform(-1, 1, N) * self.translate[0] * W),
                          np.round(rng.uniform(-1, 1, N) * self.translate[1] * H)], axis=1)
        else:
            t = np.zeros((N, 2))
        s = rng.uniform(*self.scale, N) if self.scale is not None else np.ones(N)
        shear = np.zeros((N, 2))
        if self.shear is not None:
            shear[:, 0] = rng.uniform(*self.shear[:2], N)
            if len(self.shear) == 4:
                shear[:, 1] = rng.uniform(*self.shear[2:], N)
        ys, xs = _affine_grid(N, H, W, angle, t, s, shear)
        xp = get_array_module(x)
        return _sample(x, xp.asarray(ys), xp.asarray(xs), self.interpolation, self.fill)


class RandomRotation(RandomAffine):
    """Rotate each image by an angle ~ U(degrees) (a number d means (-d, d)) about its centre, counter-clockwise
    for positive angles, keeping the size (torchvision's ``expand=False``)."""
    def __init__(self, degrees, interpolation="nearest", fill=0.0):
        super().__init__(degrees, interpolation=interpolation, fill=fill)


class RandomErasing(Transform):
    """torchvision's RandomErasing: with probability p, a rectangle of area fraction U(scale) and aspect ratio
    log-U(ratio) at a random place is set to ``value`` (a number, one per channel, or "random": N(0, 1) noise);
    ten tries per image, none if no rectangle fits."""
    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if not 0 <= p <= 1 or scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomErasing: p {p} must be in [0, 1], scale {scale} and ratio {ratio} (min, max)")
        self.p, self.scale, self.ratio, self.value, self.inplace = p, tuple(scale), tuple(ratio), value, inplace

    def get_params(self, H, W, rng):
        """(top, left, height, width) of the rectangle, or None."""
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            area = H * W * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if h < H and w < W:
                return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w
        return None

    def __call__(self, x, rng=None):
        _check_batch("RandomErasing", x)
        rng, xp = _rng(rng), get_array_module(x)
        N, C, H, W = x.shape
        mask = np.zeros((N, 1, H, W), dtype=bool)
        for n in np.flatnonzero(rng.random(N) < self.p):
            box = self.get_params(H, W, rng)
            if box is not None:
                i, j, h, w = box
                mask[n, 0, i:i + h, j:j + w] = True
        if isinstance(self.value, str):
            if self.value != "random":
                raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', got {self.value!r}")
            fill = xp.asarray(rng.standard_normal(x.shape), dtype=x.dtype)
        else:
            fill = xp.asarray(np.broadcast_to(np.asarray(self.value, dtype=np.float64).reshape(-1, 1, 1),
                                              (C, 1, 1)), dtype=x.dtype)
        return xp.where(xp.asarray(mask), fill, x)


class FiveCrop(Transform):
    """The four corner crops and the centre crop of ``size``: (N, C, H, W) -> (5 N, C, TH, TW), the crops of image
    n at rows 5 n ... 5 n + 4 in torchvision's order (top-left, top-right, bottom-left, bottom-right, centre)."""
    takes_rng = False
    ncrops = 5

    def __init__(self, size):
        self.size = _size(type(self).__name__, size)

    def _crops(self, x):
        H, W = x.shape[2:]
        TH, TW = self.size
        if TH > H or TW > W:
            raise ValueError(f"{type(self).__name__}: size {self.size} exceeds the input {H}x{W}")
        cy, cx = int(round((H - TH) / 2.0)), int(round((W - TW) / 2.0))
        corners = [(0, 0), (0, W - TW), (H - TH, 0), (H - TH, W - TW), (cy, cx)]
        return [x[:, :, i:i + TH, j:j + TW] for i, j in corners]

    def _stack(self, crops):
        xp = get_array_module(crops[0])
        N = crops[0].shape[0]
        return xp.stack(crops, axis=1).reshape((N * len(crops),) + crops[0].shape[1:])

    def __call__(self, x, rng=None):
        _check_batch(type(self).__name__, x)
        return self._stack(self._crops(x))


class TenCrop(FiveCrop):
    """AlexNet's test-time augmentation (§4.1): FiveCrop and the same five crops of the mirrored image
    (``vertical_flip=True``: flipped upside down instead); (N, C, H, W) -> (10 N, C, TH, TW), image n's crops at
    rows 10 n ... 10 n + 9.  Average the network's outputs with ``average_crops(out, 10)``."""
    ncrops = 10

    def __init__(self, size, vertical_flip=False):
        super().__init__(size)
        self.vertical_flip = vertical_flip

    def __call__(self, x, rng=None):
        _check_batch("TenCrop", x)
        flipped = x[:, :, ::-1] if self.vertical_flip else x[..., ::-1]
        return self._stack(self._crops(x) + self._crops(flipped))


def average_crops(outputs, ncrops):
    """(N * ncrops, ...) predictions of the crops of N images (as ``TenCrop`` orders them) -> (N, ...) means.
    Works on arrays and on minicnn Tensors."""
    if outputs.shape[0] % ncrops:
        raise ValueError(f"average_crops: {outputs.shape[0]} rows are not a multiple of ncrops={ncrops}")
    return outputs.reshape((outputs.shape[0] // ncrops, ncrops) + tuple(outputs.shape[1:])).mean(axis=1)
