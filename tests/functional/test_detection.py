"""box_iou and nms: Tensors and arrays, every device, empty sets, ties, and clear errors for bad shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, to_cpu
from minicnn import backend
from minicnn.kernels import nms as nms_kernels


def boxes_and_scores(K, seed):
    rng = np.random.default_rng(seed)
    xy, wh = rng.uniform(0, 6, (K, 2)), rng.uniform(0.5, 4, (K, 2))
    return np.concatenate([xy, xy + wh], axis=1), rng.integers(0, 5, K).astype(np.float64)


@pytest.mark.parametrize("device", DEVICES)
def test_box_iou_by_hand(device):
    a = mc.tensor([[0, 0, 2, 2], [1, 1, 3, 3]], device=device)
    b = mc.tensor([[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 2, 2]], device=device)
    iou = F.box_iou(a, b)
    assert isinstance(iou, mc.Tensor) and iou.device == device and iou.shape == (2, 3)
    np.testing.assert_allclose(iou.numpy(), [[2 / 6, 0, 1], [2 / 6, 0, 1 / 7]], rtol=1e-6)


def test_box_iou_accepts_arrays_and_integer_boxes():
    a = np.array([[0, 0, 2, 2]])
    iou = F.box_iou(a, np.array([[1, 1, 3, 3], [0, 0, 0, 0]]))
    assert isinstance(iou, np.ndarray) and iou.dtype == np.float64
    np.testing.assert_allclose(iou, [[1 / 7, 0.0]])      # a zero-area box overlaps nothing


@pytest.mark.parametrize("device", DEVICES)
@given(K=st.integers(0, 9), seed=st.integers(0, 50), threshold=st.floats(0.0, 0.8))
def test_nms_matches_reference(device, K, seed, threshold):
    boxes, scores = boxes_and_scores(K, seed)
    keep = F.nms(mc.tensor(boxes, device=device), mc.tensor(scores, device=device), threshold)
    assert isinstance(keep, mc.Tensor) and keep.dtype == np.int64 and keep.device == device
    np.testing.assert_array_equal(keep.numpy(), nms_kernels.nms_ref(boxes, scores, threshold))


def test_nms_keeps_by_decreasing_score_ties_in_input_order():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1.1], [10, 10, 11, 11]])
    keep = F.nms(boxes, np.array([0.5, 0.9, 0.5, 0.5]), 0.5)
    assert isinstance(keep, np.ndarray) and keep.tolist() == [1, 0, 3]   # box 2 overlaps box 0 (same score)


@pytest.mark.parametrize("device", DEVICES)
def test_nms_of_no_boxes_is_empty(device):
    keep = F.nms(mc.tensor(np.zeros((0, 4)), device=device), mc.tensor(np.zeros(0), device=device), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64 and keep.device == device


@pytest.mark.parametrize("device", DEVICES)
def test_nms_of_arrays_returns_an_array_on_their_device(device):
    boxes, scores = boxes_and_scores(5, 0)
    keep = F.nms(backend.to_device(boxes, device), backend.to_device(scores, device), 0.3)
    assert not isinstance(keep, mc.Tensor) and backend.device_of(keep) == device
    np.testing.assert_array_equal(to_cpu(keep), nms_kernels.nms_ref(boxes, scores, 0.3))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.nms(np.zeros((3, 5)), np.zeros(3), 0.5), ValueError, r"nms: boxes must have shape \(K, 4\).*\(3, 5\)"),
    (lambda: F.nms(np.zeros(4), np.zeros(1), 0.5), ValueError, r"nms: boxes .*got \(4,\)"),
    (lambda: F.nms(np.zeros((3, 4)), np.zeros(2), 0.5), ValueError, r"nms: scores must have shape \(3,\).*\(2,\)"),
    (lambda: F.nms(np.zeros((3, 4)), np.zeros((3, 1)), 0.5), ValueError, r"nms: scores .*\(3, 1\)"),
    (lambda: F.nms(np.zeros((3, 4)), np.zeros(3), [0.5]), TypeError, "nms: iou_threshold must be a number"),
    (lambda: F.box_iou(np.zeros((2, 4)), np.zeros((2, 2))), ValueError, r"box_iou: boxes2 .*\(2, 2\)"),
])
def test_detection_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
