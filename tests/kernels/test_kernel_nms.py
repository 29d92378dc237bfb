"""kernels/nms.py: IoU and greedy NMS kernels against the references, the references against plain Python, and
every CUDA kernel compiled to PTX for a real GPU."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numba import types as T

from helpers import DEVICES, compile_ptx, to_cpu
from minicnn import backend
from minicnn.kernels import nms


def random_boxes(K, seed, dtype=np.float32, degenerate=True):
    """K boxes in a 10 x 10 field (x1, y1, x2, y2), heavily overlapping; some of zero width or height."""
    rng = np.random.default_rng(seed)
    xy, wh = rng.uniform(0, 8, (K, 2)), rng.uniform(0.5, 4, (K, 2))
    if degenerate and K > 2:
        wh[rng.choice(K, K // 4, replace=False), rng.integers(0, 2)] = 0.0
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def plain_iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def plain_nms(boxes, scores, threshold):
    """torchvision's greedy NMS in plain Python: highest score first, ties in input order."""
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(plain_iou(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


@given(K=st.integers(0, 12), seed=st.integers(0, 100), threshold=st.floats(0.0, 1.0))
def test_references_match_plain_python(K, seed, threshold):
    boxes = random_boxes(K, seed, np.float64)
    scores = np.random.default_rng(seed).integers(0, 4, K).astype(np.float64)     # many ties
    iou = nms.box_iou_ref(boxes, boxes)
    for i in range(K):
        for j in range(K):
            assert iou[i, j] == pytest.approx(plain_iou(boxes[i], boxes[j]), rel=1e-12, abs=1e-15)
    assert nms.nms_ref(boxes, scores, threshold).tolist() == plain_nms(boxes, scores, threshold)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(K=st.integers(0, 9), L=st.integers(0, 6), seed=st.integers(0, 100))
def test_box_iou_kernels_match_reference(device, dtype, K, L, seed):
    a, b = random_boxes(K, seed, dtype), random_boxes(L, seed + 1, dtype)
    iou = nms.box_iou(backend.to_device(a, device), backend.to_device(b, device), device=device)
    assert iou.shape == (K, L) and iou.dtype == dtype
    np.testing.assert_allclose(to_cpu(iou), nms.box_iou_ref(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@given(K=st.integers(0, 10), seed=st.integers(0, 100), threshold=st.floats(0.0, 0.9))
def test_nms_kernels_match_reference(device, K, seed, threshold):
    boxes = random_boxes(K, seed, np.float64)
    scores = np.random.default_rng(seed).integers(0, 4, K).astype(np.float32)
    keep = nms.nms(backend.to_device(boxes, device), backend.to_device(scores, device), threshold, device=device)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(to_cpu(keep), nms.nms_ref(boxes, scores, threshold))


@pytest.mark.parametrize("device", DEVICES)
def test_nms_suppresses_only_above_the_threshold(device):
    boxes = np.array([[0, 0, 4, 1], [0, 0, 2, 1], [10, 10, 11, 11]], np.float64)  # IoU(0, 1) is exactly 0.5
    scores = np.array([0.9, 0.8, 0.1])
    run = lambda t: to_cpu(nms.nms(backend.to_device(boxes, device), backend.to_device(scores, device), t,
                                   device=device)).tolist()
    assert run(0.5) == [0, 1, 2]                         # IoU == threshold: kept (torchvision's strict '>')
    assert run(0.49) == [0, 2]


@pytest.mark.skipif(backend.SIMULATED, reason="compile_ptx needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("dtype", [T.float32, T.float64])
def test_cuda_kernels_compile_to_ptx(dtype):
    a = dtype[:, ::1]
    assert ".entry" in compile_ptx(nms._box_iou_gpu, (a, a, a))
    assert ".entry" in compile_ptx(nms._suppress_gpu, (a, T.float64, T.uint8[:, ::1]))
