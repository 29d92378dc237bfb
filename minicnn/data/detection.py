"""``MNISTDetection``: real MNIST digits pasted onto a black canvas, with a tight box and a label per digit.

Image ``i`` of a split is a pure function of ``(seed, train, i)``: its generator is
``default_rng([seed, train, i])``, which draws the number of digits K (uniform in 0..max_digits), then for each
digit a source image of the split's MNIST digits, an ink height (uniform in ``digit_height``, 14-40 px) and
a position.  The digit is cropped to its ink, resized bilinearly to that height (aspect kept) and pasted (pixel
maximum) where its box overlaps each box already placed by at most ``max_overlap`` of the smaller one's area;
a digit that finds no such place in 20 tries is left out.  Boxes are (x1, y1, x2, y2) pixels with x2 = last ink column + 1 (torchvision's
convention: width = x2 - x1), tight around the pasted digit's non-zero pixels.  Nothing is stored: images
are drawn when asked for, so any ``size`` costs no memory.
"""
import numpy as np

from minicnn.data.mnist import MNIST

__all__ = ["MNISTDetection", "detection_collate", "render_digit"]


def _ink_box(img):
    """(y1, x1, y2, x2) of the non-zero pixels of a 2-d array (exclusive ends); None when it is all zero."""
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    if rows.size == 0:
        return None
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _resize_bilinear(img, oh, ow):
    """Bilinear resize of a float 2-d array to (oh, ow), sampling pixel centres (align_corners=False)."""
    H, W = img.shape
    ys = np.clip((np.arange(oh) + 0.5) * H / oh - 0.5, 0, H - 1)
    xs = np.clip((np.arange(ow) + 0.5) * W / ow - 0.5, 0, W - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def render_digit(digit, height):
    """A 28 x 28 uint8 MNIST digit cropped to its ink and resized to ``height`` rows (width in proportion, at
    least 1) -> float32 patch in [0, 1] whose ink reaches all four edges."""
    y1, x1, y2, x2 = _ink_box(digit)
    crop = digit[y1:y2, x1:x2].astype(np.float32) / 255
    width = max(1, int(round(crop.shape[1] * height / crop.shape[0])))
    patch = _resize_bilinear(crop, height, width).astype(np.float32)
    patch[patch < 1 / 255] = 0                    # no faint halo: the box stays tight around visible ink
    b = _ink_box(patch)
    return patch[b[0]:b[2], b[1]:b[3]]


def _overlap(box, boxes):
    """Intersection of ``box`` with each of ``boxes`` over the smaller of the two areas (1: one inside the other)."""
    if not boxes:
        return np.zeros(0)
    b = np.asarray(boxes, np.float64)
    w = np.clip(np.minimum(box[2], b[:, 2]) - np.maximum(box[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], b[:, 3]) - np.maximum(box[1], b[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / np.minimum(area, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))


class MNISTDetection:
    """Detection images of real MNIST digits: ``ds[i]`` -> (image float32 (1, H, W) in [0, 1], target
    ``{"boxes": (K, 4) float32 x1, y1, x2, y2 pixels, "labels": (K,) int64}``), K in 0..max_digits.

    The train split pastes MNIST training digits, the test split test digits (``root=None``: the bundled files).
    ``size`` images (default 10,000 train, 1,000 test) of ``image_size`` x ``image_size`` pixels; digit ink
    heights in ``digit_height`` = (min, max) px."""
    classes = MNIST.classes

    def __init__(self, root=None, train=True, size=None, image_size=96, max_digits=4, seed=0,
                 digit_height=(14, 40), max_overlap=0.1):
        lo, hi = digit_height
        if not 1 <= lo <= hi <= image_size:
            raise ValueError(f"MNISTDetection: digit_height {digit_height} must satisfy 1 <= min <= max <= "
                             f"image_size {image_size}")
        if max_digits < 0:
            raise ValueError(f"MNISTDetection: max_digits must be >= 0, got {max_digits}")
        self.digits = MNIST(root, train=train)
        self.train, self.size = train, int(size if size is not None else (10000 if train else 1000))
        self.image_size, self.max_digits, self.seed = int(image_size), int(max_digits), int(seed)
        self.digit_height, self.max_overlap = (int(lo), int(hi)), float(max_overlap)

    def __len__(self):
        return self.size

    def layout(self, i):
        """The digits of image ``i``: a list of (MNIST index, ink height, x, y) of each pasted patch's top left."""
        if not -self.size <= i < self.size:
            raise IndexError(f"MNISTDetection: index {i} out of range for {self.size} images")
        rng = np.random.default_rng([self.seed, int(self.train), int(i) % self.size])
        S, placed, boxes = self.image_size, [], []
        for _ in range(int(rng.integers(0, self.max_digits + 1))):
            src = int(rng.integers(len(self.digits.data)))
            height = int(rng.integers(self.digit_height[0], self.digit_height[1] + 1))
            h, w = render_digit(self.digits.data[src, 0], height).shape
            for _ in range(20):
                x, y = int(rng.integers(0, S - w + 1)), int(rng.integers(0, S - h + 1))
                box = (x, y, x + w, y + h)
                if (_overlap(box, boxes) <= self.max_overlap).all():
                    placed.append((src, height, x, y))
                    boxes.append(box)
                    break
        return placed

    def __getitem__(self, i):
        S = self.image_size
        image, boxes, labels = np.zeros((S, S), np.float32), [], []
        for src, height, x, y in self.layout(i):
            patch = render_digit(self.digits.data[src, 0], height)
            h, w = patch.shape
            np.maximum(image[y:y + h, x:x + w], patch, out=image[y:y + h, x:x + w])
            boxes.append((x, y, x + w, y + h))
            labels.append(int(self.digits.targets[src]))
        return image[None], {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                             "labels": np.asarray(labels, np.int64)}

    collate = staticmethod(lambda samples: detection_collate(samples))

    def __repr__(self):
        return (f"MNISTDetection({'train' if self.train else 'test'}, {self.size} images of "
                f"{self.image_size}x{self.image_size}, <= {self.max_digits} digits, seed {self.seed})")


def detection_collate(samples):
    """DataLoader ``collate_fn`` for detection: [(image (C, H, W), target dict)] -> (images (B, C, H, W)
    float32, list of B target dicts), the targets kept as they are (their K differ)."""
    return np.stack([np.asarray(s[0], np.float32) for s in samples]), [s[1] for s in samples]
