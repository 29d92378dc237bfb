"""Every convolution algorithm, forced through ``mc.backends.conv_algorithm``: forward, input gradient and weight
gradient against NumPy references (im2col's reference and its adjoint) on drawn geometries the algorithm can run,
on every device; float64 gradchecks of conv2d and conv_transpose2d per algorithm; and "auto": it times every
applicable candidate once per shape and pass, keeps the fastest and reports it."""
import contextlib

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, to_cpu
from minicnn import backend, backends
from minicnn.functional.conv import ALGORITHMS, Geometry
from minicnn.kernels import im2col as I

NAMES = list(ALGORITHMS)


@contextlib.contextmanager
def forced(name):
    """Run with ``mc.backends.conv_algorithm = name``, forgetting autotuned choices around it."""
    before = backends.conv_algorithm
    backends.conv_algorithm = name
    backends.reset()
    try:
        yield
    finally:
        backends.conv_algorithm = before
        backends.reset()


@st.composite
def geometries(draw, name, small):
    """(x shape, W shape, stride, padding, dilation, groups) that algorithm ``name`` runs."""
    N, G = draw(st.integers(1, 2)), 1 if name in ("winograd", "winograd_split", "direct") else draw(st.integers(1, 2))
    Cg, OCg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if name.startswith("winograd"):
        k, s, d = (3, 3), (1, 1), (1, 1)
        p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    elif name == "gemm_1x1":
        k, p, d = (1, 1), (0, 0), (1, 1)
        s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    else:
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        s, d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))), (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
    lo = [max(1, dd * (kk - 1) + 1 - 2 * pp) for kk, dd, pp in zip(k, d, p)]
    H, W = (draw(st.integers(l_, l_ + (4 if small else 9))) for l_ in lo)
    return (N, G * Cg, H, W), (G * OCg, Cg) + k, s, p, d, G


def _out_size(x_shape, W_shape, s, p, d):
    return tuple(I.conv_output_size(n, kk, ss, pp, dd) for n, kk, ss, pp, dd in zip(x_shape[2:], W_shape[2:], s, p, d))


def _references(x, w, gy, s, p, d, G):
    """float64 y, gx, gW per group from im2col's reference and its adjoint col2im_ref (no kernel involved)."""
    out = _out_size(x.shape, w.shape, s, p, d)
    N, C, OC = x.shape[0], x.shape[1], w.shape[0]
    Cg, OCg, ys, gxs, gWs = C // G, OC // G, [], [], []
    for g in range(G):
        xg, wg, gyg = x[:, g * Cg:(g + 1) * Cg], w[g * OCg:(g + 1) * OCg], gy[:, g * OCg:(g + 1) * OCg]
        cols = I.im2col_ref(xg, w.shape[2:], s, p, d, out)                        # (N, R, L)
        wm, gym = wg.reshape(OCg, -1), gyg.reshape(N, OCg, -1)
        ys.append((wm @ cols).reshape(N, OCg, *out))
        gxs.append(I.col2im_ref(wm.T @ gym, xg.shape, w.shape[2:], s, p, d, out))
        gWs.append(np.einsum("nol,nrl->or", gym, cols).reshape(wg.shape))
    return np.concatenate(ys, 1), np.concatenate(gxs, 1), np.concatenate(gWs, 0)


@pytest.mark.parametrize("algorithm", NAMES)
@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=10)
@given(data=st.data())
def test_forced_algorithm_matches_the_references(algorithm, device, data):
    x_shape, w_shape, s, p, d, G = data.draw(geometries(algorithm, small=device == "cuda"))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    gy = rng.standard_normal((x_shape[0], w_shape[0]) + _out_size(x_shape, w_shape, s, p, d))
    y_ref, gx_ref, gW_ref = _references(x, w, gy, s, p, d, G)
    b = rng.standard_normal(w_shape[0])                       # added by the algorithm (Winograd) or after it
    y_ref = y_ref + b.reshape(1, -1, 1, 1)
    xt, wt = (mc.tensor(a, dtype=np.float64, device=device, requires_grad=True) for a in (x, w))
    with forced(algorithm):
        y = F.conv2d(xt, wt, mc.tensor(b, dtype=np.float64, device=device), stride=s, padding=p, dilation=d,
                     groups=G)
        fn = y._ctx
        y.backward(mc.tensor(gy, dtype=np.float64, device=device))
    if not (G > 1 and x_shape[1] == G):                                      # depthwise has its own kernels
        assert set(fn.algorithms.values()) == {algorithm}
    np.testing.assert_allclose(to_cpu(y.data), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_cpu(xt.grad.data), gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_cpu(wt.grad.data), gW_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", NAMES)
@settings(max_examples=4)
@given(data=st.data())
def test_forced_algorithm_gradcheck(algorithm, data):
    x_shape, w_shape, s, p, d, G = data.draw(geometries(algorithm, small=True))
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    with forced(algorithm):
        mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=G), [x, w, b])


