"""Batch transforms against per-image loops; seeding."""
import numpy as np
import pytest

from minicnn.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


def batch(n=6, c=2, h=5, w=7, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def test_normalize_per_channel():
    x = batch()
    y = Normalize([1.0, -2.0], [0.5, 4.0])(x)
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 1) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], (x[:, 1] + 2) / 4, rtol=1e-6)
    assert y.dtype == np.float32
    np.testing.assert_allclose(Normalize(0.5, 2)(x), (x - 0.5) / 2, rtol=1e-6)   # one value for all channels
    with pytest.raises(ValueError, match=r"Normalize: 3 means for a batch with 2 channels \(shape \(6, 2, 5, 7\)\)"):
        Normalize([0, 0, 0], [1, 1, 1])(x)
    # one (C, H, W) image is normalised as torchvision's Normalize does (the same numbers as in the batch)
    np.testing.assert_allclose(Normalize([1.0, -2.0], [0.5, 4.0])(x[0]), y[0], rtol=1e-6)


@pytest.mark.parametrize("size, padding", [(5, 0), (4, 1), (3, 2), ((2, 6), 0)])
def test_random_crop_cuts_windows_of_the_padded_images(size, padding):
    x = batch()
    y = RandomCrop(size, padding)(x, rng=np.random.default_rng(1))
    TH, TW = (size, size) if isinstance(size, int) else size
    assert y.shape == (6, 2, TH, TW)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    corners = set()
    for n in range(len(x)):                            # each output is some window of its own padded image
        windows = [(i, j) for i in range(padded.shape[2] - TH + 1) for j in range(padded.shape[3] - TW + 1)
                   if np.array_equal(padded[n, :, i:i + TH, j:j + TW], y[n])]
        assert windows, f"image {n} is not a crop of its input"
        corners.add(windows[0])
    assert len(corners) > 1 or (TH, TW) == (5 + 2 * padding, 7 + 2 * padding)   # places drawn per image


def test_random_crop_full_size_is_identity_and_seeded():
    x = batch()
    np.testing.assert_array_equal(RandomCrop((5, 7))(x, rng=np.random.default_rng(0)), x)
    crop = RandomCrop(4, padding=2)
    a = crop(x, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, crop(x, rng=np.random.default_rng(3)))
    assert not np.array_equal(a, crop(x, rng=np.random.default_rng(4)))
    with pytest.raises(ValueError, match=r"RandomCrop: size \(10, 10\) exceeds the padded input 7x9"):
        RandomCrop(10, padding=1)(x)


def test_random_horizontal_flip():
    x = batch(n=40)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0)(x), x)
    y = RandomHorizontalFlip()(x, rng=np.random.default_rng(0))
    flipped = [np.array_equal(y[n], x[n, :, :, ::-1]) for n in range(40)]
    kept = [np.array_equal(y[n], x[n]) for n in range(40)]
    assert all(f != k for f, k in zip(flipped, kept)) and 5 < sum(flipped) < 35
    np.testing.assert_array_equal(y, RandomHorizontalFlip()(x, rng=np.random.default_rng(0)))


def test_compose_applies_in_order_with_one_generator():
    x = batch()
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip(), Normalize(1.0, 2.0)])
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    expected = Normalize(1.0, 2.0)(RandomHorizontalFlip()(RandomCrop(4, padding=1)(x, rng_b), rng_b))
    np.testing.assert_array_equal(t(x, rng=rng_a), expected)
    np.testing.assert_allclose(Compose([lambda b: b * 2, Normalize(0, 2)])(x), x, rtol=1e-6)   # plain callables
