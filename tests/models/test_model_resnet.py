"""ImageNet ResNets, ResNeXt and Wide ResNet: torchvision's keys and counts, multiply-adds within 3% of the
paper's Table 1 (1.8, 3.6, 3.8, 7.6, 11.3 x 10^9), gradients of sampled weights."""
import functools

import numpy as np
import pytest

import minicnn as mc
from minicnn.models import (resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d,
                            wide_resnet50_2)
from minicnn.models.resnet import Bottleneck
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, check_weight_grads, n_params

FACTORIES = {18: resnet18, 34: resnet34, 50: resnet50, 101: resnet101, 152: resnet152}
BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


@pytest.fixture(autouse=True, scope="module")
def _free_models():
    yield
    built.cache_clear()                   # the big models are shared by this file's tests only


@functools.lru_cache(maxsize=None)
def built(factory, **kw):
    return factory(**kw)


def torchvision_keys(depth):
    """torchvision's state-dict keys, in order, written out from its module tree."""
    bottleneck = depth >= 50
    keys = ["conv1.weight"] + bn_keys("bn1")
    for stage, n in enumerate(BLOCKS[depth]):
        for b in range(n):
            p = f"layer{stage + 1}.{b}"
            for i in range(1, 4 if bottleneck else 3):
                keys += [f"{p}.conv{i}.weight"] + bn_keys(f"{p}.bn{i}")
            if b == 0 and (stage > 0 or bottleneck):
                keys += [f"{p}.downsample.0.weight"] + bn_keys(f"{p}.downsample.1")
    return keys + ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("depth, count", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
                                          (101, 44_549_160), (152, 60_192_808)])
def test_resnet_keys_and_counts_are_torchvision(depth, count):
    m = built(FACTORIES[depth])
    assert list(m.state_dict()) == torchvision_keys(depth)
    assert n_params(m) == count


def test_key_shapes():
    sd18, sd50 = built(resnet18).state_dict(), built(resnet50).state_dict()
    assert sd18["layer1.0.conv1.weight"].shape == (64, 64, 3, 3) and sd18["fc.weight"].shape == (1000, 512)
    assert sd18["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd50["layer1.0.conv3.weight"].shape == (256, 64, 1, 1) and sd50["fc.weight"].shape == (1000, 2048)
    assert sd50["layer4.0.downsample.0.weight"].shape == (2048, 1024, 1, 1)
    assert sd50["layer3.5.bn2.num_batches_tracked"].numpy().dtype == np.int64


def test_resnext_and_wide_resnet():
    x, w = built(resnext50_32x4d), built(wide_resnet50_2)
    assert x.state_dict()["layer1.0.conv2.weight"].shape == (128, 4, 3, 3)     # 32 groups of 4 channels
    assert w.state_dict()["layer1.0.conv2.weight"].shape == (128, 128, 3, 3)   # twice ResNet-50's 64
    assert list(x.state_dict()) == list(w.state_dict()) == torchvision_keys(50)
    assert n_params(x) == 25_028_904 and n_params(w) == 68_883_240


@pytest.mark.parametrize("depth, paper", [(18, 1.8e9), (34, 3.6e9), (50, 3.8e9), (101, 7.6e9), (152, 11.3e9)])
def test_multiply_adds_at_224_match_table1(depth, paper):
    """The paper's bottleneck strides in its first 1x1 conv (``stride_in_1x1``); 18/34 have no bottleneck."""
    m = built(FACTORIES[depth], stride_in_1x1=True) if depth >= 50 else built(FACTORIES[depth])
    s = summary(m, (3, 224, 224))
    assert s.rows[-1].output_shape == (1, 1000)
    assert abs(s.total_mult_adds / paper - 1) < 0.03, s.total_mult_adds


def test_torchvision_stride_placement_costs_more():
    """v1.5 (torchvision, the default) strides in the 3x3 conv: 4.09 x 10^9 for ResNet-50."""
    s = summary(built(resnet50), (3, 224, 224))
    assert abs(s.total_mult_adds / 4.09e9 - 1) < 0.005
    v1 = built(resnet50, stride_in_1x1=True)
    assert (v1.layer2[0].conv1.stride, v1.layer2[0].conv2.stride) == ((2, 2), (1, 1))
    assert (built(resnet50).layer2[0].conv1.stride, built(resnet50).layer2[0].conv2.stride) == ((1, 1), (2, 2))


def test_zero_init_residual():
    m = resnet18(zero_init_residual=True)
    assert all(np.all(b.bn2.weight.numpy() == 0) for layer in (m.layer1, m.layer4) for b in layer)
    assert np.all(m.bn1.weight.numpy() == 1)


def test_small_input_and_no_graph():
    m = built(resnet18).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    assert m(mc.tensor(x)).shape == (2, 1000)
    assert_no_graph(m, x)


def test_resnet18_weight_gradients():
    m = resnet18(num_classes=5)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))     # layer4's BNs see 2 x 2 x 2 values
    check_weight_grads(m, x, ["conv1.weight", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                              "layer3.1.bn1.bias", "fc.weight"], per_param=1)


def test_resnext_bottleneck_weight_gradients():
    """Bottleneck with a grouped 3x3 conv and projection shortcuts, on a two-stage ResNeXt-shaped net."""
    from minicnn.models.resnet import ResNet
    m = ResNet(Bottleneck, [1, 2, 1, 1], num_classes=3, groups=4, width_per_group=4)
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    check_weight_grads(m, x, ["layer1.0.conv1.weight", "layer2.1.conv2.weight", "layer2.0.downsample.1.weight",
                              "layer4.0.conv3.weight", "fc.bias"], per_param=1)