@pytest.mark.parametrize("algorithm", NAMES)
@settings(max_examples=4)
@given(data=st.data())
def test_forced_algorithm_conv_transpose2d_gradcheck(algorithm, data):
    x_shape, w_shape, s, p, d, G = data.draw(geometries(algorithm, small=True))
    out = _out_size(x_shape, w_shape, s, p, d)
    rng = np.random.default_rng(2)
    y = rng.standard_normal((x_shape[0], w_shape[0]) + out)                # the transposed op maps y back to x
    w = rng.standard_normal((w_shape[0], x_shape[1] // G) + w_shape[2:])
    op = tuple(n - ((o - 1) * ss - 2 * pp + dd * (kk - 1) + 1)
               for n, o, ss, pp, dd, kk in zip(x_shape[2:], out, s, p, d, w_shape[2:]))
    if any(o_ < 0 or (o_ >= ss and o_ >= dd) for o_, ss, dd in zip(op, s, d)):
        return                                                               # not expressible as output_padding
    with forced(algorithm):
        mc.gradcheck(lambda y, w: F.conv_transpose2d(y, w, stride=s, padding=p, output_padding=op, groups=G,
                                                     dilation=d), [y, w])


@pytest.mark.parametrize("algorithm", ["im2col", "im2col_split"])
@pytest.mark.parametrize("column_bytes", [1, 2 * (4 * 2 * 3) * (3 * 2) * 8])  # 1 image a chunk; 2, then 1
def test_im2col_in_chunks_of_images_matches_the_references(monkeypatch, column_bytes, algorithm):
    """On the CPU im2col unfolds and multiplies a chunk of images at a time (``COLUMN_BYTES``): the chunks,
    of unequal sizes (1 and 2 images), give the references' results in all three passes (grouped, strided); also
    with the chunks split between two CPU threads (im2col_split)."""
    from minicnn.functional import conv_algorithms
    monkeypatch.setattr(conv_algorithms, "COLUMN_BYTES", column_bytes)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 4, 5, 4)), rng.standard_normal((6, 2, 2, 3))       # 2 groups, 2x3 filters
    s, p, d = (2, 1), (1, 0), (1, 1)
    gy = rng.standard_normal((3, 6) + _out_size(x.shape, w.shape, s, p, d))
    geometry = Geometry((2, 3), s, p, d, 2, gy.shape[2:])
    chunks = backend.chunk_ranges(x, conv_algorithms._image_bytes(x, 4, geometry), column_bytes)
    assert [n1 - n0 for n0, n1 in chunks] == ([1, 1, 1] if column_bytes == 1 else [1, 2])
    y_ref, gx_ref, gW_ref = _references(x, w, gy, s, p, d, 2)
    xt, wt = (mc.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w))
    split, calls = backend.split_across_threads, []
    monkeypatch.setattr(backend, "split_across_threads", lambda chunks, run: calls.append(chunks) or
                        split(chunks, run))
    restore = mc.set_num_threads(2)
    try:
        with forced(algorithm):
            y = F.conv2d(xt, wt, stride=s, padding=p, dilation=d, groups=2)
            y.backward(mc.tensor(gy, dtype=np.float64))
    finally:
        restore()
    assert len(calls) == (3 if algorithm == "im2col_split" and numba.config.NUMBA_NUM_THREADS > 1 else 0)
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xt.grad.numpy(), gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), gW_ref, rtol=1e-10, atol=1e-10)


def test_a_forced_algorithm_that_cannot_run_a_shape_falls_back_to_im2col():
    x = mc.tensor(np.ones((1, 2, 6, 6)), requires_grad=True)
    with forced("winograd"):
        y = F.conv2d(x, mc.tensor(np.ones((3, 2, 5, 5))), padding=2)          # 5x5: no Winograd F(4x4, 3x3)
    assert y._ctx.algorithms == {"forward": "im2col"}


