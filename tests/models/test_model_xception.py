"""Xception (Chollet 2017, Fig. 5): timm's legacy_xception keys and count (22,855,952; 22,910,480 with
BatchNorm's running statistics, the Keras figure), a count by hand from the flows, separable convolutions,
8.4 x 10^9 multiply-adds at 299 x 299, gradients."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.models import xception
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, calibrate_bn, check_weight_grads, n_params


def sep(cin, cout):                                  # depthwise 3x3 + pointwise 1x1 + BatchNorm
    return 9 * cin + cin * cout + 2 * cout


def block(cin, cout, reps, grow_first=True, skip=True):
    widths = [(cin if i == 0 else cout, cout) for i in range(reps)] if grow_first else \
        [(cin, cin if i < reps - 1 else cout) for i in range(reps)]
    return sum(sep(a, b) for a, b in widths) + (cin * cout + 2 * cout if skip else 0)


def hand_count():
    entry = 27 * 32 + 64 + 9 * 32 * 64 + 128 + block(64, 128, 2) + block(128, 256, 2) + block(256, 728, 2)
    middle = 8 * block(728, 728, 3, skip=False)
    exit_ = block(728, 1024, 2, grow_first=False) + sep(1024, 1536) + sep(1536, 2048) + 2048 * 1000 + 1000
    return entry + middle + exit_


def test_keys_and_counts_equal_timm_legacy_xception():
    m = xception()
    sd = m.state_dict()
    keys = list(sd)
    assert keys[:7] == ["conv1.weight"] + bn_keys("bn1") + ["conv2.weight"]
    # block1 starts without ReLU: rep.0 is the separable conv; later blocks start with one (rep.1)
    assert keys[keys.index("block1.skip.weight"):][:8] == ["block1.skip.weight"] + bn_keys("block1.skipbn") + [
        "block1.rep.0.conv1.weight", "block1.rep.0.pointwise.weight"]
    assert sd["block2.rep.1.conv1.weight"].shape == (128, 1, 3, 3) and sd["block2.rep.4.pointwise.weight"].shape \
        == (256, 256, 1, 1)
    assert "block4.skip.weight" not in sd and sd["block11.rep.7.pointwise.weight"].shape == (728, 728, 1, 1)
    assert sd["block12.rep.4.pointwise.weight"].shape == (1024, 728, 1, 1)          # grows last
    assert keys[-2:] == ["fc.weight", "fc.bias"] and sd["conv4.pointwise.weight"].shape == (2048, 1536, 1, 1)
    assert n_params(m) == hand_count() == 22_855_952
    running = sum(v.numel() for k, v in sd.items() if k.endswith(("running_mean", "running_var")))
    assert n_params(m) + running == 22_910_480                                       # Keras counts these


@pytest.mark.slow
def test_multiply_adds_and_flows_at_299():
    s = summary(xception(), (3, 299, 299))
    assert abs(s.total_mult_adds / 8.4e9 - 1) < 0.05, s.total_mult_adds              # timm: 8.4 GMACs
    shapes = {r.name: tuple(r.output_shape) for r in s.rows}
    assert shapes["block3.skip"] == (1, 728, 19, 19) and shapes["block11.rep.7.pointwise"] == (1, 728, 19, 19)
    assert shapes["block12.skip"] == (1, 1024, 10, 10) and shapes["conv4.pointwise"] == (1, 2048, 10, 10)


def test_small_input_no_graph_and_gradients():
    m = xception(num_classes=3)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32))
    calibrate_bn(m, x)
    assert m(mc.tensor(x)).shape == (4, 3)
    assert_no_graph(m, x)
    check_weight_grads(m, x[:1], ["conv1.weight", "block7.rep.4.conv1.weight", "conv4.pointwise.weight"],
                       per_param=1)
