"""Darknet-19 (YOLO9000 Table 6) and Darknet-53 (YOLOv3 Table 1): counts, the papers' operation counts
(5.58 and 18.7 x 10^9 operations = 2 x multiply-adds), YOLOv3's three feature maps, gradients."""
import numpy as np

import minicnn as mc
from minicnn.models import darknet19, darknet53
from minicnn.models.darknet import DarknetResidual, darknet19_cfg
from minicnn.summary import summary
from model_checks import assert_no_graph, check_weight_grads, n_params


def darknet19_by_hand(classes=1000):
    total, c = 0, 3
    for v in darknet19_cfg:
        if v != "M":
            out, k = v if isinstance(v, tuple) else (v, 3)
            total, c = total + k * k * c * out + 2 * out, out
    return total + 1024 * classes + classes


def darknet53_by_hand(classes=1000):
    conv = lambda cin, cout, k: k * k * cin * cout + 2 * cout  # noqa: E731
    total, c = conv(3, 32, 3), 32
    for n in (1, 2, 8, 8, 4):
        total += conv(c, 2 * c, 3) + n * (conv(2 * c, c, 1) + conv(c, 2 * c, 3))
        c *= 2
    return total + 1024 * classes + classes


def test_darknet19():
    m = darknet19()
    assert n_params(m) == darknet19_by_hand() == 20_842_376
    convs = [k for k in m.state_dict() if k.endswith("conv.weight")]
    assert len(convs) + 1 == 19                                    # plus the 1x1 classifier conv
    s = summary(m, (3, 224, 224))
    assert s.rows[-1].output_shape == (1, 1000, 1, 1)
    assert abs(2 * s.total_mult_adds / 5.58e9 - 1) < 0.01, s.total_mult_adds


def test_darknet53():
    m = darknet53()
    sd = m.state_dict()
    assert n_params(m) == darknet53_by_hand() == 41_609_928
    assert sd["layer3.8.conv2.conv.weight"].shape == (256, 128, 3, 3) and "layer3.9.conv1.conv.weight" not in sd
    assert len([k for k in sd if k.endswith("conv.weight")]) + 1 == 53
    s = summary(m, (3, 256, 256))
    assert abs(2 * s.total_mult_adds / 18.7e9 - 1) < 0.01, s.total_mult_adds
    with mc.no_grad():
        maps = m.eval().forward_features(mc.tensor(np.zeros((1, 3, 256, 256))))
    assert [f.shape for f in maps] == [(1, 256, 32, 32), (1, 512, 16, 16), (1, 1024, 8, 8)]


def test_small_input_and_no_graph():
    m = darknet19(num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    assert m(mc.tensor(x)).shape == (2, 10)
    assert_no_graph(m, x)


def test_weight_gradients():
    m = darknet19(num_classes=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))     # the last BN sees 2 x 2 x 2 values
    check_weight_grads(m, x, ["features.0.conv.weight", "features.8.bn.weight", "features.20.conv.weight",
                              "classifier.weight", "classifier.bias"], per_param=1)
    block = DarknetResidual(8)
    check_weight_grads(block, np.random.default_rng(2).standard_normal((2, 8, 6, 6)),
                       ["conv1.conv.weight", "conv2.conv.weight", "conv2.bn.bias"])
