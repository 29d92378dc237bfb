"""kernels/winograd.py: the transforms' CPU and CUDA kernels against their NumPy references on drawn sizes, the
Winograd convolution (forward, input gradient, weight gradient) against im2col's reference, its float32 error
on W1-shaped data, and every CUDA kernel compiled to PTX."""
import numba
import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import im2col as I
from minicnn.kernels import winograd as WG


@st.composite
def problems(draw, small=False):
    """(x shape, OC, padding): 3x3 stride-1 convolutions, any output size (partial last tiles included)."""
    N, C, OC = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H, W = (draw(st.integers(max(1, 3 - 2 * pp), (7 if small else 13))) for pp in p)
    return (N, C, H, W), OC, p


def _out(shape, p):
    return shape[2] + 2 * p[0] - 2, shape[3] + 2 * p[1] - 2


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def test_transforms_are_the_papers_f43():
    """The 1-d identity behind the algorithm: A^T [(G g) * (B^T d)] is the correlation of d (6) with g (3)."""
    d, g = _rand(6, 0), _rand(3, 1)
    y = WG.AT @ ((WG.G @ g) * (WG.BT @ d))
    np.testing.assert_allclose(y, [d[i:i + 3] @ g for i in range(4)], rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@given(problem=problems(small=True))
def test_transform_kernels_match_references(device, problem):
    shape, OC, p = problem
    out = _out(shape, p)
    x = _rand(shape, 2)
    V = WG.input_transform(backend.to_device(x, device), p, out)
    np.testing.assert_allclose(to_cpu(V), WG.input_transform_ref(x, p, out), rtol=1e-12, atol=1e-12)
    TH, TW = WG.tiles(out)
    M = _rand((36, shape[0] * TH * TW, OC), 3)
    y = WG.output_transform(backend.to_device(M, device), shape[0], out)
    np.testing.assert_allclose(to_cpu(y), WG.output_transform_ref(M, shape[0], out), rtol=1e-12, atol=1e-12)
    gy = _rand((shape[0], OC) + out, 4)
    gM = WG.grad_output_transform(backend.to_device(gy, device))
    np.testing.assert_allclose(to_cpu(gM), WG.grad_output_transform_ref(gy), rtol=1e-12, atol=1e-12)


def _conv_refs(x, w, gy, p, out):
    cols = I.im2col_ref(x, (3, 3), (1, 1), p, (1, 1), out)
    wm, gym = w.reshape(w.shape[0], -1), gy.reshape(gy.shape[0], gy.shape[1], -1)
    y = (wm @ cols).reshape(gy.shape)
    gx = I.col2im_ref(wm.T @ gym, x.shape, (3, 3), (1, 1), p, (1, 1), out)
    gW = np.einsum("nol,nrl->or", gym, cols).reshape(w.shape)
    return y, gx, gW


@pytest.mark.parametrize("device", DEVICES)
@given(problem=problems(small=True))
def test_winograd_conv_matches_im2col_reference(device, problem):
    shape, OC, p = problem
    out = _out(shape, p)
    x, w, gy = _rand(shape, 5), _rand((OC, shape[1], 3, 3), 6), _rand((shape[0], OC) + out, 7)
    y_ref, gx_ref, gW_ref = _conv_refs(x, w, gy, p, out)
    d = lambda a: backend.to_device(a, device)                         # noqa: E731
    np.testing.assert_allclose(to_cpu(WG.conv3x3(d(x), d(w), p, out)), y_ref, rtol=1e-10, atol=1e-10)
    bias = _rand(OC, 13)                                               # added by the output transform
    y = WG.conv3x3(d(x), d(w), p, out, bias=d(bias))
    np.testing.assert_allclose(to_cpu(y), y_ref + bias.reshape(1, -1, 1, 1), rtol=1e-10, atol=1e-10)
    wf = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    gy_prepared = WG.prepare(d(gy), (2 - p[0], 2 - p[1]), shape[2:], "test_gy")   # as Conv2dFn.backward
    gx = WG.conv3x3(d(gy), d(wf), (2 - p[0], 2 - p[1]), shape[2:], gy_prepared)
    np.testing.assert_allclose(to_cpu(gx), gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(to_cpu(WG.conv3x3_weight_grad(d(x), d(gy), p)), gW_ref, rtol=1e-10, atol=1e-10)
    gW = WG.conv3x3_weight_grad(d(x), d(gy), p, gy_prepared)      # reads gy at its offset in the input
    np.testing.assert_allclose(to_cpu(gW), gW_ref, rtol=1e-10, atol=1e-10)   # gradient's copy, where it covers


def test_the_input_gradients_copy_of_gy_is_reused_only_where_it_holds_every_tile():
    """Padding 1 (offset 1): the copy covers gy's tiles; padding 2 (offset 0, x 4 pixels smaller than gy): an
    8 x 8 x's copy is 10 rows, gy's 10 x 10 needs 12, so the weight gradient copies gy itself."""
    gy = _rand((1, 2, 8, 8), 11)
    assert WG._covers(WG.prepare(gy, (1, 1), (8, 8)), *WG.tiles((8, 8)))
    gy = _rand((1, 2, 10, 10), 12)
    assert not WG._covers(WG.prepare(gy, (0, 0), (8, 8)), *WG.tiles((10, 10)))


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("cache_bytes", [1, 36 * 5 * 4 * 8 * 2])      # one image per chunk; one, then two
def test_winograd_conv_in_chunks_of_images_matches_the_whole_batch(monkeypatch, cache_bytes, split):
    """On the CPU the batch goes through V and M a chunk of images at a time (``CACHE_BYTES``): the chunks,
    of unequal sizes (1 and 2 images), give the reference results, also with the chunks split between the CPU threads
    (``split``; where Numba has two or more)."""
    monkeypatch.setattr(WG, "CACHE_BYTES", cache_bytes)
    x, w, gy = _rand((3, 2, 7, 6), 8), _rand((3, 2, 3, 3), 9), _rand((3, 3, 7, 6), 10)   # 2 x 2 tiles per image
    y_ref, _, gW_ref = _conv_refs(x, w, gy, (1, 1), (7, 6))
    real, calls = backend.split_across_threads, []
    monkeypatch.setattr(backend, "split_across_threads", lambda chunks, run: calls.append(chunks) or
                        real(chunks, run))
    assert backend.chunk_ranges(x, WG._image_bytes(x, 2 + 3, 4), cache_bytes) == (
        [(0, 1), (1, 2), (2, 3)] if cache_bytes == 1 else [(0, 1), (1, 3)])
    np.testing.assert_allclose(WG.conv3x3(x, w, (1, 1), (7, 6), split=split), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(WG.conv3x3_weight_grad(x, gy, (1, 1), split=split), gW_ref, rtol=1e-10, atol=1e-10)
    assert len(calls) == (2 if split and numba.get_num_threads() > 1 else 0)           # forward, weight gradient


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two CPU threads")
def test_split_weight_gradient_is_the_same_from_run_to_run(monkeypatch):
    """Each thread sums its own share of the chunks (fixed by position), then the shares are summed in thread
    order: float32 results equal bit for bit from run to run, and within rounding of the unsplit sum."""
    monkeypatch.setattr(WG, "CACHE_BYTES", 36 * 24 * 16 * 4)              # one image per chunk: 8 chunks
    x, gy = _rand((8, 8, 16, 16), 13).astype(np.float32), _rand((8, 16, 16, 16), 14).astype(np.float32)
    restore = backend.set_num_threads(2)
    try:
        runs = [WG.conv3x3_weight_grad(x, gy, (1, 1), split=True) for _ in range(3)]
    finally:
        restore()
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    np.testing.assert_allclose(runs[0], WG.conv3x3_weight_grad(x, gy, (1, 1)), rtol=1e-5, atol=1e-4)


def test_float32_error_on_w1_shaped_data_is_below_1e_4():
    """W1's channels and image size (the error does not grow with the batch, so N=4 keeps the test quick)."""
    x, w, gy = (_rand(s, i).astype(np.float32) for i, s in enumerate([(4, 64, 32, 32), (64, 64, 3, 3),
                                                                          (4, 64, 32, 32)]))
    y_ref, gx_ref, gW_ref = _conv_refs(x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64),
                                       (1, 1), (32, 32))
    wf = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    for got, ref in [(WG.conv3x3(x, w, (1, 1), (32, 32)), y_ref), (WG.conv3x3(gy, wf, (1, 1), (32, 32)), gx_ref),
                     (WG.conv3x3_weight_grad(x, gy, (1, 1)), gW_ref)]:
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a4, a3 = dtype[:, :, :, ::1], dtype[:, :, ::1]
    assert ".entry" in compile_ptx(WG._input_gpu, (a4, T.int64, T.int64, a3, a3))
    assert ".entry" in compile_ptx(WG._output_gpu, (a3, dtype[::1], T.int64, T.int64, a3, a4))
    assert ".entry" in compile_ptx(WG._grad_output_gpu, (a4, T.int64, T.int64, T.int64, T.int64, a3, a3))
