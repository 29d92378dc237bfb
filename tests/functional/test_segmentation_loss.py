"""Cross-entropy over label maps ((N, C, H, W) logits, (N, H, W) targets) with class weights and ignore_index,
against a NumPy reference of PyTorch's documented formula; float64 gradients by finite differences."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F


def spatial_ce_ref(x, t, weight, ignore_index, reduction):
    """-w[t] log softmax(x)[t] per pixel, 0 where t == ignore_index; 'mean' divides by the weights' sum."""
    m = x.max(axis=1, keepdims=True)
    lp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))          # (N, C, H, W)
    valid = t != ignore_index
    tt = np.where(valid, t, 0)
    picked = np.take_along_axis(lp, tt[:, None], axis=1)[:, 0]               # (N, H, W)
    w = weight[tt] * valid
    loss = -picked * w
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / w.sum()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 255, 2])
def test_cross_entropy_label_maps_weight_and_ignore(reduction, ignore_index):
    rng = np.random.default_rng(0)
    N, C, H, W = 2, 4, 3, 5
    x = rng.standard_normal((N, C, H, W))
    t = rng.integers(0, C, (N, H, W))
    if ignore_index != 2:                       # an ignore label outside [0, C) appears in the targets
        t[0, 1, :2] = ignore_index
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    got = F.cross_entropy(mc.tensor(x, dtype=np.float64), t, weight=weight, ignore_index=ignore_index,
                          reduction=reduction)
    assert got.shape == ((N, H, W) if reduction == "none" else ())
    np.testing.assert_allclose(got.numpy(), spatial_ce_ref(x, t, weight, ignore_index, reduction), rtol=1e-10)
    mc.gradcheck(lambda a: F.cross_entropy(a, t, weight=weight, ignore_index=ignore_index, reduction=reduction),
                 [x])


def test_ignored_pixels_get_no_gradient():
    x = mc.tensor(np.random.default_rng(1).standard_normal((1, 3, 2, 2)), dtype=np.float64, requires_grad=True)
    t = np.array([[[0, 255], [2, 255]]])
    F.cross_entropy(x, t, ignore_index=255).backward()
    g = x.grad.numpy()
    assert np.all(g[0, :, 0, 1] == 0) and np.all(g[0, :, 1, 1] == 0)
    assert np.all(g[0, :, 0, 0] != 0)


def test_cross_entropy_label_map_errors():
    x = mc.tensor(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"cross_entropy: target shape \(2, 4, 5\) does not match"):
        F.cross_entropy(x, np.zeros((2, 4, 5), np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: target holds class 3, outside \[0, 3\)"):
        F.cross_entropy(x, np.full((2, 4, 4), 3))
    with pytest.raises(ValueError, match=r"weight shape \(2,\) should be \(3,\)"):
        F.cross_entropy(x, np.zeros((2, 4, 4), np.int64), weight=np.ones(2))
