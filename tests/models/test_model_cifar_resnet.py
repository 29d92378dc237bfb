"""CIFAR ResNets with option-A shortcuts (He et al. 2016, §4.2): 6n + 2 layers, the paper's parameter counts,
zero-padded identity shortcuts, gradients, and overfitting one batch."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.models import resnet20, resnet32, resnet44, resnet56, resnet110
from minicnn.models.cifar_resnet import LambdaShortcut
from minicnn import nn
from model_checks import assert_no_graph, check_weight_grads, n_params, overfit_one_batch


def by_hand(n, classes=10):
    """conv1 + BN, then per stage n blocks of two 3x3 convs + BNs (the first one widening), then fc."""
    total, c = 3 * 16 * 9 + 2 * 16, 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * c * width + 9 * width * width + 4 * width
            c = width
    return total + 64 * classes + classes


@pytest.mark.parametrize("factory, n, paper", [(resnet20, 3, 0.27), (resnet32, 5, 0.46), (resnet44, 7, 0.66),
                                               (resnet56, 9, 0.85), (resnet110, 18, 1.7)])
def test_depth_and_parameter_count(factory, n, paper):
    m = factory()
    weight_layers = sum(1 for x in m.modules() if isinstance(x, (nn.Conv2d, nn.Linear)))
    assert weight_layers == 6 * n + 2
    assert n_params(m) == by_hand(n)
    assert round(n_params(m) / 1e6, 2 if paper < 1 else 1) == paper          # Table 6's "# params"


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = np.random.default_rng(0).standard_normal((2, 16, 8, 8))
    y = LambdaShortcut(8)(mc.tensor(x)).numpy()
    assert y.shape == (2, 32, 4, 4)
    np.testing.assert_array_equal(y[:, 8:24], x[:, :, ::2, ::2].astype(np.float32))
    assert not y[:, :8].any() and not y[:, 24:].any()
    assert not any(True for _ in LambdaShortcut(8).parameters())


def test_forward_at_32x32_and_no_graph():
    m = resnet56().eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32))
    assert m(mc.tensor(x)).shape == (1, 10)
    assert_no_graph(m, x)
    assert resnet20(num_classes=100)(mc.tensor(np.zeros((2, 3, 32, 32)))).shape == (2, 100)


def test_weight_gradients_across_the_padded_shortcuts():
    m = resnet20(num_classes=4)
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16))
    check_weight_grads(m, x, ["conv1.weight", "layer1.2.conv2.weight", "layer2.0.conv1.weight",
                              "layer3.0.bn2.weight", "fc.weight"])


def test_overfits_one_batch():
    mc.manual_seed(0)
    m = resnet20(num_classes=4)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((8, 3, 8, 8)).astype(np.float32), rng.integers(0, 4, 8)
    first, last, acc = overfit_one_batch(m, x, y, steps=25)
    assert last < 0.1 * first and acc == 1.0
