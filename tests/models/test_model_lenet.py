"""LeNet-5: shapes, the hand-counted parameters, torchvision-style keys, gradients, learning one batch."""
import numpy as np

import minicnn as mc
from minicnn.models import LeNet5, get_model, lenet5
from model_checks import assert_no_graph, check_weight_grads, n_params, overfit_one_batch


def test_lenet5_shapes_keys_and_count():
    mc.manual_seed(0)
    model = lenet5()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    assert model(mc.tensor(x)).shape == (3, 10) and lenet5(num_classes=4)(mc.tensor(x)).shape == (3, 4)
    assert list(model.state_dict()) == [f"{m}.{k}" for m in ("conv1", "conv2", "fc1", "fc2", "fc3")
                                        for k in ("weight", "bias")]
    #         conv1 1->6 5x5   conv2 6->16 5x5   fc1 16*4*4->120   fc2 120->84    fc3 84->10
    assert n_params(model) == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert n_params(model) == 44_426
    assert isinstance(get_model("LeNet5"), LeNet5)
    assert_no_graph(model, x)


def test_lenet5_weight_gradients():
    mc.manual_seed(1)
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28))
    model = lenet5()                    # a forward is ~1 ms: 8 entries of every parameter (all 6 of conv1.bias)
    assert check_weight_grads(model, x, names=[n for n, _ in model.named_parameters()], per_param=8) == 9 * 8 + 6


def test_lenet5_learns_one_batch():
    mc.manual_seed(2)
    rng = np.random.default_rng(2)
    first, last, acc = overfit_one_batch(lenet5(), rng.standard_normal((16, 1, 28, 28)), rng.integers(0, 10, 16))
    assert last < first / 10 and acc == 1.0
