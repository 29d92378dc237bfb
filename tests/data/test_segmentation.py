"""MNISTSegmentation: images are sums of real MNIST digits, masks label exactly their ink, and everything is a
pure function of (seed, split, index)."""
import numpy as np
import pytest

from minicnn.data import MNIST, DataLoader, MNISTSegmentation
from minicnn.data.segmentation import INK


@pytest.fixture(scope="module")
def test_set():
    return MNISTSegmentation(train=False, size=40)


def test_shapes_dtypes_and_range(test_set):
    x, m = test_set[3]
    assert x.shape == (1, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert m.shape == (64, 64) and m.dtype == np.int64 and 0 <= m.min() and m.max() <= 10
    assert len(test_set) == 40 and len(MNISTSegmentation.classes) == 11


def test_images_and_masks_are_rebuilt_from_the_source_digits(test_set):
    source = MNIST(train=False)
    for i in range(len(test_set)):
        canvas, mask, placed = test_set.compose(i)
        assert 1 <= len(placed) <= 3
        image = np.zeros((64, 64), np.int64)
        want = np.zeros((64, 64), np.int64)
        for j, digit, top, left in placed:
            assert digit == source.targets[j]                      # test digits for the test set
            d = source.data[j, 0].astype(np.int64)
            assert not ((image[top:top + 28, left:left + 28] > 0) & (d > 0)).any(), "digits overlap"
            image[top:top + 28, left:left + 28] += d
            want[top:top + 28, left:left + 28][d >= INK] = 1 + digit
        np.testing.assert_array_equal(canvas, image)
        np.testing.assert_array_equal(mask, want)
        x, m = test_set[i]
        np.testing.assert_allclose(x[0], image / 255, rtol=1e-6)
        np.testing.assert_array_equal(m, want)


def test_deterministic_and_seeded():
    a, b = MNISTSegmentation(train=False, size=8), MNISTSegmentation(train=False, size=8)
    xa, ma = a.get_batch(np.arange(8))
    xb, mb = b.get_batch(np.arange(8)[::-1])                       # order of asking does not matter
    np.testing.assert_array_equal(xa, xb[::-1])
    np.testing.assert_array_equal(ma, mb[::-1])
    other = MNISTSegmentation(train=False, size=8, seed=1).get_batch(np.arange(8))[0]
    assert not np.array_equal(xa, other)


def test_train_split_uses_training_digits():
    ds = MNISTSegmentation(train=True, size=5, max_digits=1, image_size=28)
    source = MNIST(train=True)
    for i in range(5):
        canvas, mask, [(j, digit, top, left)] = ds.compose(i)
        assert (top, left) == (0, 0)
        np.testing.assert_array_equal(canvas, source.data[j, 0])
        assert set(np.unique(mask)) <= {0, 1 + digit}


def test_loader_batches_label_maps(test_set):
    x, y = next(iter(DataLoader(test_set, 4)))
    assert x.shape == (4, 1, 64, 64) and y.shape == (4, 64, 64) and str(y.dtype) == "int64"


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size must be >= 28"):
        MNISTSegmentation(image_size=20)
    with pytest.raises(ValueError, match="max_digits must be >= 1"):
        MNISTSegmentation(max_digits=0)
    with pytest.raises(IndexError, match="index 5 out of range for 5 images"):
        MNISTSegmentation(train=False, size=5)[5]
