"""max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d: float64 gradchecks on drawn geometries,
float32 values against the NumPy references, indices, 3-d inputs, devices, and the errors for bad arguments."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, distinct_values, to_cpu
from minicnn.kernels import adaptive_pool, pool

pairs = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))   # noqa: E731


@st.composite
def configs(draw, dilation=True):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(2, 7)), draw(st.integers(2, 7)))
    k, s = draw(pairs(1, 3)), draw(pairs(1, 3))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d, ceil_mode = draw(pairs(1, 2)) if dilation else (1, 1), draw(st.booleans())
    assume(min(pool.pool_output_size(n, *g, ceil_mode) for n, g in zip(shape[2:], zip(k, s, p, d))) >= 1)
    return shape, k, s, p, d, ceil_mode


@given(c=configs())
def test_max_pool2d_gradcheck(c):
    shape, k, s, p, d, ceil_mode = c
    mc.gradcheck(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode), [distinct_values(shape, seed=sum(shape))])


@given(c=configs(dilation=False), count_include_pad=st.booleans(), divisor_override=st.sampled_from([None, 2]))
def test_avg_pool2d_gradcheck(c, count_include_pad, divisor_override):
    shape, k, s, p, _, ceil_mode = c
    mc.gradcheck(lambda t: F.avg_pool2d(t, k, s, p, ceil_mode, count_include_pad, divisor_override),
                 [distinct_values(shape, seed=sum(shape))])


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 6), st.integers(1, 6)),
       out=pairs(1, 5))
def test_adaptive_pool2d_gradcheck(shape, out):
    x = distinct_values(shape, seed=sum(shape))
    mc.gradcheck(lambda t: F.adaptive_avg_pool2d(t, out), [x])
    mc.gradcheck(lambda t: F.adaptive_max_pool2d(t, out), [x])


@given(c=configs())
def test_forward_float32_matches_reference(c):
    shape, k, s, p, d, ceil_mode = c
    x = distinct_values(shape, seed=1).astype(np.float32)
    y, idx = F.max_pool2d(mc.tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    y_ref, arg_ref = pool.max_pool_forward_ref(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y.numpy(), y_ref)
    assert idx.dtype == np.int64 and np.array_equal(idx.numpy(), arg_ref)
    y = F.avg_pool2d(mc.tensor(x), k, s, p, ceil_mode, False)
    np.testing.assert_allclose(y.numpy(), pool.avg_pool_forward_ref(x, k, s, p, ceil_mode, False), rtol=1e-5,
                               atol=1e-7)


def test_adaptive_forward_float32_and_none_entries():
    x = distinct_values((2, 3, 5, 7), seed=2).astype(np.float32)
    y = F.adaptive_avg_pool2d(mc.tensor(x), (None, 3))                      # None keeps the height
    assert y.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(y.numpy(), adaptive_pool.adaptive_avg_pool_forward_ref(x, (5, 3)), rtol=1e-5)
    y, idx = F.adaptive_max_pool2d(mc.tensor(x), 2, return_indices=True)
    y_ref, arg_ref = adaptive_pool.adaptive_max_pool_forward_ref(x, (2, 2))
    np.testing.assert_array_equal(y.numpy(), y_ref)
    np.testing.assert_array_equal(idx.numpy(), arg_ref)


def test_three_d_input_is_one_unbatched_image():
    x = distinct_values((3, 6, 5), seed=3)
    t = mc.tensor(x, dtype=np.float64, requires_grad=True)
    y, idx = F.max_pool2d(t, 2, return_indices=True)
    y4, idx4 = F.max_pool2d(mc.tensor(x[None], dtype=np.float64), 2, return_indices=True)
    assert y.shape == (3, 3, 2) and idx.shape == (3, 3, 2)
    np.testing.assert_array_equal(y.numpy(), y4.numpy()[0])
    np.testing.assert_array_equal(idx.numpy(), idx4.numpy()[0])
    assert F.avg_pool2d(t, 3, 1, 1).shape == (3, 6, 5) and F.adaptive_avg_pool2d(t, 1).shape == (3, 1, 1)
    mc.gradcheck(lambda a: F.max_pool2d(a, 3, 2, 1), [x])


def test_max_pool2d_sends_each_gradient_to_its_argmax():
    x = mc.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)  # maxima at the bottom-right corners
    F.max_pool2d(x, 2).backward(mc.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_cuda_matches_cpu(device):
    x = distinct_values((1, 2, 5, 4), seed=4)
    runs = {}
    for dev in ("cpu", device):
        t = mc.tensor(x, dtype=np.float32, device=dev, requires_grad=True)
        ys = [F.max_pool2d(t, 3, 2, 1, ceil_mode=True), F.avg_pool2d(t, 2, 1, 1, count_include_pad=False),
              F.adaptive_avg_pool2d(t, (2, 3)), F.adaptive_max_pool2d(t, 3)]
        (mc.concat([y.reshape(-1) for y in ys]) * mc.tensor(np.arange(108.0), device=dev)).sum().backward()
        runs[dev] = [y.numpy() for y in ys] + [t.grad.numpy()]
    for a, b in zip(runs["cpu"], runs[device]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    mc.gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1, True), [mc.tensor(x, dtype=np.float64, device=device)])


@pytest.mark.parametrize("call, message", [
    (lambda x: F.max_pool2d(x, 5), "max_pool2d: kernel_size (5, 5) exceeds input 4x4"),
    (lambda x: F.max_pool2d(x, 3, dilation=2), "spans 5x5"),
    (lambda x: F.max_pool2d(x, 2, stride=0), "max_pool2d: stride must be positive"),
    (lambda x: F.max_pool2d(x, 0), "max_pool2d: kernel_size must be positive"),
    (lambda x: F.max_pool2d(x, 3, padding=2), "max_pool2d: padding (2, 2) should be at most half of kernel_size"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), "kernel_size must be an int or a pair"),
    (lambda x: F.avg_pool2d(x, 2, padding=-1), "avg_pool2d: padding must be non-negative"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), "avg_pool2d: divisor_override must be a positive int"),
    (lambda x: F.avg_pool2d(x.reshape(16), 2), "avg_pool2d: input must be 4-d (N, C, H, W) or 3-d"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), "adaptive_avg_pool2d: output_size must be positive"),
    (lambda x: F.adaptive_max_pool2d(x, (1, 2, 3)), "adaptive_max_pool2d: output_size must be an int or a pair"),
    (lambda x: F.max_pool2d(x.numpy(), 2), "max_pool2d: input must be a Tensor"),
    (lambda x: F.max_pool2d(mc.tensor(np.zeros((1, 1, 4, 4), np.int64)), 2), "must be floating point"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError)) as err:
        call(mc.tensor(np.zeros((1, 1, 4, 4))))
    assert message in str(err.value)


@pytest.mark.parametrize("device", DEVICES)
def test_global_average_pooling_is_the_mean(device):
    """Output size 1 (ResNets' head) takes a shortcut around the adaptive-bin kernels: values and gradients."""
    x = distinct_values((2, 3, 5, 4), seed=3)
    t = mc.tensor(x, dtype=np.float64, device=device, requires_grad=True)
    y = F.adaptive_avg_pool2d(t, 1)
    np.testing.assert_allclose(to_cpu(y.data), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    y.backward(mc.tensor(np.arange(6.0).reshape(2, 3, 1, 1), dtype=np.float64, device=device))
    np.testing.assert_allclose(to_cpu(t.grad.data), np.broadcast_to(np.arange(6.0).reshape(2, 3, 1, 1) / 20, x.shape))
    mc.gradcheck(lambda a: F.adaptive_avg_pool2d(a, (1, 1)), [x])
