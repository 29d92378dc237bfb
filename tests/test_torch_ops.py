"""PyTorch's tensor functions and methods against NumPy references, and their gradients against finite
differences (float64, hypothesis shapes, broadcasting)."""
import numpy as np
import pytest
from helpers import DEVICES, distinct_values, to_cpu
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def t64(a, requires_grad=False):
    return mc.tensor(a, dtype=mc.float64, requires_grad=requires_grad)


def gather_ref(x, dim, idx):
    out = np.empty(idx.shape, x.dtype)
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        src[dim] = idx[pos]
        out[pos] = x[tuple(src)]
    return out


@given(shapes, st.data())
def test_gather_matches_reference_and_gradchecks(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    idx_shape = tuple(data.draw(st.integers(1, n)) if d != dim else data.draw(st.integers(1, 5))
                      for d, n in enumerate(shape))
    rng = np.random.default_rng(len(shape) + dim)
    idx = rng.integers(0, shape[dim], idx_shape)          # repeats included: their gradients must add up
    x = distinct_values(shape, seed=dim)
    np.testing.assert_array_equal(mc.gather(t64(x), dim, mc.tensor(idx)).numpy(), gather_ref(x, dim, idx))
    np.testing.assert_array_equal(t64(x).gather(dim - len(shape), mc.tensor(idx)).numpy(), gather_ref(x, dim, idx))
    mc.gradcheck(lambda a: mc.gather(a, dim, mc.tensor(idx)), [x])


def test_gather_errors_name_the_problem():
    x = mc.zeros(2, 3)
    with pytest.raises(IndexError, match=r"gather: index out of range for dim 1 of size 3"):
        mc.gather(x, 1, mc.tensor([[3]]))
    with pytest.raises(ValueError, match=r"gather: index has 1 dims but the tensor has 2"):
        mc.gather(x, 1, mc.tensor([0]))
    with pytest.raises(TypeError, match="gather: index must be an integer tensor"):
        mc.gather(x, 1, mc.tensor([[0.5]]))


def test_scatter_and_scatter_add():
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[0, 2], [1, 1], [3, 0]])
    src = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0], [70.0, 80.0, 90.0]])
    ref = x.copy()
    for i in range(3):
        for j in range(2):
            ref[i, idx[i, j]] = src[i, j]
    np.testing.assert_array_equal(mc.scatter(t64(x), 1, mc.tensor(idx), t64(src)).numpy(), ref)
    ref_add = x.copy()
    for i in range(3):
        for j in range(2):
            ref_add[i, idx[i, j]] += src[i, j]
    np.testing.assert_array_equal(mc.scatter_add(t64(x), 1, mc.tensor(idx), t64(src)).numpy(), ref_add)
    one_hot = mc.zeros(3, 5).scatter_(1, mc.tensor([[1], [4], [0]]), 1.0)          # the classic one-hot
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(5)[[1, 4, 0]])
    uniq = np.array([[0, 2], [1, 3], [3, 0]])                                     # no collisions: exact gradients
    mc.gradcheck(lambda a, s: mc.scatter(a, 1, mc.tensor(uniq), s), [x, src])
    mc.gradcheck(lambda a, s: mc.scatter_add(a, 1, mc.tensor(idx), s), [x, src])
    mc.gradcheck(lambda a: mc.scatter(a, 0, mc.tensor([[2, 0, 1, 2]]), 5.0), [x])


@given(shapes, st.data())
def test_masked_fill_broadcasts_the_mask(shape, data):
    mshape = tuple(data.draw(st.sampled_from([1, n])) for n in shape)
    mask = np.random.default_rng(len(shape)).random(mshape) < 0.5
    x = distinct_values(shape, seed=2)
    np.testing.assert_array_equal(t64(x).masked_fill(mc.tensor(mask), -7.0).numpy(), np.where(mask, -7.0, x))
    mc.gradcheck(lambda a: mc.masked_fill(a, mc.tensor(mask), 3.0), [x])
    with pytest.raises(TypeError, match="masked_fill: mask must be a bool tensor"):
        mc.masked_fill(t64(x), mc.tensor(mask.astype(np.int64)), 0.0)


def test_masked_fill_rejects_a_mask_that_would_grow_the_input():
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2, 3\) does not broadcast to the input's \(3,\)"):
        mc.zeros(3).masked_fill(mc.zeros(2, 3).eq(0), 1.0)


