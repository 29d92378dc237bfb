"""kernels/roi_pool.py: CPU and CUDA kernels against the NumPy reference (torchvision's loops) on drawn RoIs,
torchvision's rounding and bins worked out by hand, empty bins, and every CUDA kernel compiled to PTX."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, distinct_values, to_cpu
from minicnn import backend
from minicnn.kernels import roi_pool

coords = st.floats(-6, 20, allow_nan=False).map(lambda v: round(v * 4) / 4)     # quarters: exact halves occur
rois_st = st.lists(st.tuples(st.integers(0, 1), coords, coords, coords, coords), min_size=1, max_size=4).map(
    lambda rs: np.array([(b, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)) for b, x1, y1, x2, y2 in rs]))


@pytest.mark.parametrize("device", DEVICES)
@given(rois=rois_st, C=st.integers(1, 2), H=st.integers(1, 6), W=st.integers(1, 6), out=st.tuples(
    st.integers(1, 3), st.integers(1, 3)), scale=st.sampled_from([1.0, 0.5, 0.25, 1 / 3]))
def test_roi_pool_kernels_match_reference(device, rois, C, H, W, out, scale):
    x = distinct_values((2, C, H, W), seed=H * W).astype(np.float32)
    y, argmax = roi_pool.roi_pool_forward(backend.to_device(x, device), rois, out, scale, device=device)
    y_ref, argmax_ref = roi_pool.roi_pool_forward_ref(x, rois, out, scale)
    assert y.dtype == np.float32 and argmax.dtype == np.int32
    np.testing.assert_array_equal(to_cpu(y), y_ref)
    np.testing.assert_array_equal(to_cpu(argmax), argmax_ref)
    gy = distinct_values(y.shape, seed=1).astype(np.float32)
    gx = roi_pool.roi_pool_backward(backend.to_device(gy, device), argmax, rois, x.shape, scale, device=device)
    np.testing.assert_allclose(to_cpu(gx), roi_pool.roi_pool_backward_ref(gy, argmax_ref, rois, x.shape),
                               rtol=1e-5, atol=1e-7)


def test_rounding_is_half_away_from_zero():
    # C's roundf: 0.5 -> 1, 2.5 -> 3, -0.5 -> -1 (Python's round and np.rint give 0, 2, -0)
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, 2.4], np.float32)
    np.testing.assert_array_equal(roi_pool._round_half_away(v, np), [1, 2, 3, -1, -2, 0, 2])


def test_bins_worked_by_hand():
    # RoI x 1..6.5 (round(6.5) = 7: 7 cells wide), y 0.5..2 (round(0.5) = 1: rows 1..2, 2 cells high) on a 10x10
    # map, 3x2 bins.  Width: bin = 7/2 = 3.5, columns [1 + 0, 1 + ceil(3.5)) = [1, 5), [1 + floor(3.5), 1 + 7)
    # = [4, 8).  Height: bin = 2/3, rows [1 + 0, 1 + ceil(0.67)) = [1, 2), [1 + 0, 1 + ceil(1.33)) = [1, 3),
    # [1 + 1, 1 + 2) = [2, 3).
    batch, rows, cols = roi_pool.roi_bins(np.array([[1, 1, 0.5, 6.5, 2]]), (3, 2), 1.0, 10, 10, np.float32)
    assert batch.tolist() == [1]
    assert rows[0].tolist() == [[1, 2], [1, 3], [2, 3]] and cols[0].tolist() == [[1, 5], [4, 8]]
    # spatial_scale 0.5 and clipping: x 10..30 -> cells 5..15, cut at W = 8 -> columns [5, 8) and [8, 8) (empty)
    _, _, cols = roi_pool.roi_bins(np.array([[0, 10, 0, 30, 1]]), (1, 2), 0.5, 4, 8, np.float32)
    assert cols[0].tolist() == [[5, 8], [8, 8]]


def test_bins_use_the_feature_maps_dtype():
    # 29 cells in 7 bins: in float32 7 * (29 / 7) rounds to 29.0, so the last bin ends at 29; in float64 it is
    # 29.000000000000004 and ceil gives 30.  torchvision computes in the input's dtype, and so do we.
    rois = np.array([[0, 0, 0, 28, 0]])
    _, _, cols32 = roi_pool.roi_bins(rois, (1, 7), 1.0, 1, 40, np.float32)
    _, _, cols64 = roi_pool.roi_bins(rois, (1, 7), 1.0, 1, 40, np.float64)
    assert cols32[0, 6].tolist() == [24, 29] and cols64[0, 6].tolist() == [24, 30]


@pytest.mark.parametrize("device", DEVICES)
def test_roi_off_the_map_gives_zeros_and_no_gradient(device):
    x = distinct_values((1, 2, 4, 4), seed=2).astype(np.float32) - 10          # all negative: 0 is not a max
    rois = np.array([[0, 20, 20, 30, 30], [0, -9, -9, -5, -5], [0, 0, 0, 3, 3]])
    y, argmax = roi_pool.roi_pool_forward(backend.to_device(x, device), rois, (2, 2), 1.0, device=device)
    assert (to_cpu(y)[:2] == 0).all() and (to_cpu(argmax)[:2] == -1).all()
    assert (to_cpu(y)[2] < 0).all() and (to_cpu(argmax)[2] >= 0).all()
    gy = np.ones(y.shape, np.float32)
    gy[2] = 0
    gx = roi_pool.roi_pool_backward(backend.to_device(gy, device), argmax, rois, x.shape, 1.0, device=device)
    assert (to_cpu(gx) == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_overlapping_rois_accumulate_on_shared_maxima(device):
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = 5                                                      # the max of every RoI below
    rois = np.array([[0, 0, 0, 2, 2], [0, 1, 1, 2, 2], [0, 0, 0, 1, 1]])
    y, argmax = roi_pool.roi_pool_forward(backend.to_device(x, device), rois, (1, 1), 1.0, device=device)
    assert to_cpu(argmax).ravel().tolist() == [4, 4, 4]
    gx = roi_pool.roi_pool_backward(backend.to_device(np.array([1, 2, 4], np.float32).reshape(3, 1, 1, 1), device),
                                    argmax, rois, x.shape, 1.0, device=device)
    assert to_cpu(gx)[0, 0, 1, 1] == 7 and to_cpu(gx).sum() == 7


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a, i4, i1, i3 = dtype[:, :, :, ::1], T.int32[:, :, :, ::1], T.int32[::1], T.int32[:, :, ::1]
    assert ".entry" in compile_ptx(roi_pool._fwd_gpu, (a, i1, i3, i3, a, i4))
    assert ".entry" in compile_ptx(roi_pool._bwd_gpu, (a, i4, i1, i1, i3, i3, a))     # order, starts: by image
