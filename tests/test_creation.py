"""PyTorch's tensor factories, dtypes, mc.device and mc.cuda: shapes, dtypes, values and seeding vs NumPy."""
import numpy as np
import pytest
from helpers import DEVICES, to_cpu

import minicnn as mc


def test_dtype_names_are_numpy_dtypes():
    assert mc.float32 == np.float32 and mc.float == np.float32 and mc.double == np.float64
    assert mc.long == np.int64 and mc.int == np.int32 and mc.bool == np.bool_ and mc.uint8 == np.uint8
    assert mc.zeros(2).dtype == mc.float32 and mc.get_default_dtype() == mc.float32


@pytest.mark.parametrize("device", DEVICES)
def test_filled_factories(device):
    for f, v in ((mc.zeros, 0), (mc.ones, 1), (mc.empty, 0)):
        for shape_args in ((2, 3), ((2, 3),), ([2, 3],)):
            t = f(*shape_args, device=device)
            assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device and t.is_leaf
            np.testing.assert_array_equal(to_cpu(t.data), np.full((2, 3), v, np.float32))
    assert mc.zeros(2, dtype=mc.int64).dtype == np.int64 and mc.zeros(()).shape == ()
    assert mc.full((2,), 3).dtype == np.int64 and mc.full((2,), 3.0).dtype == np.float32
    assert mc.full((2,), True).dtype == np.bool_ and mc.full((2,), 7, dtype=mc.float64).dtype == np.float64
    np.testing.assert_array_equal(mc.full((2, 2), 2.5, device=device).numpy(), np.full((2, 2), 2.5))
    np.testing.assert_array_equal(mc.eye(2, 3).numpy(), np.eye(2, 3))
    z = mc.zeros(3, requires_grad=True)
    assert z.requires_grad and z.is_leaf
    with pytest.raises(ValueError, match="zeros: size must be non-negative integers"):
        mc.zeros(-1)
    with pytest.raises(TypeError, match="requires_grad needs a floating-point dtype"):
        mc.zeros(2, dtype=mc.int64, requires_grad=True)


def test_ranges():
    a = mc.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert mc.arange(2, 8, 3).tolist() == [2, 5]
    b = mc.arange(0, 1, 0.25)
    assert b.dtype == np.float32 and b.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert mc.arange(0.0, 3).dtype == np.float32 and mc.arange(5, dtype=mc.float64).dtype == np.float64
    l = mc.linspace(0, 1, 5)
    assert l.dtype == np.float32
    np.testing.assert_allclose(l.numpy(), np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        mc.arange(0, 3, 0)


def test_random_factories_follow_the_seed_and_their_laws():
    mc.manual_seed(0)
    a = mc.randn(1000, 10)
    mc.manual_seed(0)
    b = mc.randn(1000, 10)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.float32 and abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1) < 0.05
    r = mc.rand(2000)
    assert r.dtype == np.float32 and 0 <= float(r.min()) and float(r.max()) < 1 and abs(float(r.mean()) - 0.5) < 0.03
    i = mc.randint(3, 7, (500,))
    assert i.dtype == np.int64 and set(i.tolist()) == {3, 4, 5, 6}
    assert set(mc.randint(2, (100,)).tolist()) == {0, 1}
    p = mc.randperm(10)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(10))
    n = mc.normal(2.0, 0.5, size=(4000,))
    assert abs(float(n.mean()) - 2) < 0.05 and abs(float(n.std()) - 0.5) < 0.05
    m = mc.normal(mc.tensor([0.0, 100.0]), mc.tensor([1e-6, 1e-6]))
    np.testing.assert_allclose(m.numpy(), [0, 100], atol=1e-3)
    g1, g2 = mc.Generator().manual_seed(5), mc.Generator().manual_seed(5)
    np.testing.assert_array_equal(mc.rand(4, generator=g1).numpy(), mc.rand(4, generator=g2).numpy())
    assert mc.randn(3, dtype=mc.float64).dtype == np.float64


def test_like_and_new_forms_take_shape_dtype_device():
    x = mc.tensor(np.arange(6.0).reshape(2, 3), dtype=mc.float64)
    for f in (mc.zeros_like, mc.ones_like, mc.empty_like, mc.rand_like, mc.randn_like):
        y = f(x)
        assert y.shape == (2, 3) and y.dtype == np.float64 and y.device == x.device
    assert mc.full_like(x, 7).numpy().tolist() == [[7.0] * 3] * 2 and mc.zeros_like(x, dtype=mc.int64).dtype == np.int64
    assert mc.randint_like(x, 5).dtype == np.float64 and float(mc.randint_like(x, 5).max()) < 5
    assert x.new_zeros(4).dtype == np.float64 and x.new_ones((1, 2)).shape == (1, 2)
    assert x.new_full((2,), 3).numpy().tolist() == [3.0, 3.0] and x.new_tensor([1, 2]).dtype == np.float64


def test_as_tensor_and_from_numpy_share_memory():
    a = np.arange(4.0)
    t = mc.from_numpy(a)
    assert t.dtype == np.float64 and t.is_leaf
    a[0] = 9
    assert t.tolist()[0] == 9
    t.add_(1)
    assert a.tolist() == [10, 2, 3, 4]
    assert mc.as_tensor(a).dtype == np.float64 and mc.as_tensor([1.5]).dtype == np.float32
    s = mc.tensor([1.0])
    assert mc.as_tensor(s) is s and mc.as_tensor(s, dtype=mc.float64).dtype == np.float64
    assert mc.is_tensor(s) and not mc.is_tensor(a) and mc.numel(mc.zeros(2, 3)) == 6
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray"):
        mc.from_numpy([1, 2])


def test_device_objects():
    d = mc.device("cuda:0")
    assert d.type == "cuda" and d.index == 0 and str(d) == "cuda:0" and repr(d) == "device(type='cuda', index=0)"
    assert mc.device("cuda", 0) == d and mc.device("cpu") == "cpu" and mc.device(mc.device("cpu")).type == "cpu"
    assert mc.device("cpu").index is None and hash(mc.device("cpu")) == hash(mc.device("cpu"))
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda'"):
        mc.device("tpu")
    t = mc.tensor([1.0]).to(mc.device("cpu"))
    assert t.device == "cpu"


def test_cuda_module_matches_the_backend():
    from minicnn import backend
    assert mc.cuda.is_available() == backend.cuda_available()
    assert mc.cuda.device_count() == (0 if not backend.cuda_available() else mc.cuda.device_count())
    assert mc.cuda.device_count() >= (1 if backend.cuda_available() else 0)
    mc.cuda.synchronize()
    mc.cuda.manual_seed(3)
    a = mc.rand(3)
    mc.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), mc.rand(3).numpy())
    assert mc.backends.mps.is_available() is False and mc.backends.cudnn.benchmark in (True, False)
    assert mc.accelerator.is_available() == mc.cuda.is_available()
    assert mc.accelerator.current_accelerator() == (mc.device("cuda") if mc.cuda.is_available() else None)


def test_to_accepts_dtype_device_and_tensor():
    x = mc.tensor([1.5, 2.5], requires_grad=True)
    y = x.to(mc.float64)
    assert y.dtype == np.float64 and x.to("cpu") is x and x.to(mc.device("cpu"), mc.float32) is x
    assert x.to(mc.zeros(1, dtype=mc.float64)).dtype == np.float64 and x.to(dtype=mc.float64).dtype == np.float64
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])
    assert x.type_as(mc.zeros(1, dtype=mc.float64)).dtype == np.float64 and x.long().dtype == np.int64
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_ and x.float().dtype == np.float32