@given(shapes, st.data())
def test_sort_topk_argsort_against_numpy(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = distinct_values(shape, seed=3)
    v, i = mc.sort(t64(x), dim=dim)
    np.testing.assert_array_equal(v.numpy(), np.sort(x, axis=dim))
    np.testing.assert_array_equal(i.numpy(), np.argsort(x, axis=dim))
    vd, _ = t64(x).sort(dim, descending=True)
    np.testing.assert_array_equal(vd.numpy(), np.flip(np.sort(x, axis=dim), dim))
    k = data.draw(st.integers(1, shape[dim]))
    tv, ti = t64(x).topk(k, dim=dim)
    np.testing.assert_array_equal(tv.numpy(), np.take(np.flip(np.sort(x, axis=dim), dim), range(k), axis=dim))
    np.testing.assert_array_equal(np.take_along_axis(x, ti.numpy(), dim), tv.numpy())
    sv, _ = mc.topk(t64(x), k, dim=dim, largest=False)
    np.testing.assert_array_equal(sv.numpy(), np.take(np.sort(x, axis=dim), range(k), axis=dim))
    assert i.dtype == np.int64 and ti.dtype == np.int64
    mc.gradcheck(lambda a: mc.topk(a, k, dim=dim).values, [x])
    mc.gradcheck(lambda a: mc.sort(a, dim=dim, descending=True)[0], [x])


def test_sort_is_stable_and_topk_checks_k():
    x = mc.tensor([2.0, 1.0, 2.0, 1.0])
    assert mc.sort(x).indices.tolist() == [1, 3, 0, 2] and mc.sort(x, descending=True).indices.tolist() == [0, 2, 1, 3]
    assert mc.argsort(mc.tensor([3, 1, 2], dtype=mc.uint8), descending=True).tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="topk: k=5 is out of range for dim -1 of size 4"):
        mc.topk(x, 5)


