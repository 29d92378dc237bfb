"""The lectures' augmentations (minicnn/data/augment.py, exported by minicnn.data.transforms): values against
NumPy / colorsys references written per pixel from the papers' and torchvision's definitions, seeded
determinism, bad arguments; TenCrop and the test-time-augmentation option of the classification evaluation."""
import colorsys
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
from minicnn.data import transforms as T
from minicnn.data.color import hsv_to_rgb, rgb_to_hsv
from minicnn.tasks.classification import evaluate


def images(n=4, h=8, w=8, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 3, h, w)).astype(np.float32)


def rng(seed=0):
    return np.random.default_rng(seed)


def bilinear_ref(img, y, x):
    """One channel image read at (y, x), coordinates clamped to the border (a per-pixel loop reference)."""
    H, W = img.shape
    y, x = min(max(y, 0), H - 1), min(max(x, 0), W - 1)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
    dy, dx = y - y0, x - x0
    return (img[y0, x0] * (1 - dx) + img[y0, x1] * dx) * (1 - dy) + (img[y1, x0] * (1 - dx) + img[y1, x1] * dx) * dy


@pytest.mark.parametrize("t", [
    T.FancyPCA(np.ones(3), np.eye(3)), T.RandomResizedCrop(5), T.RandomRotation(30),
    T.RandomAffine(10, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=5), T.RandomHSV(),
    T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.RandomErasing(0.7, value="random")])
def test_seeded_and_batched(t):
    x = images(6)
    a, b, c = t(x, rng=rng(1)), t(x, rng=rng(1)), t(x, rng=rng(2))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape[:2] == (6, 3) and not np.array_equal(a, c)
    mc.manual_seed(4)                                                 # without rng: minicnn's generator
    d = t(x)
    mc.manual_seed(4)
    np.testing.assert_array_equal(t(x), d)
    with pytest.raises(ValueError, match=type(t).__name__):
        t(x[0])


def test_fancy_pca_fits_the_rgb_covariance_and_shifts_each_image_by_its_draw():
    x = images(5, seed=1)
    x[:, 1] = 0.5 * x[:, 0] + 0.3 * x[:, 1]                           # correlated channels
    t = T.FancyPCA.fit(x, alphastd=0.1)
    pix = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    centred = pix - pix.mean(axis=1, keepdims=True)
    cov = centred @ centred.T / (pix.shape[1] - 1)
    for lam, p in zip(t.eigval, t.eigvec.T):
        np.testing.assert_allclose(cov @ p, lam * p, atol=1e-10)     # eigenpairs of the covariance
    np.testing.assert_allclose(np.prod(t.eigval), np.linalg.det(cov), rtol=1e-8)
    y = t(x, rng=rng(3))
    alpha = rng(3).normal(0, 0.1, (5, 3))
    for n in range(5):
        shift = sum(alpha[n, i] * t.eigval[i] * t.eigvec[:, i] for i in range(3))   # [p1 p2 p3][a_i l_i]
        np.testing.assert_allclose(y[n], x[n] + shift[:, None, None].astype(np.float32), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="RGB"):
        T.FancyPCA.fit(x[:, :2])


def test_random_resized_crop_against_a_per_pixel_reference():
    x = images(3, 9, 12, seed=2)
    t = T.RandomResizedCrop((5, 7), scale=(0.2, 0.9), ratio=(0.5, 2.0))
    y = t(x, rng=rng(5))
    r = rng(5)
    for n in range(3):
        top, left, h, w = t.get_params(9, 12, r)
        assert 0.2 * 108 - 12 <= h * w <= 0.9 * 108 + 12 and top + h <= 9 and left + w <= 12
        for c in range(3):
            for i in range(5):
                for j in range(7):
                    ref = bilinear_ref(x[n, c], top + (i + 0.5) * h / 5 - 0.5, left + (j + 0.5) * w / 7 - 0.5)
                    assert abs(y[n, c, i, j] - ref) < 1e-5


def test_random_resized_crop_whole_image_is_identity_and_fallback():
    x = images(2, 6, 6)
    np.testing.assert_allclose(T.RandomResizedCrop(6, scale=(1, 1), ratio=(1, 1))(x, rng=rng()), x, atol=1e-6)
    # no crop of area 1.0 with ratio 4 fits a square: torchvision's fallback is the centre crop at ratio 2
    assert T.RandomResizedCrop(4, scale=(1, 1), ratio=(2, 4)).get_params(8, 8, rng()) == (2, 0, 4, 8)
    with pytest.raises(ValueError, match="RandomResizedCrop: scale"):
        T.RandomResizedCrop(4, scale=(0.9, 0.1))


