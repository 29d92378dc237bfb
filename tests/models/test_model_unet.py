"""U-Net: shapes, a hand-computed parameter count, state-dict keys, float64 weight gradients, one-batch overfit."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.data import MNISTSegmentation
from minicnn.models import get_model, unet
from model_checks import assert_no_graph, check_weight_grads, n_params, overfit_one_batch


def double_conv_params(c_in, c_out):
    return c_in * c_out * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out      # bias-free convs + BatchNorm


def test_shape_count_and_keys():
    m = unet(in_channels=1, num_classes=3, base_channels=4, depth=2)
    assert m(mc.tensor(np.random.rand(2, 1, 16, 12))).shape == (2, 3, 16, 12)
    down = double_conv_params(1, 4) + double_conv_params(4, 8) + double_conv_params(8, 16)
    up = (16 * 8 * 4 + 8) + (8 * 4 * 4 + 4)                                  # 2 x 2 up-convolutions with bias
    decoder = double_conv_params(16, 8) + double_conv_params(8, 4)           # after concatenation: 2x channels
    head = 4 * 3 + 3
    assert n_params(m) == down + up + decoder + head
    keys = list(m.state_dict())
    assert keys[:2] == ["down.0.0.weight", "down.0.1.weight"]
    assert "up.1.weight" in keys and "decoder.1.4.running_var" in keys and keys[-2:] == ["head.weight", "head.bias"]
    assert get_model("unet", num_classes=3, base_channels=4, depth=2).state_dict().keys() == m.state_dict().keys()


def test_paper_width():
    assert n_params(unet(1, 2, base_channels=64, depth=4, batch_norm=False)) == 31_030_658   # 31.0 M


def test_weight_gradients_float64():
    m = unet(1, 3, base_channels=2, depth=2)
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    assert check_weight_grads(m, x, names=["down.0.0.weight", "up.0.weight", "decoder.1.0.weight", "head.bias"]) == 8


def test_no_graph_and_size_error():
    m = unet(1, 3, base_channels=2, depth=2)
    assert_no_graph(m, np.random.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="unet: input 10x8 must be divisible by 2\\^depth = 4"):
        m(mc.tensor(np.zeros((1, 1, 10, 8))))


@pytest.fixture
def one_thread():
    """Small models train fastest on one thread; two fight over a shared 2-core machine (see train.set_threads)."""
    restore = mc.set_num_threads(1)
    yield
    restore()


def test_overfits_one_batch(one_thread):
    ds = MNISTSegmentation(train=True, size=2, image_size=28, max_digits=1)
    x, y = ds.get_batch(np.arange(2))
    first, last, acc = overfit_one_batch(unet(1, 11, base_channels=8, depth=2), x, y, steps=30, lr=1e-2)
    assert last < 0.2 * first and acc > 0.95
