"""Network in Network (Lin et al. 2014): mlpconv blocks as 1x1 convolutions, global-average-pooling head."""
import numpy as np

import minicnn as mc
from minicnn.models import nin, nin_cifar
from minicnn.summary import summary
from model_checks import assert_no_graph, check_weight_grads, n_params


def mlp(cin, widths, k):
    total, c = 0, cin
    for i, w in enumerate(widths):
        total, c = total + (k * k if i == 0 else 1) * c * w + w, w
    return total


def test_counts_and_head():
    assert n_params(nin_cifar()) == mlp(3, (192, 160, 96), 5) + mlp(96, (192, 192, 192), 5) \
        + mlp(192, (192, 192, 10), 3) == 966_986
    assert n_params(nin()) == mlp(3, (96, 96, 96), 11) + mlp(96, (256,) * 3, 5) + mlp(256, (384,) * 3, 3) \
        + mlp(384, (1024, 1024, 1000), 3)
    sd = nin_cifar().state_dict()
    assert sd["features.0.2.weight"].shape == (160, 192, 1, 1)                 # the first "cccp" layer
    assert not any(k.startswith("classifier") for k in sd)                     # no fully connected layer


def test_map_sizes():
    shapes = {r.name: tuple(r.output_shape) for r in summary(nin_cifar(), (3, 32, 32)).rows}
    assert shapes["features.1"] == (1, 96, 16, 16) and shapes["features.4"] == (1, 192, 8, 8)
    assert shapes["avgpool"] == (1, 10, 1, 1)
    shapes = {r.name: tuple(r.output_shape) for r in summary(nin(), (3, 224, 224)).rows}
    assert shapes["features.0.0"] == (1, 96, 54, 54) and shapes["features.5"] == (1, 384, 6, 6)


def test_small_input_and_no_graph():
    m = nin_cifar(num_classes=7).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    assert m(mc.tensor(x)).shape == (2, 7)
    assert_no_graph(m, x)


def test_weight_gradients():
    m = nin_cifar(num_classes=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    check_weight_grads(m, x, ["features.0.0.weight", "features.0.4.bias", "features.3.2.weight",
                              "features.6.4.weight"])
