"""nn.functional alias, nn.utils (gradient clipping, parameter vectors), Module.apply/to(dtype)/hooks."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn


def test_nn_functional_is_minicnn_functional():
    import minicnn.nn.functional as F
    from minicnn.nn.functional import log_softmax
    assert F is mc.functional and nn.functional is mc.functional and log_softmax is mc.functional.log_softmax


def params_with_grads(grads):
    ps = []
    for g in grads:
        p = nn.Parameter(np.zeros(np.shape(g), np.float64))
        p.grad = mc.tensor(np.array(g, np.float64), dtype=mc.float64)
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_scales_to_max_norm(norm_type):
    grads = [np.array([3.0, -4.0]), np.array([[12.0]])]
    ps = params_with_grads(grads)
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    got = nn.utils.clip_grad_norm_(ps, max_norm=2.0, norm_type=norm_type)
    assert isinstance(got, mc.Tensor) and got.item() == pytest.approx(total)
    coef = 2.0 / (total + 1e-6)
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef)
    small = params_with_grads([np.array([0.1, 0.1])])
    nn.utils.clip_grad_norm_(small, 10.0)                     # below max_norm: unchanged
    np.testing.assert_allclose(small[0].grad.numpy(), [0.1, 0.1])
    nn.utils.clip_grad_norm_(small[0], 1e-3)                  # a single tensor works too
    np.testing.assert_allclose(np.linalg.norm(small[0].grad.numpy()), 1e-3, rtol=1e-3)


def test_clip_grad_norm_nonfinite_and_clip_grad_value():
    ps = params_with_grads([np.array([np.inf, 1.0])])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 of the gradients is non-finite"):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    ps = params_with_grads([np.array([-3.0, 0.5, 2.0])])
    nn.utils.clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(ps[0].grad.numpy(), [-1.0, 0.5, 1.0])


def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    ref = np.concatenate([p.numpy().ravel() for p in model.parameters()])
    np.testing.assert_array_equal(vec.numpy(), ref)
    (vec * vec).sum().backward()                              # differentiable
    for p in model.parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * p.numpy())
    nn.utils.vector_to_parameters(mc.arange(float(len(ref))), model.parameters())
    np.testing.assert_array_equal(nn.utils.parameters_to_vector(model.parameters()).numpy(), np.arange(len(ref)))
    with pytest.raises(ValueError, match="vector_to_parameters: expected a 1-d vector of 11 values"):
        nn.utils.vector_to_parameters(mc.zeros(3), model.parameters())


def test_apply_visits_children_before_parents_in_order():
    inner = nn.Sequential(nn.Linear(1, 1), nn.ReLU())
    model = nn.Sequential(inner, nn.Linear(1, 2))
    seen = []
    assert model.apply(lambda m: seen.append(m)) is model
    assert seen == [inner[0], inner[1], inner, model[1], model]


def test_module_to_dtype_buffers_and_hooks():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model.to(mc.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype.kind == "i"
    model.to("cpu", mc.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.to(mc.zeros(1, dtype=mc.float64))
    assert next(model.parameters()).dtype == np.float64
    with pytest.raises(TypeError, match="Module.to: only floating-point dtypes"):
        model.to(mc.int64)
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    m = nn.Module()
    m.register_buffer("scale", mc.ones(3))
    assert [n for n, _ in m.named_buffers()] == ["scale"] and m.scale.tolist() == [1, 1, 1]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())

    feats, calls = {}, []
    lin = nn.Linear(2, 2)
    h = lin.register_forward_hook(lambda mod, inp, out: feats.setdefault("out", out))
    pre = lin.register_forward_pre_hook(lambda mod, inp: calls.append(inp[0].shape) or (inp[0] * 0,))
    y = lin(mc.ones(1, 2))
    assert calls == [(1, 2)] and feats["out"] is y
    np.testing.assert_allclose(y.numpy(), lin.bias.numpy()[None])            # the pre-hook zeroed the input
    h.remove()
    pre.remove()
    y2 = lin(mc.ones(1, 2))
    assert len(calls) == 1 and not np.allclose(y2.numpy(), lin.bias.numpy()[None])
