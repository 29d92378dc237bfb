"""FCN-32s/16s/8s: bilinear upsampling weights, freezing, zero-initialised skips, shapes, keys, gradients,
one-batch overfit."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import optim
from minicnn.data import MNISTSegmentation
from minicnn.models import FCN, fcn8s, fcn16s, fcn32s, get_model
from minicnn.models.fcn import bilinear_kernel
from model_checks import check_weight_grads, n_params, overfit_one_batch


@pytest.fixture
def one_thread():
    restore = mc.set_num_threads(1)
    yield
    restore()


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_kernel_interpolates_a_plane(factor):
    """Upsampling a linear function of (i, j) gives the same function at the output pixels' centres in input
    coordinates, (o + 0.5) / f - 0.5, away from the border (where zero padding enters)."""
    i, j = np.mgrid[0:6, 0:5].astype(np.float64)
    plane = 0.7 * i - 0.3 * j + 2.0
    x = mc.tensor(np.stack([plane, 2 * plane])[None], dtype=np.float64)          # two channels, kept apart
    w = mc.tensor(bilinear_kernel(2, 2 * factor), dtype=np.float64)
    y = F.conv_transpose2d(x, w, stride=factor, padding=factor // 2).numpy()
    assert y.shape == (1, 2, 6 * factor, 5 * factor)
    oi, oj = np.mgrid[0:6 * factor, 0:5 * factor]
    want = 0.7 * ((oi + 0.5) / factor - 0.5) - 0.3 * ((oj + 0.5) / factor - 0.5) + 2.0
    inner = (slice(factor, -factor), slice(factor, -factor))
    np.testing.assert_allclose(y[0, 0][inner], want[inner], rtol=1e-12)
    np.testing.assert_allclose(y[0, 1][inner], 2 * want[inner], rtol=1e-12)


def test_bilinear_kernel_values():
    # factor 2: the 1-d filter is [1, 3, 3, 1] / 4 and the kernel its outer product; row 0 = 1/4 of the filter
    np.testing.assert_allclose(bilinear_kernel(1, 4)[0, 0, 0], [0.0625, 0.1875, 0.1875, 0.0625])
    assert (bilinear_kernel(3, 4)[0, 1] == 0).all()


def test_shapes_keys_and_counts():
    x = mc.tensor(np.random.rand(2, 1, 64, 32))
    for f in (fcn32s, fcn16s, fcn8s):
        assert f()(x).shape == (2, 11, 64, 32)
    m32, m16, m8 = fcn32s(), fcn16s(), fcn8s()
    assert n_params(m16) - n_params(m32) == (128 * 11 + 11) + 11 * 11 * 16 + 11 * 11 * 32 * 32 - 11 * 11 * 64 * 64
    assert n_params(m8) - n_params(m16) == (64 * 11 + 11) + 11 * 11 * 16 + 11 * 11 * 16 * 16 - 11 * 11 * 32 * 32
    keys = list(m8.state_dict())
    assert keys[0] == "features.0.weight" and "fc6.weight" in keys and keys[-1] == "upscore.weight"
    assert {"score_pool4.weight", "score_pool3.weight", "upscore2.weight", "upscore_pool4.weight"} <= set(keys)
    assert get_model("fcn8s").state_dict().keys() == m8.state_dict().keys()
    with pytest.raises(ValueError, match="FCN: input 48x64 must be divisible by 32"):
        m8(mc.tensor(np.zeros((1, 1, 48, 64))))


def test_final_upsampling_frozen_and_skips_start_at_zero():
    mc.manual_seed(0)
    m8 = fcn8s()
    assert not m8.upscore.weight.requires_grad and m8.upscore2.weight.requires_grad
    assert all(not p.requires_grad for p in [fcn8s(freeze_upsampling=True).upscore2.weight])
    assert fcn8s(freeze_upsampling=False).upscore.weight.requires_grad
    # the skip scores start at zero (Long et al. §4.2), so a fresh FCN-8s is score_fr upsampled 2x, 2x, 8x
    x = mc.tensor(np.random.default_rng(0).random((2, 1, 64, 64)))
    m8.eval()
    with mc.no_grad():
        h = m8.normalize(x)
        for layer in m8.features:
            h = layer(h)
        score = m8.score_fr(F.relu(m8.fc7(F.relu(m8.fc6(h)))))
        want = m8.upscore(m8.upscore_pool4(m8.upscore2(score))).numpy()
        np.testing.assert_allclose(m8(x).numpy(), want, rtol=1e-5, atol=1e-6)
    assert float(np.abs(want).max()) > 0


def test_frozen_weights_do_not_move(one_thread):
    m = fcn32s()
    before = m.upscore.weight.numpy().copy()
    opt = optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    ds = MNISTSegmentation(train=True, size=2, image_size=32, max_digits=1)
    x, y = ds.get_batch(np.arange(2))
    F.cross_entropy(m(mc.tensor(x)), mc.tensor(y)).backward()
    assert m.upscore.weight.grad is None
    opt.step()
    np.testing.assert_array_equal(m.upscore.weight.numpy(), before)


def test_weight_gradients_float64(one_thread):
    m = fcn8s(num_classes=3)
    x = np.random.default_rng(0).random((2, 1, 32, 32))
    m.eval()                                              # dropout off
    names = ["features.0.weight", "score_pool3.weight", "upscore2.weight"]
    assert check_weight_grads(m, x, names=names, per_param=1) == 3


def test_overfits_one_batch(one_thread):
    ds = MNISTSegmentation(train=True, size=1, image_size=64, max_digits=1)
    x, y = ds.get_batch(np.arange(1))
    first, last, _ = overfit_one_batch(FCN(8, dropout=0.0), x, y, steps=30, lr=1e-3)
    # FCN-8s predicts at stride 8 and upsamples bilinearly: it cannot trace one image's strokes exactly, but its
    # loss on the batch must collapse
    assert last < 0.05 * first


def test_load_vgg16_classifier_reshapes_the_fully_connected_layers():
    """The copy works for any backbone whose fc6/fc7 match the classifier's sizes (here the small one)."""
    from minicnn.models.fcn import load_vgg16_classifier
    m = fcn32s()
    rng = np.random.default_rng(0)
    vgg = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in m.state_dict().items()
           if k.startswith("features.") and v.dtype.kind == "f"}
    vgg["classifier.0.weight"] = rng.standard_normal((256, 128 * 3 * 3)).astype(np.float32)
    vgg["classifier.0.bias"] = rng.standard_normal(256).astype(np.float32)
    vgg["classifier.3.weight"] = rng.standard_normal((256, 256)).astype(np.float32)
    vgg["classifier.3.bias"] = rng.standard_normal(256).astype(np.float32)
    load_vgg16_classifier(m, vgg)
    np.testing.assert_array_equal(m.fc6.weight.numpy().reshape(256, -1), vgg["classifier.0.weight"])
    np.testing.assert_array_equal(m.fc7.weight.numpy()[:, :, 0, 0], vgg["classifier.3.weight"])
    np.testing.assert_array_equal(m.features[0].weight.numpy(), vgg["features.0.weight"])
