"""Colour augmentations on batches of RGB images in [0, 1], ``(N, 3, H, W)``, every random draw per image from the
``rng`` handed in.

- ``FancyPCA``: AlexNet's colour augmentation (Krizhevsky et al. 2012, §4.1).
- ``RandomHSV``: YOLO's hue / saturation / exposure jitter (Darknet's ``random_distort_image``).
- ``ColorJitter``: torchvision's brightness / contrast / saturation / hue in a random order per image.
"""
import numpy as np

from minicnn.backend import get_array_module
from minicnn.data.augment import _rng
from minicnn.data.transforms import Transform, _check_batch

__all__ = ["FancyPCA", "RandomHSV", "ColorJitter", "rgb_to_hsv", "hsv_to_rgb"]


def _rgb(name, x):
    _check_batch(name, x)
    if x.shape[1] != 3:
        raise ValueError(f"{name}: expected RGB images (N, 3, H, W), got shape {tuple(x.shape)}")


class FancyPCA(Transform):
    """AlexNet's PCA colour augmentation: to every pixel of an image add ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T``,
    p_i and l_i the eigenvectors and eigenvalues of the 3 x 3 covariance of RGB values over the training set,
    a_i ~ N(0, alphastd) drawn once per image ("an image's illumination").  ``FancyPCA.fit(images)`` computes
    the eigen-decomposition; or pass ``eigval`` (3,) and ``eigvec`` (3, 3), columns the eigenvectors."""
    def __init__(self, eigval, eigvec, alphastd=0.1):
        self.eigval = np.asarray(eigval, dtype=np.float64).reshape(3)
        self.eigvec = np.asarray(eigvec, dtype=np.float64).reshape(3, 3)
        self.alphastd = float(alphastd)

    @classmethod
    def fit(cls, images, alphastd=0.1):
        """Eigenvalues (ascending) and eigenvectors of the RGB covariance of ``images`` (N, 3, H, W)."""
        _rgb("FancyPCA.fit", images)
        pixels = np.asarray(images, dtype=np.float64).transpose(1, 0, 2, 3).reshape(3, -1)
        eigval, eigvec = np.linalg.eigh(np.cov(pixels))
        return cls(eigval, eigvec, alphastd)

    def __call__(self, x, rng=None):
        _rgb("FancyPCA", x)
        alpha = _rng(rng).normal(0.0, self.alphastd, (x.shape[0], 3))       # (N, 3)
        shift = (alpha * self.eigval) @ self.eigvec.T                       # (N, 3): sum_i a_i l_i p_i
        xp = get_array_module(x)
        return x + xp.asarray(shift, dtype=x.dtype)[:, :, None, None]


def rgb_to_hsv(x):
    """(N, 3, H, W) RGB in [0, 1] -> HSV, hue in [0, 1) (a fraction of the colour circle)."""
    xp = get_array_module(x)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v, mn = x.max(axis=1), x.min(axis=1)
    delta = v - mn
    s = xp.where(v > 0, delta / xp.where(v > 0, v, 1), 0)
    d = xp.where(delta > 0, delta, 1)
    h = xp.where(v == r, (g - b) / d, xp.where(v == g, 2 + (b - r) / d, 4 + (r - g) / d))
    h = xp.where(delta > 0, (h / 6) % 1.0, 0)
    return xp.stack([h, s, v], axis=1).astype(x.dtype)


def hsv_to_rgb(x):
    """Inverse of ``rgb_to_hsv`` (the six sectors of the hexcone)."""
    xp = get_array_module(x)
    h, s, v = x[:, 0] % 1.0, x[:, 1], x[:, 2]
    i = xp.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    pick = lambda *vals: xp.choose(i, vals)                                 # noqa: E731
    return xp.stack([pick(v, q, p, p, t, v), pick(t, v, v, q, p, p), pick(p, p, t, v, v, q)], axis=1).astype(x.dtype)


