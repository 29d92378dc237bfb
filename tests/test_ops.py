"""Tensor algebra: forward values vs NumPy and float64 gradients vs finite differences, on drawn shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
from helpers import randn

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together, e.g. (3, 1, 4) and (2, 1)."""
    shape = draw(shapes)
    other = list(shape[draw(st.integers(0, len(shape) - 1)):])
    other = [1 if draw(st.booleans()) else n for n in other]
    return (shape, tuple(other)) if draw(st.booleans()) else (tuple(other), shape)


BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a ** b, np.power),
    "maximum": (mc.maximum, np.maximum),
    "minimum": (mc.minimum, np.minimum),
}


@pytest.mark.parametrize("name", BINARY)
@given(pair=broadcast_pair(), seed=st.integers(0, 100))
def test_binary_ops_broadcast(name, pair, seed):
    op, ref = BINARY[name]
    a, b = randn(*pair[0], seed=seed), randn(*pair[1], seed=seed + 1)
    if name in ("div", "pow"):
        b = np.abs(b) + 0.5                        # away from 0 (div) and positive bases below
    if name == "pow":
        a = np.abs(a) + 0.5
    if name in ("maximum", "minimum"):
        b = b + 0.1                                # no ties within eps
    np.testing.assert_allclose(op(mc.tensor(a, dtype=np.float64), mc.tensor(b, dtype=np.float64)).numpy(),
                               ref(a, b), rtol=1e-12)
    mc.gradcheck(op, [a, b])


UNARY = {
    "neg": (lambda x: -x, np.negative, None),
    "exp": (mc.exp, np.exp, None),
    "log": (mc.log, np.log, "positive"),
    "sqrt": (mc.sqrt, np.sqrt, "positive"),
    "abs": (mc.abs, np.abs, None),
    "clip": (lambda x: mc.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), None),
}


@pytest.mark.parametrize("name", UNARY)
@given(shape=shapes, seed=st.integers(0, 100))
def test_unary_ops(name, shape, seed):
    op, ref, domain = UNARY[name]
    x = randn(*shape, seed=seed)
    x = np.abs(x) + 0.3 if domain else x
    x = np.where(np.abs(np.abs(x) - 0.6) < 0.05, x + 0.2, x)       # away from abs' and clip's kinks
    x = np.where(np.abs(x) < 0.05, x + 0.2, x)
    np.testing.assert_allclose(op(mc.tensor(x, dtype=np.float64)).numpy(), ref(x), rtol=1e-12)
    mc.gradcheck(op, [x])


REDUCTIONS = ["sum", "mean", "max", "min", "var"]


@pytest.mark.parametrize("name", REDUCTIONS)
@given(shape=shapes, data=st.data())
def test_reductions(name, shape, data):
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    keepdims = data.draw(st.booleans())
    if name == "var" and (np.prod(shape) if axis is None else shape[axis]) < 2:
        return
    x = np.random.default_rng(len(shape)).permutation(np.arange(np.prod(shape)) * 0.1).reshape(shape)  # no ties
    got = getattr(mc.tensor(x, dtype=np.float64), name)(axis=axis, keepdims=keepdims).numpy()
    want = (np.var(x, axis=axis, keepdims=keepdims, ddof=1) if name == "var"
            else getattr(np, name)(x, axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    mc.gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_max_ties_share_the_gradient():
    x = mc.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5]])


@given(a_shape=st.sampled_from([(3,), (2, 3), (4, 2, 3), (1, 2, 3)]),
       b_shape=st.sampled_from([(3,), (3, 2), (4, 3, 2), (1, 3, 5)]))
def test_matmul(a_shape, b_shape):
    a, b = randn(*a_shape, seed=1), randn(*b_shape, seed=2)
    try:
        want = a @ b
    except ValueError:
        with pytest.raises(ValueError, match="matmul"):
            mc.tensor(a) @ mc.tensor(b)
        return
    np.testing.assert_allclose((mc.tensor(a, dtype=np.float64) @ mc.tensor(b, dtype=np.float64)).numpy(), want)
    mc.gradcheck(lambda x, y: x @ y, [a, b])


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ.*\(2, 3\).*\(4, 5\)"):
        mc.tensor(np.ones((2, 3))) @ mc.tensor(np.ones((4, 5)))


def test_broadcast_error_names_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        mc.tensor(np.ones((2, 3))) + mc.tensor(np.ones(4))


SHAPE_OPS = {
    "reshape": lambda t: t.reshape(-1, t.shape[1] * t.shape[2]),
    "view_flatten": lambda t: t.flatten(),
    "transpose": lambda t: t.transpose(0, 2),
    "permute": lambda t: t.permute(2, 0, 1),
    "squeeze_unsqueeze": lambda t: t.unsqueeze(1).squeeze(1),
    "T": lambda t: t.T,
    "expand": lambda t: t[:, :1].expand(*t.shape),
    "getitem_int_slice": lambda t: t[1, ::2],
    "getitem_array": lambda t: t[np.array([1, 0, 1])],
    "getitem_neg_step": lambda t: t[:, ::-1, 1:3],
    "getitem_bool": lambda t: t[t.numpy() > 0],
    "pad": lambda t: mc.pad(t, (1, 2, 0, 1), value=0.5),
    "concat": lambda t: mc.concat([t, t * 2], dim=1),
    "stack": lambda t: mc.stack([t, t[::-1]], dim=0),
    "split": lambda t: mc.split(t, [1, t.shape[1] - 1], dim=1)[1] * mc.split(t, 2, dim=2)[0].sum(),
    "where": lambda t: mc.where(t.numpy() > 0, t, t * 3),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
@given(shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=2, max_side=4), seed=st.integers(0, 100))
def test_shape_and_index_ops_gradcheck(name, shape, seed):
    mc.gradcheck(SHAPE_OPS[name], [randn(*shape, seed=seed)])


def test_shape_op_values():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = mc.tensor(x, dtype=np.float64)
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), x.transpose(2, 0, 1))
    np.testing.assert_array_equal(mc.pad(t, (1, 2)).numpy(), np.pad(x, ((0, 0), (0, 0), (1, 2))))
    np.testing.assert_array_equal(mc.concat([t, t], 1).numpy(), np.concatenate([x, x], 1))
    np.testing.assert_array_equal(t[np.array([1, 1]), 0].numpy(), x[[1, 1], 0])
    np.testing.assert_array_equal([s.shape for s in mc.split(t, 2, dim=2)], [(2, 3, 2), (2, 3, 2)])


def test_repeated_index_accumulates():
    x = mc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 0, 1])


def test_shape_errors():
    t = mc.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape tensor of shape \(2, 3\)"):
        t.reshape(4, 2)
    with pytest.raises(ValueError, match="concat: tensor 1 has shape"):
        mc.concat([t, mc.tensor(np.ones((3, 3)))], dim=1)
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        t[5]
    with pytest.raises(ValueError, match="permute"):
        t.permute(0, 0)
