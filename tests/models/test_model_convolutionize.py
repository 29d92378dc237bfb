"""convolutionize: a classifier's Linear layers as convolutions give, on a larger input, a map whose every
position equals the classifier on the corresponding crop."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import alexnet, convolutionize


def crops_agree(layers, fcn, size, big, seed=0):
    """Every position (i, j) of fcn(big input) equals layers(crop at (s*i, s*j))."""
    x = np.random.default_rng(seed).standard_normal((2, 3) + big)
    with mc.no_grad():
        dense = fcn(mc.tensor(x)).numpy()
        s = fcn.stride
        assert dense.shape[2:] == ((big[0] - size) // s + 1, (big[1] - size) // s + 1)
        for i in range(dense.shape[2]):
            for j in range(dense.shape[3]):
                crop = mc.tensor(x[:, :, s * i:s * i + size, s * j:s * j + size])
                np.testing.assert_allclose(dense[:, :, i, j], nn.Sequential(*layers)(crop).numpy(),
                                           rtol=1e-4, atol=1e-5)
    return dense


def test_linear_head_becomes_convolutions():
    mc.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=1), nn.ReLU(),
              nn.Flatten(), nn.Linear(6 * 3 * 3, 7), nn.ReLU(), nn.Dropout(0.5), nn.Linear(7, 5)]
    for m in layers:
        m.eval()
    fcn = convolutionize(layers, (3, 12, 12))
    assert fcn.stride == 2
    convs = [m for m in fcn if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(4, 3, 3, 3), (6, 4, 3, 3), (7, 6, 3, 3), (5, 7, 1, 1)]
    assert not any(isinstance(m, (nn.Linear, nn.Flatten)) for m in fcn)
    dense = crops_agree(layers, fcn, 12, (20, 22))
    assert dense.shape == (2, 5, 5, 6)


def test_adaptive_pool_becomes_a_fixed_pool():
    mc.manual_seed(1)
    layers = [nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d((3, 3)), nn.Flatten(),
              nn.Linear(36, 4)]
    fcn = convolutionize(layers, (3, 13, 13))                  # conv -> 6x6, pooled 2x2 -> 3x3
    assert isinstance(fcn[2], nn.AvgPool2d) and fcn.stride == 4
    crops_agree(layers, fcn, 13, (21, 25))


def test_original_layers_unchanged_and_errors():
    lin = nn.Linear(8, 2)
    w = lin.weight.numpy().copy()
    fcn = convolutionize([nn.Conv2d(3, 2, 3), nn.Flatten(), lin], (3, 4, 4))
    fcn[1].weight.data[...] = 0
    np.testing.assert_array_equal(lin.weight.numpy(), w)
    with pytest.raises(ValueError, match="Linear\\(9, 2\\).*2x2x2 = 8"):
        convolutionize([nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(9, 2)], (3, 4, 4))
    with pytest.raises(ValueError, match="not a fixed pooling"):
        convolutionize([nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(27, 2)], (3, 4, 4))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        convolutionize([nn.Flatten(), nn.BatchNorm1d(48), nn.Linear(48, 2)], (3, 4, 4))


def test_alexnet_as_a_fully_convolutional_network():
    """At 224 x 224 the map is 1 x 1 and equals the logits; at 288 x 256 it is 3 x 2 (stride 32)."""
    m = alexnet(num_classes=6).eval()
    fcn = convolutionize([*m.features, m.avgpool, nn.Flatten(), *m.classifier], (3, 224, 224))
    assert fcn.stride == 32
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224))
    with mc.no_grad():
        np.testing.assert_allclose(fcn(mc.tensor(x)).numpy()[:, :, 0, 0], m(mc.tensor(x)).numpy(), rtol=1e-4,
                                   atol=1e-5)
        assert fcn(mc.tensor(np.zeros((1, 3, 288, 256)))).shape == (1, 6, 3, 2)