class RandomHSV(Transform):
    """YOLO's colour jitter (Darknet's ``random_distort_image``): in HSV, hue shifted by U(-hue, hue) of the
    circle, saturation and value (exposure) multiplied by a factor U(1, s), inverted with probability 1/2."""
    def __init__(self, hue=0.1, saturation=1.5, exposure=1.5):
        if saturation < 1 or exposure < 1 or not 0 <= hue <= 0.5:
            raise ValueError(f"RandomHSV: saturation {saturation} and exposure {exposure} must be >= 1, "
                             f"hue {hue} in [0, 0.5]")
        self.hue, self.saturation, self.exposure = hue, saturation, exposure

    def __call__(self, x, rng=None):
        _rgb("RandomHSV", x)
        rng, xp, N = _rng(rng), get_array_module(x), x.shape[0]

        def scale(s):                                                      # Darknet's rand_scale
            f = rng.uniform(1, s, N)
            return np.where(rng.random(N) < 0.5, f, 1 / f)
        dh, ds, dv = rng.uniform(-self.hue, self.hue, N), scale(self.saturation), scale(self.exposure)
        hsv = rgb_to_hsv(x)
        factors = xp.asarray(np.stack([dh, ds, dv], axis=1), dtype=x.dtype)[:, :, None, None]
        h = (hsv[:, 0:1] + factors[:, 0:1]) % 1.0
        sv = xp.clip(hsv[:, 1:] * factors[:, 1:], 0, 1)
        return hsv_to_rgb(xp.concatenate([h, sv], axis=1))


def _gray(x):
    """ITU-R 601-2 luma, torchvision's rgb_to_grayscale: (N, 1, H, W)."""
    return (0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(x.dtype)


class ColorJitter(Transform):
    """torchvision's ColorJitter on images in [0, 1]: brightness, contrast, saturation factors drawn from
    [max(0, 1 - v), 1 + v] (or a given (min, max)), hue from [-hue, hue], applied in a random order per image.
    brightness blends with black, contrast with the image's mean grey level, saturation with its greyscale
    image (each result clamped to [0, 1]); hue rotates H in HSV."""
    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = self._factor("brightness", brightness)
        self.contrast = self._factor("contrast", contrast)
        self.saturation = self._factor("saturation", saturation)
        self.hue = self._factor("hue", hue, centre=0, bound=0.5)

    @staticmethod
    def _factor(name, v, centre=1.0, bound=None):
        lo, hi = (centre - v, centre + v) if isinstance(v, (int, float)) else tuple(v)
        if isinstance(v, (int, float)) and v < 0:
            raise ValueError(f"ColorJitter: {name} must be non-negative, got {v}")
        lo = max(lo, 0.0) if centre == 1.0 else lo
        if bound is not None and not -bound <= lo <= hi <= bound:
            raise ValueError(f"ColorJitter: {name} must lie in [-{bound}, {bound}], got {v}")
        return None if lo == hi == centre else (lo, hi)

    def __call__(self, x, rng=None):
        _rgb("ColorJitter", x)
        rng, xp, N = _rng(rng), get_array_module(x), x.shape[0]
        order = np.argsort(rng.random((N, 4)), axis=1)                     # a permutation of the 4 ops per image
        ranges = [self.brightness, self.contrast, self.saturation, self.hue]
        factors = [rng.uniform(*r, N) if r is not None else None for r in ranges]
        for step in range(4):
            for op, f in enumerate(factors):
                if f is None:
                    continue
                sel = xp.asarray(order[:, step] == op)[:, None, None, None]
                fx = xp.asarray(f, dtype=x.dtype)[:, None, None, None]
                x = xp.where(sel, self._apply(op, x, fx), x)
        return x

    @staticmethod
    def _apply(op, x, f):
        xp = get_array_module(x)
        if op == 0:
            return xp.clip(x * f, 0, 1)
        if op == 1:
            mean = _gray(x).mean(axis=(1, 2, 3), keepdims=True)
            return xp.clip(f * x + (1 - f) * mean, 0, 1)
        if op == 2:
            return xp.clip(f * x + (1 - f) * _gray(x), 0, 1)
        hsv = rgb_to_hsv(x)
        return hsv_to_rgb(xp.concatenate([(hsv[:, 0:1] + f) % 1.0, hsv[:, 1:]], axis=1))
