"""AlexNet (torchvision's and the 2012 paper's) and ZFNet: counts, torchvision keys, shapes at the paper's sizes,
gradients of sampled weights."""
import numpy as np

import minicnn as mc

from minicnn.models import alexnet, alexnet_paper, zfnet
from minicnn.summary import summary
from model_checks import assert_no_graph, check_weight_grads, n_params


def conv(cin, cout, k, groups=1):
    return cout * (cin // groups) * k * k + cout


FC = (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def test_alexnet_matches_torchvision_keys_shapes_and_count():
    sd = alexnet().state_dict()
    assert list(sd) == [f"{m}.{i}.{k}" for m, idx in (("features", (0, 3, 6, 8, 10)), ("classifier", (1, 4, 6)))
                        for i in idx for k in ("weight", "bias")]
    assert sd["features.0.weight"].shape == (64, 3, 11, 11) and sd["features.3.weight"].shape == (192, 64, 5, 5)
    assert sd["classifier.1.weight"].shape == (4096, 9216) and sd["classifier.6.weight"].shape == (1000, 4096)
    assert n_params(alexnet()) == 61_100_840
    assert 61_100_840 == conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3) \
        + conv(256, 256, 3) + FC


def test_alexnet_paper_two_column_layout():
    """Fig. 2: conv2, conv4, conv5 see only their own GPU's half of the previous layer (groups=2)."""
    m = alexnet_paper()
    sd = m.state_dict()
    assert sd["features.4.weight"].shape == (256, 48, 5, 5)        # conv2: 48 input maps per kernel
    assert sd["features.8.weight"].shape == (384, 256, 3, 3)       # conv3 connects across the GPUs
    assert sd["features.10.weight"].shape == (384, 192, 3, 3)
    assert sd["features.12.weight"].shape == (256, 192, 3, 3)
    assert n_params(m) == conv(3, 96, 11) + conv(96, 256, 5, 2) + conv(256, 384, 3) + conv(384, 384, 3, 2) \
        + conv(384, 256, 3, 2) + FC == 60_965_224
    # §5: biases 1 in conv2, conv4, conv5 and the fully connected hidden layers, else 0
    ones = {"features.4", "features.10", "features.12", "classifier.1", "classifier.4"}
    for name in ("features.0", "features.4", "features.8", "features.10", "features.12", "classifier.1",
                 "classifier.4", "classifier.6"):
        assert np.all(sd[name + ".bias"].numpy() == (1 if name in ones else 0)), name


def test_alexnet_paper_at_227_gives_the_figure_sizes():
    s = summary(alexnet_paper(), (3, 227, 227))
    shapes = {r.name: tuple(r.output_shape) for r in s.rows}
    assert shapes["features.0"] == (1, 96, 55, 55) and shapes["features.7"] == (1, 256, 13, 13)
    assert shapes["features.14"] == (1, 256, 6, 6) and shapes["classifier.6"] == (1, 1000)


def test_zfnet_sizes_and_count():
    """Fig. 3: 110 -> 55 -> 26 -> 13 -> 6 at 224 x 224."""
    m = zfnet()
    assert n_params(m) == conv(3, 96, 7) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) \
        + conv(384, 256, 3) + FC
    shapes = {r.name: tuple(r.output_shape) for r in summary(m, (3, 224, 224)).rows}
    assert shapes["features.0"] == (1, 96, 110, 110) and shapes["features.2"] == (1, 96, 55, 55)
    assert shapes["features.4"] == (1, 256, 26, 26) and shapes["features.6"] == (1, 256, 13, 13)
    assert shapes["features.14"] == (1, 256, 6, 6)


def test_alexnet_small_input_and_no_graph():
    m = alexnet(num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    assert m(mc.tensor(x)).shape == (2, 10)
    assert_no_graph(m, x)


def test_alexnet_paper_weight_gradients():
    m = alexnet_paper(num_classes=5)
    x = np.random.default_rng(1).standard_normal((2, 3, 67, 67))
    assert check_weight_grads(m, x, ["features.0.weight", "features.4.weight", "features.12.weight",
                                     "classifier.4.weight", "classifier.6.bias"]) == 10
