"""MobileNet v1 (Howard et al. 2017): Table 1's layers, Table 6's counts (4.2 M parameters, 569 M
multiply-adds for 1.0-224), depthwise convolutions, gradients, overfitting one batch."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.models import mobilenet_v1
from minicnn.summary import summary
from model_checks import assert_no_graph, check_weight_grads, n_params, overfit_one_batch


def test_keys_and_depthwise_shapes():
    sd = mobilenet_v1().state_dict()
    assert sd["features.0.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.depthwise.weight"].shape == (32, 1, 3, 3)        # one 3x3 filter per channel
    assert sd["features.1.pointwise.weight"].shape == (64, 32, 1, 1)
    assert sd["features.13.pointwise.weight"].shape == (1024, 1024, 1, 1) and "features.14.bn1.weight" not in sd
    assert sd["fc.weight"].shape == (1000, 1024)


@pytest.mark.parametrize("alpha, size, mult_adds, params", [
    (1.0, 224, 569e6, 4.2e6), (0.75, 224, 325e6, 2.6e6), (0.5, 224, 149e6, 1.3e6), (0.25, 224, 41e6, 0.5e6),
    (1.0, 128, 186e6, 4.2e6)])
def test_tables_6_and_7(alpha, size, mult_adds, params):
    s = summary(mobilenet_v1(width_mult=alpha), (3, size, size))
    assert abs(s.total_mult_adds / mult_adds - 1) < 0.03, s.total_mult_adds
    assert round(s.total_params / 1e6, 1) == params / 1e6, s.total_params       # the tables round to 0.1 M
    if alpha == 1.0 and size == 224:
        assert s.total_params == 4_231_976 and s.rows[-1].output_shape == (1, 1000)


def test_small_input_and_no_graph():
    m = mobilenet_v1(width_mult=0.25, num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    assert m(mc.tensor(x)).shape == (2, 10)
    assert_no_graph(m, x)


def test_weight_gradients():
    m = mobilenet_v1(width_mult=0.25, num_classes=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))     # the last BNs see 2 x 2 x 2 values
    check_weight_grads(m, x, ["features.0.conv.weight", "features.2.depthwise.weight", "features.6.bn1.weight",
                              "features.13.depthwise.weight", "features.13.pointwise.weight", "fc.weight"])


def test_overfits_one_batch():
    mc.manual_seed(2)
    m = mobilenet_v1(width_mult=0.25, num_classes=4)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 3, 64, 64)).astype(np.float32), rng.integers(0, 4, 16)
    first, last, acc = overfit_one_batch(m, x, y, steps=40)
    assert last < 0.1 * first and acc == 1.0
