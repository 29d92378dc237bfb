"""Embeddings (``embedding_net`` on MNIST): the triplet loss with online batch-hard mining; evaluated as face
verification is — ROC AUC of "same digit?" from the Euclidean distance on held-out pairs of test digits — and by
nearest-neighbour accuracy; ``embeddings.png`` (a 2-D PCA projection of test embeddings by digit) every epoch."""
import os

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.data import MNIST, Subset
from minicnn.data import transforms as T
from minicnn.metrics import roc_auc_score
from minicnn.serialization import atomic_write
from minicnn.tasks import Task, register

__all__ = ["Embedding", "MARGIN", "embed", "verification_pairs", "nearest_neighbour_accuracy", "pca_2d",
           "draw_embeddings"]

MARGIN = 0.2                    # of the triplet loss, on unit-length embeddings (FaceNet's alpha, §3.1)
PAIRS = 10_000                  # held-out verification pairs: half same digit, half different
PICTURE_POINTS = 2_000


def embed(model, loader):
    """(embeddings (N, D) float64, labels (N,)) over ``loader``, eval mode, no graph."""
    model.eval()
    out, labels = [], []
    with mc.no_grad():
        for x, y in loader:
            out.append(backend.to_cpu(model(x).data).astype(np.float64))
            labels.append(backend.to_cpu(y.data))
    return np.concatenate(out), np.concatenate(labels)


def verification_pairs(labels, n=PAIRS, seed=0):
    """(i, j, same) for ``n`` pairs of distinct samples, the first half with equal labels, the rest unequal;
    fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    by_label = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    i, j = [], []
    while len(i) < n // 2:                                     # same label
        a = int(rng.integers(len(labels)))
        pool = by_label[labels[a]]
        if len(pool) > 1:
            b = int(pool[rng.integers(len(pool))])
            if b != a:
                i.append(a), j.append(b)
    while len(i) < n:                                          # different labels
        a, b = (int(v) for v in rng.integers(len(labels), size=2))
        if labels[a] != labels[b]:
            i.append(a), j.append(b)
    i, j = np.array(i), np.array(j)
    return i, j, (labels[i] == labels[j]).astype(np.int64)


def verification_auc(E, labels, n=PAIRS, seed=0):
    """ROC AUC of the score -||e_i - e_j|| for telling same-label pairs from different-label pairs."""
    i, j, same = verification_pairs(labels, n, seed)
    return roc_auc_score(-np.linalg.norm(E[i] - E[j], axis=1), same)


def nearest_neighbour_accuracy(E, labels, chunk=1000):
    """1-nearest-neighbour accuracy: the second half of the samples labelled by their nearest neighbour in the
    first half (Euclidean)."""
    half = len(E) // 2
    gallery, g_labels, queries, q_labels = E[:half], labels[:half], E[half:], labels[half:]
    g2 = (gallery ** 2).sum(1)
    hits = 0
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d = g2[None, :] - 2 * q @ gallery.T                  # + |q|^2, the same for every gallery sample
        hits += int((g_labels[d.argmin(1)] == q_labels[s:s + chunk]).sum())
    return hits / max(len(queries), 1)


def pca_2d(E):
    """Projection of the rows of ``E`` onto their two leading principal components."""
    X = E - E.mean(0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    return X @ vt[:2].T


def draw_embeddings(path, E, labels, title=""):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    P = pca_2d(E)
    fig = Figure(figsize=(5.5, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for d in range(10):
        k = labels == d
        ax.scatter(P[k, 0], P[k, 1], s=4, label=str(d), alpha=0.7)
    ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set_title(title or "test embeddings, first two principal components", fontsize=9)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


@register
class Embedding(Task):
    """An embedding per image, learned with batch-hard triplets; digits are the identities."""
    name = "embedding"
    datasets = ("mnist",)
    models = ("embedding_net",)
    eval_batch_size = 1000
    curves = (("loss", "triplet loss"), ("auc", "verification ROC AUC"), ("nn_acc", "1-NN accuracy"))

    def build_datasets(self, cfg):
        """MNIST in [0, 1] (the model normalises), random shifts of up to 2 pixels for training."""
        root = cfg["data"]
        shift = T.RandomCrop(28, padding=2) if cfg.get("augment", True) else None
        train = MNIST(root, train=True, transform=shift, download=root is not None)
        test = MNIST(root, train=False)
        if cfg["limit_train"]:
            train = Subset(train, range(min(cfg["limit_train"], len(train))))
        if cfg["limit_test"]:
            test = Subset(test, range(min(cfg["limit_test"], len(test))))
        return train, test, 10

    def batch_loss(self, model, x, y):
        e = model(x)
        a, _, _ = F.batch_hard_indices(e, y)
        return F.batch_hard_triplet_loss(e, y, margin=MARGIN), len(y), {"anchors": len(a)}

    def evaluate(self, model, loader):
        E, labels = embed(model, loader)
        loss = F.batch_hard_triplet_loss(mc.tensor(E[:1000]), labels[:1000], margin=MARGIN).item()
        return {"test_loss": loss, "test_auc": verification_auc(E, labels),
                "test_nn_acc": nearest_neighbour_accuracy(E, labels)}

    def describe(self, row):
        return f"test verification AUC {row['test_auc']:.4f}  1-NN acc {100 * row['test_nn_acc']:.2f}%"

    def picture(self, model, test_set, out, device):
        from minicnn.data import DataLoader
        n = min(PICTURE_POINTS, len(test_set))
        E, labels = embed(model, DataLoader(Subset(test_set, range(n)), 1000, device=device))
        draw_embeddings(os.path.join(out, "embeddings.png"), E, labels)
