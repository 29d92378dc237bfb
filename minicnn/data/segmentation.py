"""``MNISTSegmentation``: real MNIST digits pasted onto a black canvas, with a per-pixel label mask.

Image ``i`` is a pure function of ``(seed, train, i)``: a generator ``default_rng([seed, train, i])`` draws how
many digits (1 to ``max_digits``), which source digits (training digits for the training set, test digits for
the test set) and where.  A digit is placed only where its non-zero pixels touch no other digit's (up to
``TRIES`` positions are tried, then it is left out), so every pixel belongs to at most one digit and the canvas
is the plain sum of the pasted digits.  The mask is 0 (background) everywhere except on a digit's ink, the
pixels of intensity >= ``INK`` (128/255), where it is 1 + that digit.  Nothing is stored: images are drawn
when asked for, so the set can be as large as wanted.
"""
import numpy as np

from minicnn.data.mnist import MNIST

__all__ = ["MNISTSegmentation"]

TRIES = 20          # positions tried per digit before it is left out
INK = 128           # a digit's pixel >= INK (of 255) is ink: labelled 1 + digit in the mask


class MNISTSegmentation:
    """``ds[i] -> (image (1, H, W) float32 in [0, 1], mask (H, W) int64)``, H = W = ``image_size``; mask 0 =
    background, 1 + d on the ink of digit d (11 classes).  ``size``: number of images (default: one per source
    digit, 60,000 / 10,000).  ``root``: MNIST's folder as for ``MNIST`` (None: the bundled copy)."""
    classes = ["background"] + [f"digit {d}" for d in range(10)]

    def __init__(self, root=None, train=True, size=None, image_size=64, max_digits=3, seed=0):
        if image_size < 28:
            raise ValueError(f"MNISTSegmentation: image_size must be >= 28 (one MNIST digit), got {image_size}")
        if max_digits < 1:
            raise ValueError(f"MNISTSegmentation: max_digits must be >= 1, got {max_digits}")
        source = MNIST(root, train=train)
        self.digits, self.labels = source.data[:, 0], source.targets         # (M, 28, 28) uint8, (M,)
        self.train, self.image_size = bool(train), int(image_size)
        self.max_digits, self.seed = int(max_digits), int(seed)
        self.size = len(self.digits) if size is None else int(size)
        if self.size < 0:
            raise ValueError(f"MNISTSegmentation: size must be >= 0, got {size}")

    def __len__(self):
        return self.size

    def compose(self, i):
        """(canvas (S, S) uint8, mask (S, S) int64, placed [(source index, digit, top, left), ...]) of image i."""
        S = self.image_size
        rng = np.random.default_rng([self.seed, int(self.train), int(i)])
        canvas, mask, placed = np.zeros((S, S), np.uint8), np.zeros((S, S), np.int64), []
        for _ in range(int(rng.integers(1, self.max_digits + 1))):
            j = int(rng.integers(len(self.digits)))
            digit = self.digits[j]
            for _ in range(TRIES):
                top, left = (int(v) for v in rng.integers(0, S - 28 + 1, size=2))
                window = canvas[top:top + 28, left:left + 28]
                if not (window[digit > 0] > 0).any():                      # touches no other digit's pixels
                    window += digit                                        # (a view: pastes into the canvas)
                    mask[top:top + 28, left:left + 28][digit >= INK] = 1 + int(self.labels[j])
                    placed.append((j, int(self.labels[j]), top, left))
                    break
        return canvas, mask, placed

    def get_batch(self, indices, rng=None):
        """float32 images (B, 1, S, S) in [0, 1] and int64 masks (B, S, S) for the int array ``indices``
        (``rng`` is unused: the images are fixed by ``seed``)."""
        images, masks = [], []
        for i in np.asarray(indices, np.int64):
            if not 0 <= i < self.size:
                raise IndexError(f"MNISTSegmentation: index {i} out of range for {self.size} images")
            canvas, mask, _ = self.compose(i)
            images.append(canvas)
            masks.append(mask)
        S = self.image_size
        if not images:
            return np.zeros((0, 1, S, S), np.float32), np.zeros((0, S, S), np.int64)
        return np.stack(images)[:, None].astype(np.float32) / np.float32(255), np.stack(masks)

    def __getitem__(self, i):
        if not -self.size <= i < self.size:
            raise IndexError(f"MNISTSegmentation: index {i} out of range for {self.size} images")
        x, m = self.get_batch(np.array([i % self.size]))
        return x[0], m[0]

    def __repr__(self):
        return (f"MNISTSegmentation({self.size} {'training' if self.train else 'test'} images of "
                f"{self.image_size}x{self.image_size}, up to {self.max_digits} digits, seed {self.seed})")
