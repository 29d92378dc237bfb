"""The backward walk, no_grad, graph freeing, gradcheck itself, and the Tensor surface."""
import gc
import tracemalloc

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.autograd import Function
from helpers import randn


def test_tensor_dtypes_and_surface():
    assert mc.tensor([1.5, 2.0]).dtype == np.float32
    assert mc.tensor(np.ones(3)).dtype == np.float32              # floats -> float32 unless dtype=
    assert mc.tensor(np.ones(3), dtype=np.float64).dtype == np.float64
    assert mc.tensor([1, 2]).dtype.kind == "i"                     # labels stay integers
    t = mc.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.device == "cpu" and t.requires_grad
    np.testing.assert_array_equal(np.asarray(t), np.arange(6.0).reshape(2, 3))
    assert t.detach().requires_grad is False
    assert t.to("cpu") is t
    with pytest.raises(TypeError, match="requires_grad needs a floating-point tensor, got dtype int"):
        mc.tensor([1, 2], requires_grad=True)
    with pytest.raises(ValueError, match="unknown device"):
        t.to("tpu")


def test_grad_accumulates_and_is_a_tensor():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert isinstance(x.grad, mc.Tensor)
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_shared_subexpression_gets_both_paths():
    x = mc.tensor([3.0], requires_grad=True)
    y = x * x
    (y + y * x).sum().backward()                   # d/dx (x^2 + x^3) = 2x + 3x^2
    np.testing.assert_allclose(x.grad.numpy(), [6 + 27])


def test_backward_errors():
    x = mc.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element output, got shape \(2, 2\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient shape \(3,\) does not match output shape \(2, 2\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        mc.tensor([1.0]).sum().backward()
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="freed"):
        z = x * 2
        w = z.sum()
        w.backward()
        w2 = (z * 1).sum()
        w2.backward()


def test_backward_with_explicit_gradient():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(mc.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2, 40])


def test_no_grad_records_nothing():
    x = mc.tensor([1.0], requires_grad=True)
    with mc.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    assert mc.is_grad_enabled()


def test_long_chain_has_no_recursion_limit():
    x = mc.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(1000):
        y = y * 1.001 + 0.0
    y.sum().backward()                             # 2,000 ops deep: an iterative walk
    np.testing.assert_allclose(x.grad.numpy(), [1.001 ** 1000], rtol=1e-4)


def test_graph_is_freed_after_backward():
    x = mc.tensor(np.ones(1000), requires_grad=True)
    y = (x * 2).exp()
    loss = y.sum()
    loss.backward()
    assert loss._ctx is None and y._ctx is None   # the Functions, and their saved arrays, are released


def test_memory_does_not_grow_over_training_steps():
    mc.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, t = mc.tensor(randn(32, 20)), mc.tensor(np.arange(32) % 3)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()

    for _ in range(20):                            # warm up: optimizer state, caches
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(200):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, f"memory grew by {grown} bytes over 200 steps"


class _WrongSquare(Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x                        # wrong: should be 2 x


def test_gradcheck_catches_a_wrong_backward_and_names_the_element():
    with pytest.raises(AssertionError, match=r"input 0 .* at index .*analytic .*numeric"):
        mc.gradcheck(lambda t: _WrongSquare()(t), [randn(3, 2)])


def test_gradcheck_samples_big_inputs():
    assert mc.gradcheck(lambda t: (t * t).sum(axis=1), [randn(40, 40)], max_elements=20)


@pytest.mark.parametrize("device", ["cuda"])                 # the device param gives it the cuda marker
@pytest.mark.skipif(not mc.cuda_available(), reason="needs a GPU, or NUMBA_ENABLE_CUDASIM=1 for the simulator")
def test_device_mismatch_is_an_error(device):
    a, b = mc.tensor([[1.0, 2.0]], requires_grad=True), mc.tensor([[1.0], [3.0]], device=device)
    for op in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: F.linear(a, b.reshape(1, 2))):
        with pytest.raises(RuntimeError, match=f"expected all tensors on one device, got (cpu and {device}|"
                                               f"{device} and cpu)"):
            op()
    assert a.grad is None and b.device == device
    np.testing.assert_array_equal((a.to(device) @ b).numpy(), [[7.0]])   # same device: fine


def test_leaf_gradients_never_share_memory():
    a = mc.tensor(np.ones((2, 3)), requires_grad=True)
    b = mc.tensor(np.ones(6), requires_grad=True)
    (a + b.reshape(2, 3)).sum().backward()        # add hands gy to both; reshape's backward is a view of it
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), 1)


def test_backward_uses_the_callers_gradient_without_letting_grad_alias_it():
    """backward(g) reads g as is (no copy of a big upstream gradient), but a leaf's .grad never shares g's
    memory: changing g afterwards leaves the gradients alone (leaf itself, through a view-returning reshape)."""
    x = mc.tensor(np.ones((2, 3)), requires_grad=True)
    g = np.full((2, 3), 2.0, np.float32)
    x.backward(g)
    g[...] = 7
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
    x.grad = None
    g6 = np.full(6, 4.0, np.float32)
    x.reshape(6).backward(g6)
    g6[...] = 9
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))


def test_a_third_gradient_is_summed_without_touching_a_shared_one():
    """x gets three gradients: the first is the very array the outer add also hands to t, so the engine sums into
    a new array of its own, then the third into that one in place; t's gradient and the caller's stay as given."""
    x = mc.tensor(np.ones((4, 64, 300), np.float32), requires_grad=True)   # past the kernels' parallel threshold
    t = x + x
    g = np.full(x.shape, 2.0, np.float32)
    t.retain_grad()
    (t + x).backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), 6.0)
    np.testing.assert_array_equal(t.grad.numpy(), 2.0)
    np.testing.assert_array_equal(g, 2.0)