def test_max_min_argmin_torch_forms():
    x = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    v, i = mc.max(t64(x), 1)
    assert v.tolist() == [5, 6] and i.tolist() == [1, 2] and i.dtype == np.int64
    v, i = t64(x).min(dim=0, keepdim=True)
    assert v.tolist() == [[1, 2, 3]] and i.tolist() == [[0, 1, 0]]
    assert float(mc.max(t64(x))) == 6 and t64(x).max(axis=1).tolist() == [5, 6]     # minicnn's axis= form
    np.testing.assert_array_equal(mc.max(t64(x), t64(x[::-1].copy())).numpy(), np.maximum(x, x[::-1]))
    np.testing.assert_array_equal(mc.min(t64(x), t64(x[::-1].copy())).numpy(), np.minimum(x, x[::-1]))
    assert mc.argmin(t64(x), 1).tolist() == [0, 1] and t64(x).argmin().item() == 0
    assert t64(x).argmin(1, keepdim=True).shape == (2, 1)
    mc.gradcheck(lambda a: a.max(1).values, [distinct_values((3, 4))])


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 0.5, float("inf"), float("-inf")])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), (1, True), ((0, 2), False)])
def test_norm_against_numpy(p, dim, keepdim):
    x = distinct_values((2, 3, 4), seed=4)
    pn = 2 if p == "fro" else p
    axes = tuple(range(3)) if dim is None else (dim,) if isinstance(dim, int) else dim
    a = np.abs(x)
    ref = (a.max(axis=axes, keepdims=keepdim) if pn == np.inf else a.min(axis=axes, keepdims=keepdim)
           if pn == -np.inf else (a ** pn).sum(axis=axes, keepdims=keepdim) ** (1 / pn))
    np.testing.assert_allclose(mc.norm(t64(x), p=p, dim=dim, keepdim=keepdim).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(t64(x).norm(p, dim, keepdim).numpy(), ref, rtol=1e-12)
    mc.gradcheck(lambda t: mc.norm(t, p=p, dim=dim, keepdim=keepdim), [x])


def test_norm_at_zero_has_zero_gradient_and_p0_counts():
    z = mc.zeros(3, dtype=mc.float64, requires_grad=True)
    mc.norm(z).backward()
    assert z.grad.tolist() == [0, 0, 0]
    assert mc.norm(mc.tensor([0.0, 2.0, -1.0]), p=0).item() == 2
    with pytest.raises(TypeError, match="norm: needs a floating-point tensor"):
        mc.norm(mc.tensor([1, 2]))


@given(shapes, st.data())
def test_repeat_matches_tile(shape, data):
    sizes = tuple(data.draw(st.integers(1, 3)) for _ in range(len(shape) + data.draw(st.integers(0, 1))))
    x = distinct_values(shape, seed=5)
    np.testing.assert_array_equal(t64(x).repeat(*sizes).numpy(), np.tile(x, sizes))
    np.testing.assert_array_equal(mc.repeat(t64(x), sizes).numpy(), np.tile(x, sizes))
    mc.gradcheck(lambda a: a.repeat(*sizes), [x])


def test_repeat_needs_a_size_per_dim():
    with pytest.raises(ValueError, match=r"repeat: 1 sizes for a tensor of 2 dims"):
        mc.zeros(2, 2).repeat(2)


@given(st.integers(1, 9), st.integers(1, 5))
def test_chunk_and_split_sizes(n, chunks):
    x = mc.arange(n)
    parts = x.chunk(chunks)
    size = -(-n // chunks)
    assert [p.shape[0] for p in parts] == [len(c) for c in np.array_split(np.arange(n), range(size, n, size))]
    assert sum((p.tolist() for p in parts), []) == list(range(n))
    assert [p.tolist() for p in x.split(2)] == [list(range(i, min(i + 2, n))) for i in range(0, n, 2)]


def test_chunk_gradient():
    mc.gradcheck(lambda a: mc.cat([c * (i + 1) for i, c in enumerate(a.chunk(3, dim=1))], dim=1),
                 [distinct_values((2, 7))])


def test_where_comparisons_clamp_allclose():
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    cond = x > 0
    rows, cols = mc.where(t64(x) > 0)
    assert (rows.tolist(), cols.tolist()) == tuple(v.tolist() for v in np.nonzero(cond))
    assert mc.nonzero(t64(x) > 0).tolist() == np.argwhere(cond).tolist()
    np.testing.assert_array_equal(mc.where(mc.tensor(cond), t64(x), 0.0).numpy(), np.where(cond, x, 0))
    mc.gradcheck(lambda a, b: mc.where(mc.tensor(cond), a, b), [x, np.arange(3.0) + 0.5])
    for name, op in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                     ("gt", np.greater), ("ge", np.greater_equal)):
        np.testing.assert_array_equal(getattr(t64(x), name)(1.0).numpy(), op(x, 1.0))
        np.testing.assert_array_equal(getattr(mc, name)(t64(x), t64(x[::-1].copy())).numpy(), op(x, x[::-1]))
    np.testing.assert_array_equal(t64(x).clamp(-3, 2).numpy(), np.clip(x, -3, 2))
    np.testing.assert_array_equal(t64(x).clamp(min=0).numpy(), np.clip(x, 0, None))
    lo = np.array([0.0, -1.0, 10.0])
    np.testing.assert_array_equal(mc.clamp(t64(x), min=t64(lo)).numpy(), np.maximum(x, lo))
    mc.gradcheck(lambda a: a.clamp(-3.5, 2.5), [x])
    mc.gradcheck(lambda a, b: mc.clamp(a, min=b), [x, lo + 0.25])
    assert mc.allclose(t64(x), t64(x + 1e-9)) and not mc.allclose(t64(x), t64(x + 1e-3))
    assert mc.equal(t64(x), t64(x)) and not mc.equal(t64(x), t64(x[:1]))
    assert (t64(x) == t64(x)).sum().item() == 6 and isinstance((t64(x) > 0).sum().item(), int)


def test_view_as_expand_as_clone_std_t():
    x = t64(np.arange(6.0), requires_grad=True)
    y = x.view_as(mc.zeros(2, 3))
    assert y.shape == (2, 3) and mc.zeros(1, 3).expand_as(y).shape == (2, 3)
    c = x.clone()
    assert c is not x and c.tolist() == x.tolist()
    (c * c).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(6.0))
    np.testing.assert_allclose(t64(np.arange(6.0)).std().item(), np.arange(6.0).std(ddof=1))
    assert y.t().shape == (3, 2) and x.contiguous() is x and x.is_contiguous()
    assert x.add(2, alpha=3).tolist() == (np.arange(6.0) + 6).tolist() and x.sub(x).sum().item() == 0


