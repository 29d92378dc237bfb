"""Losses that compare embeddings: the contrastive loss of Siamese networks and the triplet loss with online
batch-hard mining.  Both are composed of existing differentiable ops, so their gradients come for free."""
import numpy as np

from minicnn.autograd import Tensor, constant
from minicnn.backend import to_cpu
from minicnn.functional.activation import relu
from minicnn.functional.loss import _reduce, triplet_margin_loss
from minicnn.ops import exp, log

__all__ = ["pairwise_distance", "contrastive_loss", "batch_hard_triplet_loss", "batch_hard_indices"]


def _check_pair(op, x1, x2):
    if x1.ndim != 2 or tuple(x1.shape) != tuple(x2.shape):
        raise ValueError(f"{op}: expected two (N, D) embeddings of one shape, got {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)}")


def pairwise_distance(x1, x2, p=2.0, eps=1e-6):
    """||x1 - x2 + eps||_p over the last dimension, row by row, as PyTorch's: (N, D), (N, D) -> (N,)."""
    _check_pair("pairwise_distance", x1, x2)
    return (abs(x1 - x2 + eps) ** p).sum(axis=-1) ** (1.0 / p)


def contrastive_loss(x1, x2, target, margin=1.0, reduction="mean"):
    """Hadsell, Chopra & LeCun (2006), eq. 4: with d = ||x1 - x2||, a similar pair (``target`` 1) costs d^2 / 2
    and a dissimilar one (``target`` 0) max(0, margin - d)^2 / 2, so dissimilar pairs are pushed apart only
    until they are ``margin`` apart.  x1, x2 (N, D); target (N,) of 0/1."""
    _check_pair("contrastive_loss", x1, x2)
    target = constant(target, x1.device)
    if tuple(target.shape) != (x1.shape[0],):
        raise ValueError(f"contrastive_loss: target shape {tuple(target.shape)} should be ({x1.shape[0]},)")
    y = to_cpu(target.data)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("contrastive_loss: target must hold 1 (similar pair) or 0 (dissimilar pair)")
    y = constant(target.data.astype(x1.dtype), x1.device)
    d = pairwise_distance(x1, x2)
    loss = y * d * d * 0.5 + (1 - y) * relu(margin - d) ** 2 * 0.5
    return _reduce("contrastive_loss", loss, reduction)


def batch_hard_indices(embeddings, labels):
    """For each anchor i of the batch, the index of its hardest positive (same label, j != i, farthest) and
    hardest negative (other label, nearest) by Euclidean distance (Hermans, Beyer & Leibe 2017, §2).
    Returns (anchors, positives, negatives) int64 arrays over the anchors that have both."""
    x = to_cpu(embeddings.data if isinstance(embeddings, Tensor) else embeddings).astype(np.float64)
    y = to_cpu(labels.data if isinstance(labels, Tensor) else np.asarray(labels))
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"batch_hard_triplet_loss: expected embeddings (N, D) and labels (N,), got "
                         f"{x.shape} and {y.shape}")
    sq = (x * x).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
    same = y[:, None] == y[None, :]
    pos = same & ~np.eye(len(x), dtype=bool)
    neg = ~same
    keep = np.flatnonzero(pos.any(1) & neg.any(1))
    hardest_pos = np.where(pos, d, -np.inf).argmax(1)
    hardest_neg = np.where(neg, d, np.inf).argmin(1)
    return keep, hardest_pos[keep], hardest_neg[keep]


def batch_hard_triplet_loss(embeddings, labels, margin=1.0, p=2, eps=1e-6, reduction="mean"):
    """Triplet loss with online batch-hard mining (Hermans et al. 2017, eq. 5): each sample of the batch is an
    anchor with its farthest positive and nearest negative in the batch, mined without a gradient; the loss is
    ``triplet_margin_loss`` over those triplets (anchors lacking a positive or a negative are left out).
    ``margin=None`` is the paper's soft margin, log(1 + exp(d(a, p) - d(a, n))) (§2, "soft-margin"), which keeps
    pushing triplets apart and does not stall where all distances are equal.
    embeddings (N, D), labels (N,).  With no valid anchor the loss is 0 (and still has a graph)."""
    a, pi, ni = batch_hard_indices(embeddings, labels)
    if len(a) == 0:
        return (embeddings * 0).sum()
    if margin is None:
        d = pairwise_distance(embeddings[a], embeddings[pi], p, eps) - pairwise_distance(embeddings[a],
                                                                                          embeddings[ni], p, eps)
        return _reduce("batch_hard_triplet_loss", log(exp(d) + 1.0), reduction)     # |d| <= 2 on unit vectors
    return triplet_margin_loss(embeddings[a], embeddings[pi], embeddings[ni], margin=margin, p=p, eps=eps,
                               reduction=reduction)
