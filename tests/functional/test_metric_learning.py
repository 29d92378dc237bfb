"""Contrastive loss, batch-hard triplet mining and the Gram matrix: NumPy references, hand-worked mining,
float64 finite-difference gradients."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F


def contrastive_ref(a, b, y, margin):
    d = np.sqrt(((a - b + 1e-6) ** 2).sum(1))
    return np.mean(y * d ** 2 / 2 + (1 - y) * np.maximum(margin - d, 0) ** 2 / 2)


def test_contrastive_loss_matches_reference_and_gradcheck():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 3)) * 0.4, rng.standard_normal((6, 3)) * 0.4
    y = np.array([1, 0, 1, 0, 0, 1])
    got = F.contrastive_loss(mc.tensor(a, dtype=np.float64), mc.tensor(b, dtype=np.float64), y, margin=1.5)
    np.testing.assert_allclose(got.item(), contrastive_ref(a, b, y, 1.5), rtol=1e-10)
    mc.gradcheck(lambda p, q: F.contrastive_loss(p, q, y, margin=1.5), [a, b])


def test_contrastive_loss_far_dissimilar_pairs_cost_nothing():
    a, b = np.zeros((2, 2)), np.array([[3.0, 0.0], [0.0, 0.5]])
    got = F.contrastive_loss(mc.tensor(a, dtype=np.float64), mc.tensor(b, dtype=np.float64), [0, 0], margin=1.0,
                             reduction="none").numpy()
    assert got[0] == 0 and got[1] == pytest.approx((1 - 0.5) ** 2 / 2, rel=1e-5)
    with pytest.raises(ValueError, match="contrastive_loss: target must hold 1"):
        F.contrastive_loss(mc.tensor(a), mc.tensor(b), [2, 0])
    with pytest.raises(ValueError, match=r"contrastive_loss: expected two \(N, D\) embeddings"):
        F.contrastive_loss(mc.tensor(a), mc.tensor(b[:1]), [1])


def test_batch_hard_mining_by_hand():
    # 1-d embeddings: class 0 at 0, 1, 5; class 1 at 2, 9
    x = np.array([[0.0], [1.0], [5.0], [2.0], [9.0]])
    y = np.array([0, 0, 0, 1, 1])
    a, p, n = F.batch_hard_indices(x, y)
    np.testing.assert_array_equal(a, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(p, [2, 2, 0, 4, 3])          # farthest of the same class
    np.testing.assert_array_equal(n, [3, 3, 3, 1, 2])          # nearest of another class
    loss = F.batch_hard_triplet_loss(mc.tensor(x, dtype=np.float64), y, margin=1.0, eps=0.0)
    want = np.mean(np.maximum([5 - 2 + 1, 4 - 1 + 1, 5 - 3 + 1, 7 - 1 + 1, 7 - 4 + 1], 0))
    assert loss.item() == pytest.approx(want)


def test_batch_hard_skips_anchors_without_positive_and_gradcheck():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 3))
    y = np.array([0, 0, 1, 1, 1, 2, 0])                        # class 2 has one sample: not an anchor
    a, _, _ = F.batch_hard_indices(x, y)
    assert 5 not in a and len(a) == 6
    mc.gradcheck(lambda t: F.batch_hard_triplet_loss(t, y, margin=2.0), [x])
    zero = F.batch_hard_triplet_loss(mc.tensor(x[:2], requires_grad=True), [0, 1])
    assert zero.item() == 0.0


def test_gram_matrix_matches_einsum_and_gradcheck():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    g = F.gram_matrix(mc.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(g, np.einsum("nchw,ndhw->ncd", x, x) / (3 * 4 * 5), rtol=1e-12)
    np.testing.assert_allclose(F.gram_matrix(mc.tensor(x, dtype=np.float64), normalize=False).numpy(),
                               np.einsum("nchw,ndhw->ncd", x, x), rtol=1e-12)
    mc.gradcheck(F.gram_matrix, [x])
    mc.gradcheck(lambda t: F.gram_matrix(t[:, :, ::2], normalize=False), [x])      # non-contiguous input
    with pytest.raises(ValueError, match=r"gram_matrix: expected \(N, C, H, W\)"):
        F.gram_matrix(mc.tensor(x[0]))


def test_batch_hard_soft_margin_by_hand_and_gradcheck():
    x = np.array([[0.0], [1.0], [5.0], [2.0], [9.0]])
    y = np.array([0, 0, 0, 1, 1])
    got = F.batch_hard_triplet_loss(mc.tensor(x, dtype=np.float64), y, margin=None, eps=0.0).item()
    d = np.array([5 - 2, 4 - 1, 5 - 3, 7 - 1, 7 - 4], np.float64)         # d(a, p) - d(a, n), as above
    assert got == pytest.approx(np.mean(np.log1p(np.exp(d))))
    rng = np.random.default_rng(3)
    mc.gradcheck(lambda t: F.batch_hard_triplet_loss(t, np.array([0, 0, 1, 1, 2, 2]), margin=None),
                 [rng.standard_normal((6, 3))])