def test_rotation_by_90_and_180_degrees_is_exact():
    x = images(3, 7, 7, seed=3)
    np.testing.assert_array_equal(T.RandomRotation((90, 90))(x, rng=rng()), np.rot90(x, 1, axes=(2, 3)))
    np.testing.assert_array_equal(T.RandomRotation((180, 180))(x, rng=rng()), x[:, :, ::-1, ::-1])


def test_rotation_against_a_per_pixel_reference():
    x = images(2, 9, 9, seed=4)
    y = T.RandomRotation((25, 25), interpolation="bilinear", fill=-1.0)(x, rng=rng())
    a = math.radians(25)
    for i in range(9):
        for j in range(9):
            # output pixel -> input: turn the offset from the centre by -25 degrees as seen on screen (y down)
            u, v = j - 4, i - 4
            src = complex(u, -v) * complex(math.cos(-a), math.sin(-a))
            sx, sy = src.real + 4, -src.imag + 4
            inside = -0.5 <= sx <= 8.5 and -0.5 <= sy <= 8.5
            for n in range(2):
                ref = bilinear_ref(x[n, 1], sy, sx) if inside else -1.0
                assert abs(y[n, 1, i, j] - ref) < 1e-5, (i, j)


def test_affine_translation_shifts_by_whole_pixels_and_scale_zooms_about_the_centre():
    x = images(20, 6, 10, seed=5)
    y = T.RandomAffine(0, translate=(0.2, 0.0))(x, rng=rng(1))       # |dx| <= 0.2 * 10 pixels
    shifts = []
    for n in range(20):
        for dx in range(-2, 3):
            ref = np.zeros_like(x[n])
            if dx >= 0:
                ref[..., dx:] = x[n][..., :10 - dx]
            else:
                ref[..., :dx] = x[n][..., -dx:]
            if np.array_equal(y[n], ref):
                shifts.append(dx)
    assert len(shifts) == 20 and min(shifts) < 0 < max(shifts)
    z = T.RandomAffine(0, scale=(2, 2), interpolation="bilinear")(x[:1], rng=rng())
    for i in range(6):
        for j in range(10):
            assert abs(z[0, 0, i, j] - bilinear_ref(x[0, 0], 2.5 + (i - 2.5) / 2, 4.5 + (j - 4.5) / 2)) < 1e-5
    with pytest.raises(ValueError, match="translate"):
        T.RandomAffine(0, translate=(1.5, 0))


def test_hsv_conversions_match_colorsys():
    x = images(2, 5, 5, seed=6)
    x[0, :, 0, 0] = [0.3, 0.3, 0.3]                                   # grey: hue 0, saturation 0
    hsv = rgb_to_hsv(x)
    for n, i, j in np.ndindex(2, 5, 5):
        np.testing.assert_allclose(hsv[n, :, i, j], colorsys.rgb_to_hsv(*x[n, :, i, j]), atol=1e-6)
    np.testing.assert_allclose(hsv_to_rgb(hsv), x, atol=1e-6)


def test_random_hsv_against_colorsys():
    x = images(3, 4, 4, seed=7)
    y = T.RandomHSV(hue=0.1, saturation=1.5, exposure=1.5)(x, rng=rng(2))
    r = rng(2)
    dh = r.uniform(-0.1, 0.1, 3)
    factors = []
    for s in (1.5, 1.5):                                     # Darknet's rand_scale: U(1, s), inverted half the time
        f = r.uniform(1, s, 3)
        factors.append(np.where(r.random(3) < 0.5, f, 1 / f))
    for n, i, j in np.ndindex(3, 4, 4):
        h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].astype(np.float64))
        ref = colorsys.hsv_to_rgb((h + dh[n]) % 1, min(s * factors[0][n], 1), min(v * factors[1][n], 1))
        np.testing.assert_allclose(y[n, :, i, j], ref, atol=1e-5)
    np.testing.assert_allclose(T.RandomHSV(0, 1, 1)(x, rng=rng()), x, atol=1e-6)


