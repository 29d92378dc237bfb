"""Pre-activation ResNets (He et al. 2016, "Identity mappings"): unit structure and keys, the paper's
parameter counts, gradients, overfitting one batch."""
import numpy as np

import minicnn as mc
from minicnn.models import preact_resnet18, preact_resnet110, preact_resnet164
from minicnn.models.preact_resnet import PreActBlock, PreActBottleneck, PreActResNet
from minicnn.summary import summary
from model_checks import assert_no_graph, check_weight_grads, n_params, overfit_one_batch


def basic_by_hand(n, widths, stem_conv, stem_width, classes):
    """stem conv + BN; per unit BN(in) (not the first unit), two 3x3 convs, BN(out), and a 1x1 projection
    where width or size change; final BN; fc."""
    total, c = stem_conv + 2 * stem_width, stem_width
    for s, w in enumerate(widths):
        for u in range(n):
            preact = 0 if s == u == 0 else 2 * c
            projection = c * w if c != w or (u == 0 and s > 0) else 0
            total += preact + 9 * c * w + 2 * w + 9 * w * w + projection
            c = w
    return total + 2 * c + c * classes + classes


def test_parameter_counts():
    assert n_params(preact_resnet110()) == basic_by_hand(18, (16, 32, 64), 3 * 16 * 9, 16, 10) == 1_730_522
    assert n_params(preact_resnet18()) == basic_by_hand(2, (64, 128, 256, 512), 3 * 64 * 49, 64, 1000) \
        == 11_687_720
    assert round(n_params(preact_resnet164()) / 1e6, 1) == 1.7                 # Table 3: 1.7 M


def test_unit_structure_and_keys():
    m = preact_resnet164()
    sd = m.state_dict()
    first, second = m.layers[0][0], m.layers[0][1]
    assert first.bn1 is None and second.bn1 is not None            # the stem's BN-ReLU pre-activates unit 1
    assert sd["layers.0.0.shortcut.0.weight"].shape == (64, 16, 1, 1)
    assert sd["layers.1.0.conv2.weight"].shape == (32, 32, 3, 3) and sd["bn_final.weight"].shape == (256,)
    assert "layers.0.1.shortcut.0.weight" not in sd
    weight_layers = [k for k, v in sd.items() if k.endswith("weight") and v.ndim >= 2]
    assert len(weight_layers) - 3 == 164                              # 9n + 2 plus three projections


def test_forward_sizes_and_no_graph():
    s = summary(preact_resnet164(), (3, 32, 32))
    assert s.rows[-1].output_shape == (1, 10)
    m = preact_resnet18(num_classes=6).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    assert m(mc.tensor(x)).shape == (2, 6)
    assert_no_graph(m, x)


def test_weight_gradients_basic_and_bottleneck_units():
    small = PreActResNet(PreActBlock, [2, 1], [4, 8], 3, imagenet_stem=False)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12))
    check_weight_grads(small, x, ["conv1.weight", "layers.0.1.bn1.weight", "layers.1.0.shortcut.0.weight",
                                  "layers.1.0.conv2.weight", "bn_final.bias", "fc.weight"])
    bottle = PreActResNet(PreActBottleneck, [1, 2], [8, 4], 3, imagenet_stem=False)   # 16 -> 32 -> 16 channels
    check_weight_grads(bottle, x, ["layers.0.0.conv1.weight", "layers.0.0.shortcut.0.weight",
                                   "layers.1.1.conv3.weight", "layers.1.1.bn3.weight", "fc.bias"])


def test_overfits_one_batch():
    mc.manual_seed(1)
    m = PreActResNet(PreActBlock, [1, 1, 1], [8, 16, 32], 4, imagenet_stem=False)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((16, 3, 16, 16)).astype(np.float32), rng.integers(0, 4, 16)
    first, last, acc = overfit_one_batch(m, x, y, steps=40)
    assert last < 0.1 * first and acc == 1.0
