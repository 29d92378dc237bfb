"""VGG configurations A-E (Simonyan & Zisserman 2015, Table 1): counts equal torchvision's and the table's,
keys are torchvision's, VGG-16 costs about 15.5 x 10^9 multiply-adds at 224 x 224."""
import functools

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import vgg11, vgg16, vgg16_bn, vgg16_c, vgg19
from minicnn.models.vgg import cfgs, make_layers
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, check_weight_grads, n_params

FC = (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def by_hand(cfg, batch_norm=False):
    """Sum of k*k*C_in*C_out + C_out over Table 1's convolutions (+ 2 C_out per BatchNorm), plus the head."""
    total, c = 0, 3
    for v in cfgs[cfg]:
        if v in ("M", "LRN"):
            continue
        out, k = v if isinstance(v, tuple) else (v, 3)
        total += k * k * c * out + out + (2 * out if batch_norm else 0)
        c = out
    return total + FC


@pytest.fixture(autouse=True, scope="module")
def _free_models():
    yield
    built.cache_clear()                   # the big models are shared by this file's tests only


@functools.lru_cache(maxsize=None)
def built(factory):
    return factory()


@pytest.mark.parametrize("factory, cfg, torchvision", [
    (vgg11, "A", 132_863_336), (vgg16, "D", 138_357_544), (vgg19, "E", 143_667_240)])
def test_vgg_parameter_counts_equal_torchvision(factory, cfg, torchvision):
    assert n_params(built(factory)) == by_hand(cfg) == torchvision


@pytest.mark.parametrize("cfg, batch_norm, millions", [("A", False, 133), ("B", False, 133), ("C", False, 134),
                                                      ("D", False, 138), ("E", False, 144), ("B", True, 133)])
def test_every_configuration_has_table2_size(cfg, batch_norm, millions):
    """Table 2's parameter counts in millions; the features alone (the head is the same for all)."""
    count = n_params(make_layers(cfgs[cfg], batch_norm)) + FC
    assert count == by_hand(cfg, batch_norm) and round(count / 1e6) == millions


def test_vgg16_keys_and_shapes_are_torchvision():
    sd = built(vgg16).state_dict()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert list(sd) == [f"features.{i}.{k}" for i in convs for k in ("weight", "bias")] + \
        [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]
    assert sd["features.28.weight"].shape == (512, 512, 3, 3) and sd["classifier.0.weight"].shape == (4096, 25088)


def test_vgg16_bn_keys_are_torchvision():
    m = vgg16_bn()
    sd = m.state_dict()
    convs = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    expected = []
    for i in convs:
        expected += [f"features.{i}.weight", f"features.{i}.bias"] + bn_keys(f"features.{i + 1}")
    assert list(sd) == expected + [f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")]
    assert n_params(m) == by_hand("D", batch_norm=True) == 138_365_992


def test_configuration_c_has_1x1_convs_and_a_lrn_has_lrn():
    m = vgg16_c(num_classes=10)
    kernels = [tuple(c.weight.shape[2:]) for c in m.features if isinstance(c, nn.Conv2d)]
    assert kernels.count((1, 1)) == 3 and kernels[6] == kernels[9] == kernels[12] == (1, 1)
    assert m(mc.tensor(np.zeros((1, 3, 32, 32)))).shape == (1, 10)
    assert isinstance(make_layers(cfgs["A-LRN"])[2], nn.LocalResponseNorm)


def test_vgg16_at_224_costs_15_5_gigamultiply_adds():
    s = summary(built(vgg16), (3, 224, 224))
    assert s.rows[-1].output_shape == (1, 1000)
    assert s.total_params == 138_357_544
    assert abs(s.total_mult_adds / 15.5e9 - 1) < 0.01, s.total_mult_adds


def test_vgg_small_input_and_no_graph():
    m = built(vgg11).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    assert m(mc.tensor(x)).shape == (2, 1000)
    assert_no_graph(m, x)


def test_vgg_feature_stack_weight_gradients():
    """Configuration A with BatchNorm and VGG's 7 x 7 pooling, a 3-way linear head in place of the two 4096-wide
    layers (AlexNet's test checks that head's gradients at a tenth of the cost)."""
    m = nn.Sequential(make_layers(cfgs["A"], batch_norm=True), nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
                      nn.Linear(512 * 7 * 7, 3))
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32))
    check_weight_grads(m, x, ["0.0.weight", "0.1.weight", "0.22.weight", "0.26.bias", "3.weight"])
