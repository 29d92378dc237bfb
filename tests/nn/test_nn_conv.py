"""nn.Conv2d and nn.ConvTranspose2d: PyTorch's parameter shapes, init, repr and state-dict keys, forward equal to
the functional op, padding modes, output_size, and errors raised at construction."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from helpers import DEVICES


def test_conv2d_parameters_and_state_dict():
    m = nn.Conv2d(6, 16, 5)
    assert m.weight.shape == (16, 6, 5, 5) and m.bias.shape == (16,) and m.weight.dtype == np.float32
    assert list(m.state_dict()) == ["weight", "bias"]
    g = nn.Conv2d(8, 4, (3, 1), groups=2, bias=False)
    assert g.weight.shape == (4, 4, 3, 1) and g.bias is None and list(g.state_dict()) == ["weight"]
    t = nn.ConvTranspose2d(8, 6, 4, groups=2)
    assert t.weight.shape == (8, 3, 4, 4) and t.bias.shape == (6,)


@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Conv2d(6, 16, 5), 6 * 25),
                                          (lambda: nn.Conv2d(8, 4, 3, groups=4), 2 * 9),
                                          (lambda: nn.ConvTranspose2d(8, 6, 4, groups=2), 3 * 16)])
def test_default_init_is_pytorchs(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias the same bound.  PyTorch
    takes fan_in from weight.shape[1:] also for the transposed layer's (in, out/groups, kh, kw) weight."""
    mc.manual_seed(0)
    m = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = np.abs(m.weight.numpy()), np.abs(m.bias.numpy())
    assert w.max() <= bound and w.max() > 0.9 * bound                                 # fills the range
    assert b.max() <= bound and len(np.unique(b)) == len(b)
    mc.manual_seed(0)
    np.testing.assert_array_equal(make().weight.numpy(), m.weight.numpy())             # seeded


def test_extra_repr_is_pytorchs():
    assert repr(nn.Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(nn.Conv2d(16, 32, (3, 5), stride=2, padding=1, dilation=2, groups=4, bias=False)) == (
        "Conv2d(16, 32, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=4, bias=False)")
    assert repr(nn.Conv2d(4, 4, 4, padding="same", padding_mode="circular")) == (
        "Conv2d(4, 4, kernel_size=(4, 4), stride=(1, 1), padding=same, padding_mode=circular)")
    assert repr(nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, output_padding=1)) == (
        "ConvTranspose2d(16, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))")


def test_forward_is_the_functional_op():
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 4, 7, 6)))
    m = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    np.testing.assert_array_equal(m(x).numpy(), F.conv2d(x, m.weight, m.bias, 2, 1, 1, 2).numpy())
    t = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
    y = t(x)
    assert y.shape == (2, 6, 14, 12)
    np.testing.assert_array_equal(y.numpy(), F.conv_transpose2d(x, t.weight, t.bias, 2, 1, 1).numpy())


def test_training_step_reaches_every_parameter():
    m = nn.Conv2d(3, 4, 3, padding="same")
    x = mc.tensor(np.random.default_rng(1).standard_normal((2, 3, 5, 5)), requires_grad=True)
    m(x).sum().backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad.shape == (4,) and x.grad.shape == x.shape


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("padding", [2, (1, 2), "same"])
def test_padding_modes_pad_as_numpy_does(mode, numpy_mode, padding):
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 6))
    m = nn.Conv2d(3, 2, (3, 4), padding=padding, padding_mode=mode, dtype=np.float64)
    widths = {2: [(2, 2), (2, 2)], (1, 2): [(1, 1), (2, 2)], "same": [(1, 1), (1, 2)]}[padding]    # same: extra right
    xp = np.pad(x, [(0, 0), (0, 0)] + widths, mode=numpy_mode)
    want = F.conv2d(mc.tensor(xp, dtype=np.float64), m.weight, m.bias)
    np.testing.assert_allclose(m(mc.tensor(x, dtype=np.float64)).numpy(), want.numpy(), rtol=1e-12)


def test_padding_mode_gradcheck():
    m = nn.Conv2d(2, 2, 3, padding=(2, 1), padding_mode="reflect", dtype=np.float64)
    mc.gradcheck(lambda x: m(x), [np.random.default_rng(3).standard_normal((1, 2, 4, 5))])


def test_conv_transpose2d_output_size_picks_output_padding():
    t = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = mc.tensor(np.ones((1, 2, 4, 5)))
    assert t(x).shape == (1, 3, 7, 9)
    assert t(x, output_size=(8, 10)).shape == (1, 3, 8, 10)
    assert t(x, output_size=[1, 3, 8, 9]).shape == (1, 3, 8, 9)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: requested output size \(9, 9\) is not reachable"):
        t(x, output_size=(9, 9))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), r"Conv2d: in_channels=3 and out_channels=4 must both be divisible by gr"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), r"Conv2d: groups must be a positive integer"),
    (lambda: nn.Conv2d(4, 4, 3, padding="full"), r"Conv2d: padding must be 'same', 'valid'"),
    (lambda: nn.Conv2d(4, 4, 3, stride=2, padding="same"), r"padding='same' is not supported for strided"),
    (lambda: nn.Conv2d(4, 4, 3, padding_mode="mirror"), r"Conv2d: padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect"), r"ConvTranspose2d: only padding_mode='zeros'"),
    (lambda: nn.Conv2d(1, 1, 3, padding=5, padding_mode="reflect")(mc.tensor(np.ones((1, 1, 4, 4)))),
     r"padding \(5, 5\) is too large for padding_mode='reflect' on an input dimension of size 4"),
])
def test_bad_construction_raises_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("device", DEVICES)
def test_layers_run_on_every_device(device):
    """float32 layers moved to ``device`` against the float64 computation on the CPU."""
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 5))
    for m in (nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 4, 3, stride=2, groups=2),
              nn.ConvTranspose2d(2, 3, 2, stride=2)):
        y = m.to(device)(mc.tensor(x, device=device))
        m64 = m.to("cpu").double()
        assert y.device == device and y.dtype == np.float32
        np.testing.assert_allclose(y.numpy(), m64(mc.tensor(x, dtype=np.float64)).numpy(), rtol=1e-5, atol=1e-5)
