"""MobileNetV2 (Sandler et al. 2018): torchvision's keys and count (3,504,872), a count by hand from Table 2,
linear bottlenecks and residuals where stride is 1 and widths match, 300 M multiply-adds at 224 x 224 (Table 3),
the width multiplier, gradients, overfitting one batch."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
from minicnn.models import mobilenet_v2
from minicnn.models.mobilenetv2 import InvertedResidual, make_divisible
from minicnn.summary import summary
from model_checks import assert_no_graph, calibrate_bn, check_weight_grads, n_params, overfit_one_batch

TABLE2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def hand_count():
    total, c = 27 * 32 + 64, 32
    for t, out, n, _ in TABLE2:
        for _ in range(n):
            h = c * t
            total += (c * h + 2 * h if t != 1 else 0) + 9 * h + 2 * h + h * out + 2 * out
            c = out
    return total + 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000


def test_keys_and_count_equal_torchvision():
    m = mobilenet_v2()
    sd = m.state_dict()
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)            # t = 1: no expansion layer
    assert sd["features.1.conv.1.weight"].shape == (16, 32, 1, 1) and "features.1.conv.2.running_var" in sd
    assert sd["features.2.conv.0.0.weight"].shape == (96, 16, 1, 1)           # expand 16 -> 6 x 16
    assert sd["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)            # depthwise
    assert sd["features.2.conv.2.weight"].shape == (24, 96, 1, 1) and "features.2.conv.3.weight" in sd
    assert sd["features.18.0.weight"].shape == (1280, 320, 1, 1) and "features.19.0.weight" not in sd
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    assert n_params(m) == hand_count() == 3_504_872
    residual = [type(f).__name__ == "InvertedResidual" and f.use_res_connect for f in m.features]
    assert [i for i, r in enumerate(residual) if r] == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


def test_linear_bottleneck_has_no_activation_after_the_projection():
    blk = InvertedResidual(8, 8, 1, 6)
    assert [type(m).__name__ for m in blk.conv] == ["ConvBNActivation", "ConvBNActivation", "Conv2d",
                                                    "BatchNorm2d"]
    assert isinstance(blk.conv[0][2], nn.ReLU6) and blk.use_res_connect


@pytest.mark.slow
def test_multiply_adds_at_224_and_width_multiplier():
    s = summary(mobilenet_v2(), (3, 224, 224))
    assert abs(s.total_mult_adds / 300e6 - 1) < 0.05, s.total_mult_adds
    assert s.rows[-1].output_shape == (1, 1000)
    assert make_divisible(32 * 0.35) == 16 and make_divisible(1280 * 1.4) == 1792
    thin = mobilenet_v2(width_mult=0.5)
    assert thin.features[0][0].out_channels == 16 and thin.classifier[1].in_features == 1280   # last layer kept


def test_small_input_no_graph_and_gradients():
    m = mobilenet_v2(width_mult=0.35, num_classes=3)
    x = np.random.default_rng(1).standard_normal((4, 3, 64, 64))
    calibrate_bn(m, x)
    assert m(mc.tensor(x)).shape == (4, 3)
    assert_no_graph(m, x)
    check_weight_grads(m, x[:2], ["features.0.0.weight", "features.5.conv.1.0.weight", "features.17.conv.2.weight",
                                  "classifier.1.weight"])


def test_overfits_one_batch():
    mc.manual_seed(2)
    m = mobilenet_v2(width_mult=0.35, num_classes=4, dropout=0.0)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((8, 3, 32, 32)).astype(np.float32), rng.integers(0, 4, 8)
    first, last, acc = overfit_one_batch(m, x, y, steps=30)
    assert last < 0.2 * first and acc == 1.0
