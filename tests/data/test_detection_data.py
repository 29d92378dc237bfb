"""MNISTDetection: deterministic images of real digits, tight ink boxes, the right split, empty images, collate."""
import numpy as np
import pytest

from minicnn.data import MNIST, DataLoader, MNISTDetection, detection_collate
from minicnn.data.detection import render_digit


@pytest.fixture(scope="module")
def test_set():
    return MNISTDetection(train=False, size=40)


def test_items_have_torchvision_format_and_are_deterministic(test_set):
    again = MNISTDetection(train=False, size=40)
    other_seed = MNISTDetection(train=False, size=40, seed=1)
    assert len(test_set) == 40 and len(MNISTDetection(train=False)) == 1000 and len(MNISTDetection()) == 10000
    differ = 0
    for i in range(len(test_set)):
        image, target = test_set[i]
        assert image.shape == (1, 96, 96) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
        assert set(target) == {"boxes", "labels"} and target["boxes"].dtype == np.float32
        K = len(target["labels"])
        assert target["boxes"].shape == (K, 4) and target["labels"].dtype == np.int64 and K <= 4
        image2, target2 = again[i]
        assert np.array_equal(image, image2) and np.array_equal(target["boxes"], target2["boxes"])
        differ += not np.array_equal(image, other_seed[i][0])
    assert differ > 30                                   # another seed draws other images


def test_boxes_are_tight_around_the_ink_and_cover_it(test_set):
    for i in range(len(test_set)):
        image, target = test_set[i]
        ink = image[0] > 0
        covered = np.zeros_like(ink)
        for x1, y1, x2, y2 in target["boxes"].astype(int):
            assert 14 <= y2 - y1 <= 40 and x2 > x1
            covered[y1:y2, x1:x2] = True
            box = ink[y1:y2, x1:x2]                      # ink on each of the box's four edges
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
        assert not (ink & ~covered).any()                # and none outside the boxes


def test_digits_come_from_the_split_and_keep_their_labels(test_set):
    train_digits, test_digits = MNIST(train=True), MNIST(train=False)
    train_set = MNISTDetection(train=True, size=40)
    for ds, digits in ((test_set, test_digits), (train_set, train_digits)):
        for i in range(len(ds)):
            image, target = ds[i]
            layout = ds.layout(i)
            assert [int(digits.targets[src]) for src, *_ in layout] == target["labels"].tolist()
            for (src, height, x, y), box in zip(layout, target["boxes"]):
                patch = render_digit(digits.data[src, 0], height)
                assert tuple(box) == (x, y, x + patch.shape[1], y + patch.shape[0])
                region = image[0, y:y + patch.shape[0], x:x + patch.shape[1]]
                assert (region >= patch).all()                      # pasted by pixel maximum
                if len(layout) == 1:
                    np.testing.assert_array_equal(region, patch)


def test_render_digit_keeps_aspect_and_height():
    digit = MNIST(train=False).data[0, 0]                      # a 7
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    h, w = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    patch = render_digit(digit, 40)
    assert patch.shape[0] == 40 and abs(patch.shape[1] - w * 40 / h) <= 2 and patch.max() <= 1
    assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()


def test_images_without_digits_and_collate():
    ds = MNISTDetection(train=False, size=30, max_digits=0)
    image, target = ds[5]
    assert not image.any() and target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    full = MNISTDetection(train=False, size=30)
    counts = [len(full[i][1]["labels"]) for i in range(30)]
    assert 0 in counts and max(counts) == 4                    # K = 0 happens in the default set too
    images, targets = detection_collate([full[0], full[1], ds[0]])
    assert images.shape == (3, 1, 96, 96) and isinstance(targets, list) and targets[2]["labels"].size == 0
    x, y = next(iter(DataLoader(full, 4, collate_fn=MNISTDetection.collate)))
    assert x.shape == (4, 1, 96, 96) and [len(t["labels"]) for t in y] == counts[:4]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"MNISTDetection: digit_height \(14, 200\) must satisfy"):
        MNISTDetection(size=1, digit_height=(14, 200))
    with pytest.raises(IndexError, match="index 3 out of range for 3 images"):
        MNISTDetection(train=False, size=3)[3]
