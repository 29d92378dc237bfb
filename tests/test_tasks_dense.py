"""The segmentation and embedding tasks: their pieces on hand-made cases, then each through fit() on a few images."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import tasks
from minicnn import train as T
from minicnn.tasks import embedding as E
from minicnn.tasks import segmentation as S


def test_tasks_are_found_by_dataset_and_model():
    assert tasks.task_for("mnist-segmentation").name == "segmentation"
    assert tasks.task_for("mnist", "embedding_net").name == "embedding"
    assert tasks.task_for("mnist", "lenet5").name == "classification"
    assert tasks.task_for("mnist").name == "classification"


def test_segmentation_scores_by_hand():
    C = np.array([[5, 1, 0], [0, 2, 1], [0, 0, 0]])          # class 2 never predicted nor true... except 1 FP
    acc, miou = S.scores(C)
    assert acc == pytest.approx(7 / 9)
    assert miou == pytest.approx((5 / 6 + 2 / 4 + 0 / 1) / 3)


def test_verification_pairs_and_auc():
    labels = np.repeat(np.arange(5), 20)
    i, j, same = E.verification_pairs(labels, n=200, seed=0)
    assert same[:100].all() and not same[100:].any() and (i != j).all()
    assert (same == (labels[i] == labels[j])).all()
    perfect = np.eye(5)[labels] * 3.0                          # embeddings at the class's corner: separable
    assert E.verification_auc(perfect, labels, n=200) == 1.0
    rng = np.random.default_rng(0)
    assert 0.35 < E.verification_auc(rng.standard_normal((100, 4)), labels, n=2000) < 0.65   # chance


def test_nearest_neighbour_accuracy_and_pca_by_hand():
    gallery, queries = np.array([[0.0], [10.0]]), np.array([[1.0], [9.0], [6.0]])
    emb = np.vstack([gallery, [[-5.0]], queries])               # halves: 3 gallery (0, 10, -5), 3 queries
    labels = np.array([0, 1, 2, 0, 1, 0])                       # query 6.0 is nearest 10 (label 1): wrong
    assert E.nearest_neighbour_accuracy(emb, labels) == pytest.approx(2 / 3)
    t = np.linspace(-1, 1, 7)
    line = np.stack([t, 2 * t, -t], 1) + 5.0
    p = E.pca_2d(line)
    np.testing.assert_allclose(np.abs(p[:, 0]), np.abs(t) * np.sqrt(6), atol=1e-12)
    np.testing.assert_allclose(p[:, 1], 0, atol=1e-12)


@pytest.mark.parametrize("model, picture, key", [("unet", "segmentation.png", "test_miou"),
                                                  ("embedding_net", "embeddings.png", "test_auc")])
def test_fit_runs_the_task(tmp_path, model, picture, key):
    cfg = T.config_for(model, epochs=1, batch_size=16, limit_train=16, limit_test=24, out=str(tmp_path))
    history, _ = T.fit(cfg, log=lambda *a: None)
    row = history[0]
    assert 0 <= row[key] <= 1 and np.isfinite(row["train_loss"])
    for name in ("checkpoint.npz", "metrics.csv", "curves.png", picture):
        assert os.path.getsize(tmp_path / name) > 0
    state = mc.load(str(tmp_path / "checkpoint.npz"))
    assert state["config"]["model"] == model
