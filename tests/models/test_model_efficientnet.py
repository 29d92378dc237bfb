"""EfficientNet-B0 ... B7 (Tan & Le 2019): torchvision's keys and counts, B0's count by hand from Table 1,
compound scaling of widths and depths, multiply-adds at each network's resolution within 5% of Table 2,
squeeze-and-excitation and stochastic depth inside MBConv, gradients."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
from minicnn.models import get_model
from minicnn.models.efficientnet import SCALING
from minicnn.summary import NATIVE_INPUT, summary
from model_checks import assert_no_graph, calibrate_bn, check_weight_grads, n_params

# Table 1 stages 2-8: expand ratio, kernel, stride, channels, layers
TABLE1 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
# torchvision's parameter counts (its model documentation)
TORCHVISION = {"b0": 5_288_548, "b1": 7_794_184, "b2": 9_109_994, "b3": 12_233_232, "b4": 19_341_616,
               "b5": 30_389_784, "b6": 43_040_704, "b7": 66_347_960}
# Table 2, FLOPS (multiply-adds)
TABLE2 = {"b0": 0.39e9, "b1": 0.70e9, "b2": 1.0e9, "b3": 1.8e9, "b4": 4.2e9, "b5": 9.9e9, "b6": 19e9, "b7": 37e9}


def b0_count():
    """Stem 3x3 conv 32 + BN; per MBConv: expand 1x1 + BN, depthwise k x k + BN, SE (two 1x1 convs with biases,
    squeezed to in / 4), project 1x1 + BN; head 1x1 1280 + BN, fc 1280 -> 1000."""
    total, c = 27 * 32 + 64, 32
    for t, k, _, out, n in TABLE1:
        for _ in range(n):
            h, s = c * t, max(1, c // 4)
            total += (c * h + 2 * h if t != 1 else 0) + k * k * h + 2 * h + (h * s + s + s * h + h) \
                + h * out + 2 * out
            c = out
    return total + 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000


def test_b0_keys_and_count_by_hand():
    m = get_model("efficientnet_b0")
    sd = m.state_dict()
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.0.block.0.0.weight"].shape == (32, 1, 3, 3)                # t = 1: depthwise first
    assert sd["features.1.0.block.1.fc1.weight"].shape == (8, 32, 1, 1)              # SE squeezes to 32 / 4
    assert sd["features.1.0.block.2.0.weight"].shape == (16, 32, 1, 1)
    assert sd["features.2.0.block.0.0.weight"].shape == (96, 16, 1, 1)               # expand 6x
    assert sd["features.2.0.block.2.fc2.bias"].shape == (96,)
    assert sd["features.3.1.block.1.0.weight"].shape == (240, 1, 5, 5)               # 5 x 5 depthwise
    assert sd["features.6.3.block.3.1.running_var"].shape == (192,) and "features.6.4.block.0.0.weight" not in sd
    assert sd["features.8.0.weight"].shape == (1280, 320, 1, 1) and sd["classifier.1.weight"].shape == (1000, 1280)
    assert n_params(m) == b0_count() == TORCHVISION["b0"]


@pytest.mark.parametrize("name", list(SCALING))
def test_counts_and_compound_scaling(name):
    width, depth, _, dropout = SCALING[name]
    m = get_model(f"efficientnet_{name}")
    assert n_params(m) == TORCHVISION[name]
    assert NATIVE_INPUT.get(f"efficientnet_{name}", (3, 224, 224)) == (3, SCALING[name][2], SCALING[name][2])
    stages = [len(m.features[i]) for i in range(1, 8)]
    assert stages == [math.ceil(n * depth) for *_, n in TABLE1]                       # depth rounded up
    assert m.features[0][0].out_channels == int(32 * width + 4) // 8 * 8              # width rounded to 8
    assert m.classifier[0].p == dropout
    assert m.features[1][0].block[-1][1].eps == (1e-3 if name >= "b5" else 1e-5)    # torchvision's B5-B7 BN
    probs = [blk.stochastic_depth.p for stage in list(m.features)[1:8] for blk in stage]
    np.testing.assert_allclose(probs, 0.2 * np.arange(len(probs)) / len(probs))     # linear in depth


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCALING))
def test_multiply_adds_at_paper_resolution(name):
    res = SCALING[name][2]
    s = summary(get_model(f"efficientnet_{name}"), (3, res, res))
    assert abs(s.total_mult_adds / TABLE2[name] - 1) < 0.05, s.total_mult_adds
    assert s.rows[-1].output_shape == (1, 1000)
    assert any(tuple(r.output_shape)[2:] == (math.ceil(res / 32),) * 2 for r in s.rows)   # stride 32 overall


def test_stochastic_depth_drops_residual_branches_in_training_only():
    m = get_model("efficientnet_b0", num_classes=3, stochastic_depth_prob=0.5)
    blk = m.features[6][3]                                       # block 14 of 16, a residual one
    assert blk.stochastic_depth.p == 0.5 * 14 / 16
    assert blk.use_res_connect and isinstance(blk.block[2], nn.SqueezeExcitation)
    x = mc.tensor(np.random.default_rng(0).standard_normal((16, 192, 4, 4)))
    mc.manual_seed(0)
    with mc.no_grad():
        y = blk(x).numpy()
    same = np.all(y == x.numpy(), axis=(1, 2, 3))               # a dropped branch leaves the input unchanged
    assert 0 < same.sum() < 16
    blk.eval()
    with mc.no_grad():
        assert not np.all(blk(x).numpy() == x.numpy(), axis=(1, 2, 3)).any()


def test_small_input_no_graph_and_gradients():
    m = get_model("efficientnet_b0", num_classes=3)
    x = np.random.default_rng(1).standard_normal((4, 3, 64, 64))
    calibrate_bn(m, x)
    assert m(mc.tensor(x)).shape == (4, 3)
    assert_no_graph(m, x)
    check_weight_grads(m, x[:2], ["features.0.0.weight", "features.2.1.block.2.fc1.weight",
                                  "features.6.2.block.1.0.weight"], per_param=1)