# ---- in place ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_inplace_ops_write_into_the_tensor(device):
    a = np.arange(6.0).reshape(2, 3)
    t = mc.tensor(a, dtype=mc.float64, device=device)
    view = t.data
    t.add_(1).mul_(2).sub_(mc.tensor([1.0, 1.0, 1.0], dtype=mc.float64, device=device), alpha=2).div_(2)
    np.testing.assert_array_equal(to_cpu(view), a)           # ((a + 1) * 2 - 2) / 2 = a, in the same buffer
    t.clamp_(1, 4)
    np.testing.assert_array_equal(to_cpu(t.data), np.clip(a, 1, 4))
    t.copy_(mc.tensor([7.0, 8.0, 9.0], device=device))          # broadcast and cast to float64
    assert t.dtype == np.float64 and to_cpu(t.data).tolist() == [[7, 8, 9]] * 2
    t.fill_(3).pow_(2).neg_().abs_().sqrt_()
    assert to_cpu(t.data).tolist() == [[3] * 3] * 2
    t.masked_fill_(t.gt(0), 0.5).exp_()
    np.testing.assert_allclose(to_cpu(t.data), np.exp(0.5))
    t.zero_()
    assert to_cpu(view).sum() == 0
    with pytest.raises(RuntimeError, match="add_: result type float64 can't be cast to the tensor's dtype int64"):
        mc.tensor([1, 2]).add_(0.5)
    with pytest.raises(RuntimeError, match=r"add_: the result's shape \(2, 3\) differs from the tensor's \(3,\)"):
        mc.zeros(3).add_(mc.zeros(2, 3))


def test_inplace_in_a_graph_is_differentiable():
    x = t64(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    w = t64(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = x * 2                                     # a non-leaf: may change in place
    y.mul_(w).add_(1)
    y.masked_fill_(mc.tensor([False, True, False]), 0.0)
    (y * y).sum().backward()
    ref = np.where([True, False, True], 2 * (2 * np.array([1.0, 2, 3]) * np.array([0.5, -1, 2]) + 1), 0)
    np.testing.assert_allclose(x.grad.numpy(), ref * 2 * np.array([0.5, -1, 2]))
    np.testing.assert_allclose(w.grad.numpy(), ref * 2 * np.array([1.0, 2, 3]))
    mc.gradcheck(lambda a, b: (a * 1.0).mul_(b).add_(b).clamp_(-1, 5), [np.array([1.0, 2, 3]), np.array([0.5, 3, 2])])
    mc.gradcheck(lambda a, b: (a * 1.0).copy_(b), [np.array([[1.0, 2]]), np.array([0.5, 3])])


def test_inplace_refuses_what_would_break_gradients():
    x = mc.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad cannot be changed in place"):
        x.add_(1)
    with mc.no_grad():
        x.add_(1)                                 # the optimizer's way: fine
    assert x.tolist() == [1, 1, 1] and x.is_leaf
    a = x * 2
    b = a * a                                     # b's backward needs a as it is now
    with pytest.raises(RuntimeError, match="mul_: this tensor was already used by another op of the graph"):
        a.mul_(3)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.ones(3))


def test_random_fills():
    mc.manual_seed(1)
    u = mc.zeros(4000).uniform_(-2, 2)
    assert -2 <= float(u.min()) and float(u.max()) < 2 and abs(float(u.mean())) < 0.1
    n = mc.zeros(4000, dtype=mc.float64).normal_(1.0, 3.0)
    assert n.dtype == np.float64 and abs(float(n.mean()) - 1) < 0.2 and abs(float(n.std()) - 3) < 0.2


def test_integer_and_boolean_operators():
    a, b = np.array([7, -3, 8]), np.array([2, 2, 3])
    np.testing.assert_array_equal((mc.tensor(a) % 3).numpy(), a % 3)
    np.testing.assert_array_equal((mc.tensor(a) // mc.tensor(b)).numpy(), a // b)
    np.testing.assert_array_equal((10 % mc.tensor(b)).numpy(), 10 % b)
    m, n = mc.tensor(a) > 0, mc.tensor(b) > 2
    np.testing.assert_array_equal((m & n).numpy(), (a > 0) & (b > 2))
    np.testing.assert_array_equal((m | n).numpy(), (a > 0) | (b > 2))
    np.testing.assert_array_equal((~m).numpy(), ~(a > 0))
    assert (mc.tensor(a) == mc.tensor([7, 0, 8])).tolist() == [True, False, True]


def test_module_level_reductions_and_activation_methods():
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_allclose(mc.sum(t64(x), dim=1, keepdim=True).numpy(), x.sum(1, keepdims=True))
    np.testing.assert_allclose(mc.mean(t64(x), 0).numpy(), x.mean(0))
    np.testing.assert_allclose(mc.var(t64(x), dim=1).numpy(), x.var(1, ddof=1))
    np.testing.assert_allclose(t64(x).softmax(dim=1).numpy(), np.exp(x) / np.exp(x).sum(1, keepdims=True))
    np.testing.assert_allclose(t64(x).log_softmax(1).numpy(), x - np.log(np.exp(x).sum(1, keepdims=True)))
    np.testing.assert_allclose(t64(x).relu().numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(mc.sigmoid(t64(x)).numpy(), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(t64(x).tanh().numpy(), np.tanh(x))