def gray(x):
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def test_color_jitter_each_adjustment_against_torchvision_formulas():
    x = images(2, 5, 5, seed=8)
    np.testing.assert_allclose(T.ColorJitter(brightness=(1.5, 1.5))(x, rng=rng()), np.clip(1.5 * x, 0, 1),
                               atol=1e-6)
    mean = gray(x).mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(T.ColorJitter(contrast=(0.5, 0.5))(x, rng=rng()),
                               np.clip(0.5 * x + 0.5 * mean, 0, 1), atol=1e-6)
    np.testing.assert_allclose(T.ColorJitter(saturation=(0.0, 0.0))(x, rng=rng()),
                               np.repeat(gray(x), 3, axis=1), atol=1e-6)
    y = T.ColorJitter(hue=(0.25, 0.25))(x, rng=rng())
    for n, i, j in np.ndindex(2, 5, 5):
        h, s, v = colorsys.rgb_to_hsv(*x[n, :, i, j].astype(np.float64))
        np.testing.assert_allclose(y[n, :, i, j], colorsys.hsv_to_rgb((h + 0.25) % 1, s, v), atol=1e-5)
    np.testing.assert_array_equal(T.ColorJitter()(x, rng=rng()), x)   # all zero: nothing to do
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)


def test_color_jitter_order_is_random_per_image():
    x = images(16, 3, 3, seed=9)
    y = T.ColorJitter(brightness=(1.8, 1.8), contrast=(0.3, 0.3))(x, rng=rng(3))
    contrast = lambda a: np.clip(0.3 * a + 0.7 * gray(a).mean(axis=(1, 2, 3), keepdims=True), 0, 1)  # noqa: E731
    bright_first, contrast_first = contrast(np.clip(1.8 * x, 0, 1)), np.clip(1.8 * contrast(x), 0, 1)
    which = [np.allclose(y[n], bright_first[n], atol=1e-6) for n in range(16)]
    other = [np.allclose(y[n], contrast_first[n], atol=1e-6) for n in range(16)]
    assert all(a != b for a, b in zip(which, other)) and 0 < sum(which) < 16


def test_random_erasing_sets_one_rectangle_per_image():
    x = images(8, 10, 12, seed=10)
    y = T.RandomErasing(p=1.0, scale=(0.1, 0.3), ratio=(0.5, 2.0), value=(0.0, -1.0, -2.0))(x, rng=rng(1))
    for n in range(8):
        erased = y[n, 0] == 0
        rows, cols = np.flatnonzero(erased.any(1)), np.flatnonzero(erased.any(0))
        h, w = len(rows), len(cols)
        assert erased.sum() == h * w and np.ptp(rows) == h - 1 and np.ptp(cols) == w - 1   # one solid rectangle
        assert 0.1 * 120 - 12 <= h * w <= 0.3 * 120 + 12
        np.testing.assert_array_equal(y[n, 1][erased], -1.0)
        np.testing.assert_array_equal(y[n, 2][erased], -2.0)
        np.testing.assert_array_equal(y[n][:, ~erased], x[n][:, ~erased])
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(x, rng=rng()), x)
    with pytest.raises(ValueError, match="RandomErasing: value"):
        T.RandomErasing(p=1.0, value="noise")(x, rng=rng())


def test_ten_crop_and_five_crop():
    x = images(2, 7, 9, seed=11)
    y = T.TenCrop((4, 5))(x)
    assert y.shape == (20, 3, 4, 5)
    corners = [(0, 0), (0, 4), (3, 0), (3, 4), (2, 2)]                # tl, tr, bl, br, centre (rounded)
    for n in range(2):
        for k, (i, j) in enumerate(corners):
            np.testing.assert_array_equal(y[10 * n + k], x[n, :, i:i + 4, j:j + 5])
            np.testing.assert_array_equal(y[10 * n + 5 + k], x[n, :, :, ::-1][:, i:i + 4, j:j + 5])
    np.testing.assert_array_equal(T.FiveCrop((4, 5))(x).reshape(2, 5, 3, 4, 5), y.reshape(2, 10, 3, 4, 5)[:, :5])
    v = T.TenCrop(4, vertical_flip=True)(x)
    np.testing.assert_array_equal(v[5], x[0, :, ::-1][:, 0:4, 0:4])
    np.testing.assert_allclose(T.average_crops(np.arange(40.0).reshape(20, 2), 10),
                               [[9.0, 10.0], [29.0, 30.0]])
    with pytest.raises(ValueError, match="exceeds"):
        T.TenCrop(8)(x)


def test_evaluate_with_ten_crop_averages_the_softmax_of_the_crops():
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x, y = images(3, 8, 8, seed=12), np.array([0, 3, 1])
    loss, preds, targets = evaluate(model, [(mc.tensor(x), mc.tensor(y))], tta=T.TenCrop(6))
    with mc.no_grad():
        logits = model(mc.tensor(T.TenCrop(6)(x))).numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).reshape(3, 10, 4).mean(1)       # AlexNet: average the 10 softmaxes
    np.testing.assert_array_equal(preds, p.argmax(1))
    np.testing.assert_allclose(loss, -np.log(p[np.arange(3), y]).mean(), rtol=1e-5)
    np.testing.assert_array_equal(targets, y)
