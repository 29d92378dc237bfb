"""interpolate (nearest, integer scale), pixel_shuffle and pixel_unshuffle: values against index-formula
references, gradchecks, devices, and the errors for what is not supported."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, distinct_values


def nearest_ref(x, scales):
    """Output pixel o copies input pixel o // scale along every spatial axis."""
    for axis, s in enumerate(scales, start=2):
        x = np.take(x, np.arange(x.shape[axis] * s) // s, axis=axis)
    return x


def pixel_shuffle_ref(x, r):
    N, C, H, W = x.shape
    y = np.empty((N, C // r**2, H * r, W * r), x.dtype)
    for c, h, w in np.ndindex(*y.shape[1:]):                     # PyTorch: input channel c * r^2 + i * r + j
        y[:, c, h, w] = x[:, c * r * r + (h % r) * r + w % r, h // r, w // r]
    return y


@pytest.mark.parametrize("device", DEVICES)
@given(spatial=st.lists(st.integers(1, 3), min_size=1, max_size=3), data=st.data())
def test_interpolate_matches_reference(device, spatial, data):
    scales = data.draw(st.tuples(*[st.integers(1, 3)] * len(spatial)))
    x = distinct_values((2, 2, *spatial), seed=len(spatial)).astype(np.float32)
    y = F.interpolate(mc.tensor(x, device=device), scale_factor=scales)
    np.testing.assert_array_equal(y.numpy(), nearest_ref(x, scales))
    y = F.interpolate(mc.tensor(x, device=device), size=tuple(n * s for n, s in zip(spatial, scales)))
    np.testing.assert_array_equal(y.numpy(), nearest_ref(x, scales))


def test_interpolate_scalar_and_float_factors():
    x = mc.tensor(distinct_values((1, 2, 2, 3), seed=1))
    for y in (F.interpolate(x, scale_factor=2), F.interpolate(x, scale_factor=2.0), F.interpolate(x, size=(4, 6))):
        np.testing.assert_array_equal(y.numpy(), x.numpy().repeat(2, axis=2).repeat(2, axis=3))


@pytest.mark.parametrize("device", DEVICES)
def test_interpolate_backward_sums_each_block(device):
    x = mc.tensor(np.zeros((1, 1, 2, 2)), device=device, requires_grad=True)
    gy = np.arange(24.0).reshape(1, 1, 4, 6)                      # scale (2, 3): block (i, j) is rows 2i.., cols 3j..
    F.interpolate(x, scale_factor=(2, 3)).backward(mc.tensor(gy, device=device))
    expected = [[gy[0, 0, 2 * i:2 * i + 2, 3 * j:3 * j + 3].sum() for j in range(2)] for i in range(2)]
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 2), C=st.integers(1, 2), spatial=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       data=st.data())
def test_interpolate_gradcheck(device, N, C, spatial, data):
    scales = data.draw(st.tuples(*[st.integers(1, 3)] * len(spatial)), label="scales")
    by_size = data.draw(st.booleans(), label="by_size")
    kw = {"size": tuple(n * s for n, s in zip(spatial, scales))} if by_size else {"scale_factor": scales}
    x = mc.tensor(distinct_values((N, C, *spatial), seed=sum(spatial)), dtype=np.float64, device=device)
    mc.gradcheck(lambda t: F.interpolate(t, **kw), [x])


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 3), W=st.integers(1, 3), r=st.integers(1, 3))
def test_pixel_shuffle_matches_reference_and_unshuffle_inverts_it(device, N, C, H, W, r):
    x = distinct_values((N, C * r * r, H, W), seed=r).astype(np.float32)
    y = F.pixel_shuffle(mc.tensor(x, device=device), r)
    np.testing.assert_array_equal(y.numpy(), pixel_shuffle_ref(x, r))
    np.testing.assert_array_equal(F.pixel_unshuffle(y, r).numpy(), x)


def test_pixel_unshuffle_channel_order_is_pytorchs():
    # 1 channel 2x2 -> 4 channels 1x1: channel i * 2 + j holds pixel (i, j)
    x = mc.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert F.pixel_unshuffle(x, 2).numpy().ravel().tolist() == [1, 2, 3, 4]
    assert F.pixel_unshuffle(mc.tensor(np.zeros((5, 2, 3, 4, 6))), 2).shape == (5, 2, 12, 2, 3)   # extra batch dims


@pytest.mark.parametrize("device", DEVICES)
@given(N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 3), W=st.integers(1, 3), r=st.integers(1, 3))
def test_pixel_shuffle_gradchecks(device, N, C, H, W, r):
    x = mc.tensor(distinct_values((N, C * r * r, H, W), seed=H * W), dtype=np.float64, device=device)
    mc.gradcheck(lambda t: F.pixel_shuffle(t, r), [x])
    x = mc.tensor(distinct_values((N, C, H * r, W * r), seed=H + W), dtype=np.float64, device=device)
    mc.gradcheck(lambda t: F.pixel_unshuffle(t, r), [x])


@pytest.mark.parametrize("call, message", [
    (lambda x: F.interpolate(x, scale_factor=1.5), "interpolate: scale_factor 1.5 must be positive integers"),
    (lambda x: F.interpolate(x, size=(5, 6)), "interpolate: size (5, 6) is not a positive integer multiple"),
    (lambda x: F.interpolate(x, size=(4, 6, 2)), "needs 2 entries"),
    (lambda x: F.interpolate(x), "give exactly one of size or scale_factor"),
    (lambda x: F.interpolate(x, 4, 2), "give exactly one of size or scale_factor"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), "mode 'bilinear' is not supported"),
    (lambda x: F.interpolate(x.reshape(6), scale_factor=2), "interpolate: input must have at least 3 dims"),
    (lambda x: F.pixel_shuffle(x, 2), "pixel_shuffle: input channels 1 (shape (1, 1, 2, 3)) are not divisible"),
    (lambda x: F.pixel_unshuffle(x, 2), "pixel_unshuffle: spatial size 2x3"),
    (lambda x: F.pixel_unshuffle(x, 0), "downscale_factor must be a positive int"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError) as err:
        call(mc.tensor(np.zeros((1, 1, 2, 3))))
    assert message in str(err.value)
