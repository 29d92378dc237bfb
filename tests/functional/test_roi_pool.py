"""roi_pool: float64 gradchecks on drawn RoIs, a case worked by hand, both box formats, empty box sets, devices,
and the errors for malformed RoIs."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minicnn as mc
import minicnn.functional as F
from helpers import DEVICES, distinct_values
from minicnn.kernels import roi_pool as kernel

coords = st.floats(-3, 12, allow_nan=False).map(lambda v: round(v * 4) / 4)
rois_st = st.lists(st.tuples(st.integers(0, 1), coords, coords, coords, coords), min_size=1, max_size=3).map(
    lambda rs: np.array([(b, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)) for b, x1, y1, x2, y2 in rs]))


@given(rois=rois_st, out=st.tuples(st.integers(1, 3), st.integers(1, 3)), scale=st.sampled_from([1.0, 0.5]),
       shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(2, 6), st.integers(2, 6)))
def test_roi_pool_gradcheck(rois, out, scale, shape):
    rois = np.concatenate([rois[:, :1] % shape[0], rois[:, 1:]], axis=1)     # batch indices within N
    mc.gradcheck(lambda t: F.roi_pool(t, rois, out, scale), [distinct_values(shape, seed=len(rois))])


@pytest.mark.parametrize("device", DEVICES)
def test_worked_by_hand(device):
    x = mc.tensor(np.arange(32.0).reshape(2, 1, 4, 4), device=device, requires_grad=True)
    # image 1, whole map in 2x2 bins: maxima 16 + {5, 7, 13, 15}; image 0, box (1, 1)..(2, 2) at scale 2 -> cells
    # 2..4 clipped to 2..3, bins of 1.5 cells: rows/cols [2, 4) and [3, 5) -> [3, 4) after clipping
    rois = np.array([[1, 0, 0, 3, 3], [0, 1, 1, 2, 2]])
    y = F.roi_pool(x, rois[:1], 2)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[21, 23], [29, 31]])
    y2 = F.roi_pool(x, rois[1:], 2, spatial_scale=2.0)
    np.testing.assert_array_equal(y2.numpy()[0, 0], [[15, 15], [15, 15]])
    (y.sum() + y2.sum()).backward()
    g = x.grad.numpy()
    assert g[0, 0, 3, 3] == 4 and g[1, 0].ravel()[[5, 7, 13, 15]].tolist() == [1, 1, 1, 1] and g.sum() == 8


def test_box_list_per_image_equals_k5_rois():
    x = mc.tensor(distinct_values((2, 3, 6, 6), seed=1))
    boxes = [np.array([[0, 0, 5, 5], [1, 2, 3, 4]]), mc.tensor(np.array([[2, 2, 4, 5.5]]))]
    rois = np.array([[0, 0, 0, 5, 5], [0, 1, 2, 3, 4], [1, 2, 2, 4, 5.5]])
    np.testing.assert_array_equal(F.roi_pool(x, boxes, (2, 3), 0.5).numpy(), F.roi_pool(x, rois, (2, 3), 0.5).numpy())
    np.testing.assert_array_equal(F.roi_pool(x, mc.tensor(rois), (2, 3), 0.5).numpy(),
                                  kernel.roi_pool_forward_ref(x.numpy(), rois, (2, 3), 0.5)[0])


def test_empty_box_set_gives_an_empty_batch():
    x = mc.tensor(np.zeros((1, 3, 4, 4)), requires_grad=True)
    y = F.roi_pool(x, np.zeros((0, 5)), (7, 7))
    assert y.shape == (0, 3, 7, 7)
    y.sum().backward()
    assert (x.grad.numpy() == 0).all()


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_cuda_matches_cpu(device):
    x, rois = distinct_values((2, 2, 5, 5), seed=2), np.array([[0, 0, 0, 8, 8], [1, 2, 1, 6, 9], [0, 3, 3, 3, 3]])
    out = {}
    for dev in ("cpu", device):
        t = mc.tensor(x, device=dev, requires_grad=True)
        y = F.roi_pool(t, mc.tensor(rois, device=dev), (2, 2), 0.5)
        (y * mc.tensor(np.arange(24.0).reshape(y.shape), device=dev)).sum().backward()
        out[dev] = (y.numpy(), t.grad.numpy())
    for a, b in zip(out["cpu"], out[device]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("boxes, message", [
    (np.zeros((2, 4)), "roi_pool: boxes must be (K, 5) [batch_index, x1, y1, x2, y2]"),
    (np.zeros(5), "roi_pool: boxes must be (K, 5)"),
    ([np.zeros((1, 5))], "roi_pool: boxes[0] must be (K, 4)"),
    ([np.zeros((1, 4))] * 3, "roi_pool: got a list of 3 box sets for a batch of 2 images"),
    (np.array([[-1, 0, 0, 1, 1]]), "roi_pool: boxes row 0 has batch index -1, not an integer in [0, 2)"),
    (np.array([[0, 0, 0, 1, 1], [2, 0, 0, 1, 1]]), "roi_pool: boxes row 1 has batch index 2"),
    (np.array([[0.5, 0, 0, 1, 1]]), "batch index 0.5"),
    (np.array([[0, 3, 0, 1, 1]]), "roi_pool: boxes row 0 has x2 < x1 or y2 < y1"),
    (np.array([[0, 0, 2, 1, 1]]), "x2 < x1 or y2 < y1"),
    (np.array([[0, 0, 0, np.inf, 1]]), "roi_pool: boxes row 0 is not finite"),
    (np.array([[0, 0, 0, 1, np.nan]]), "is not finite"),
])
def test_malformed_rois_are_named(boxes, message):
    with pytest.raises(ValueError) as err:
        F.roi_pool(mc.tensor(np.zeros((2, 1, 4, 4))), boxes, 2)
    assert message in str(err.value)


def test_bad_arguments_are_named():
    x, rois = mc.tensor(np.zeros((2, 1, 4, 4))), np.array([[0, 0, 0, 1, 1]])
    with pytest.raises(ValueError, match="roi_pool: output_size must be a positive int"):
        F.roi_pool(x, rois, 0)
    with pytest.raises(ValueError, match="roi_pool: spatial_scale must be a positive number"):
        F.roi_pool(x, rois, 2, spatial_scale=0)
    with pytest.raises(ValueError, match="roi_pool: input must be a 4-d"):
        F.roi_pool(mc.tensor(np.zeros((1, 4, 4))), rois, 2)
