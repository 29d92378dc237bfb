"""DenseNet-BC (Huang et al. 2017, Table 1): torchvision's keys and counts, 2.8 x 10^9 multiply-adds for
DenseNet-121, dense connectivity, gradients."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.models import densenet121, densenet161, densenet169, densenet201, densenet264
from minicnn.models.densenet import DenseNet
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, check_weight_grads, n_params


def torchvision_keys(blocks):
    keys = ["features.conv0.weight"] + bn_keys("features.norm0")
    for b, n in enumerate(blocks):
        for i in range(n):
            p = f"features.denseblock{b + 1}.denselayer{i + 1}"
            keys += bn_keys(f"{p}.norm1") + [f"{p}.conv1.weight"] + bn_keys(f"{p}.norm2") + [f"{p}.conv2.weight"]
        if b < len(blocks) - 1:
            keys += bn_keys(f"features.transition{b + 1}.norm") + [f"features.transition{b + 1}.conv.weight"]
    return keys + bn_keys("features.norm5") + ["classifier.weight", "classifier.bias"]


def by_hand(k, blocks, c0, classes=1000):
    """conv0 + BN; per dense layer BN(c) + 1x1 (c -> 4k) + BN(4k) + 3x3 (4k -> k); transitions BN + 1x1 to c/2."""
    total, c = 3 * c0 * 49 + 2 * c0, c0
    for b, n in enumerate(blocks):
        for _ in range(n):
            total += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
            c += k
        if b < len(blocks) - 1:
            total += 2 * c + c * (c // 2)
            c //= 2
    return total + 2 * c + c * classes + classes


@pytest.mark.parametrize("factory, k, blocks, c0, torchvision", [
    (densenet121, 32, (6, 12, 24, 16), 64, 7_978_856), (densenet169, 32, (6, 12, 32, 32), 64, 14_149_480),
    (densenet201, 32, (6, 12, 48, 32), 64, 20_013_928), (densenet161, 48, (6, 12, 36, 24), 96, 28_681_000),
    (densenet264, 32, (6, 12, 64, 48), 64, None)])
def test_counts_and_keys(factory, k, blocks, c0, torchvision):
    m = factory()
    assert n_params(m) == by_hand(k, blocks, c0)
    if torchvision is not None:
        assert n_params(m) == torchvision
        assert list(m.state_dict()) == torchvision_keys(blocks)


def test_densenet121_at_224():
    m = densenet121()
    sd = m.state_dict()
    assert sd["features.denseblock4.denselayer16.conv1.weight"].shape == (128, 992, 1, 1)
    assert sd["features.transition3.conv.weight"].shape == (512, 1024, 1, 1) and sd["classifier.weight"].shape \
        == (1000, 1024)
    s = summary(m, (3, 224, 224))
    shapes = {r.name: tuple(r.output_shape) for r in s.rows}
    assert shapes["features.pool0"] == (1, 64, 56, 56) and shapes["features.transition1.pool"] == (1, 128, 28, 28)
    assert shapes["features.norm5"] == (1, 1024, 7, 7) and shapes["classifier"] == (1, 1000)
    assert abs(s.total_mult_adds / 2.83e9 - 1) < 0.01, s.total_mult_adds   # torchvision: 2.83 GFLOPS


def test_every_layer_sees_all_earlier_maps():
    m = DenseNet(growth_rate=3, block_config=(4,), num_init_features=5, num_classes=2)
    layers = list(m.features.denseblock1.children())
    assert [layer.conv1.weight.shape[1] for layer in layers] == [5, 8, 11, 14]
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    assert m(mc.tensor(x)).shape == (2, 2)
    m.eval()
    assert_no_graph(m, x)


def test_weight_gradients():
    m = DenseNet(growth_rate=4, block_config=(2, 3), num_init_features=8, bn_size=2, num_classes=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
    check_weight_grads(m, x, ["features.conv0.weight", "features.denseblock1.denselayer1.conv2.weight",
                              "features.transition1.conv.weight", "features.denseblock2.denselayer3.norm1.weight",
                              "features.norm5.bias", "classifier.weight"])