@pytest.mark.parametrize("device", DEVICES)
def test_auto_times_every_applicable_candidate_and_caches_the_winner(device, monkeypatch):
    monkeypatch.setattr(backends, "conv_algorithm", "auto")
    backends.reset()
    rng = np.random.default_rng(3)
    x = mc.tensor(rng.standard_normal((2, 4, 8, 8)), device=device, requires_grad=True)
    w = mc.tensor(rng.standard_normal((5, 4, 3, 3)), device=device, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.backward(mc.tensor(rng.standard_normal(y.shape), device=device))
    assert len(backends.conv_choices) == 3                                  # forward, input_grad, weight_grad
    for key, name in backends.conv_choices.items():
        assert set(backends.conv_timings[key]) == {"im2col", "im2col_split", "im2col_gemm", "winograd",
                                                  "winograd_split", "direct"}
        assert name == min(backends.conv_timings[key], key=backends.conv_timings[key].get)
    first = dict(backends.conv_choices)
    y2 = F.conv2d(x, w, padding=1)                                           # the cached choice, timed no more
    assert y2._ctx.algorithms["forward"] == first[next(k for k in first if k[0] == "forward")]
    np.testing.assert_allclose(to_cpu(y2.data), to_cpu(y.data), rtol=1e-5, atol=1e-5)
    backends.reset()


def test_unknown_algorithm_is_an_error(monkeypatch):
    monkeypatch.setattr(backends, "conv_algorithm", "fft")
    with pytest.raises(ValueError, match="conv_algorithm 'fft'"):
        F.conv2d(mc.tensor(np.ones((1, 1, 3, 3))), mc.tensor(np.ones((1, 1, 3, 3))))


def test_geometry_is_hashable_for_the_cache():
    g = Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
    assert {g: 1}[Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))] == 1


def _winograd_grads(x, w, gy, calls=1, backwards=1):
    """conv2d forced to Winograd, applied ``calls`` times to x before one backward (summed), run ``backwards``
    times (retain_graph): the gradients of each backward."""
    xt, wt = (mc.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w))
    with forced("winograd"):
        y = F.conv2d(xt, wt, padding=1)
        for _ in range(calls - 1):
            y = y + F.conv2d(xt, wt, padding=1)
        out = []
        for _ in range(backwards):
            xt.grad = wt.grad = None
            y.backward(mc.tensor(gy, dtype=np.float64), retain_graph=True)
            out.append((xt.grad.numpy().copy(), wt.grad.numpy().copy()))
    return out


def test_winograd_keeps_the_forwards_copy_of_x_for_the_weight_gradient_and_reuses_it_next_step():
    """The forward keeps x's channels-last copy in a buffer of its own for the weight gradient; the backward
    hands it back, and the next forward of that shape takes the same buffer."""
    from minicnn.kernels import winograd as WG
    rng = np.random.default_rng(0)
    x, w, gy = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 6, 6))
    _, gx_ref, gW_ref = _references(x, w, gy, (1, 1), (1, 1), (1, 1), 1)
    kept = []
    with forced("winograd"):
        for _ in range(2):
            xt, wt = (mc.tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w))
            y = F.conv2d(xt, wt, padding=1)
            fn = y._ctx
            kept.append(fn.shared["x"][0])
            y.backward(mc.tensor(gy, dtype=np.float64))
            assert "x" not in fn.shared                              # handed back
            assert any(a is kept[-1] for a in WG._free[(np.ndarray, kept[-1].shape, kept[-1].dtype)])
            np.testing.assert_allclose(wt.grad.numpy(), gW_ref, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(xt.grad.numpy(), gx_ref, rtol=1e-10, atol=1e-10)
        with mc.no_grad():                                             # no backward to come: nothing kept
            assert F.conv2d(mc.tensor(x), mc.tensor(w), padding=1)._ctx is None
    assert kept[0] is kept[1]


def test_winograd_gradients_of_a_second_backward_and_of_a_shared_weight():
    """retain_graph: the second backward (its forward's copy already handed back) copies x again and gets the
    same gradients; a weight used twice before one backward: each call keeps its own copy."""
    rng = np.random.default_rng(1)
    x, w, gy = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 6, 6))
    _, gx_ref, gW_ref = _references(x, w, gy, (1, 1), (1, 1), (1, 1), 1)
    (gx1, gW1), (gx2, gW2) = _winograd_grads(x, w, gy, backwards=2)
    np.testing.assert_allclose(gW1, gW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(gW2, gW1)
    np.testing.assert_array_equal(gx2, gx1)
    [(gx, gW)] = _winograd_grads(x, w, gy, calls=2)
    np.testing.assert_allclose(gW, 2 * gW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gx, 2 * gx_ref, rtol=1e-10, atol=1e-10)
