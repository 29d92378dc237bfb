"""minicnn.tasks: the registry, and fit() running a task that is not classification through the same loop."""
import os

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import tasks
from minicnn import train as T


def test_task_for_knows_the_classification_datasets_and_names_the_unknown():
    assert tasks.task_for("mnist").name == "classification" and tasks.get_task("classification").datasets[0] == "mnist"
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'; available: mnist, fashion-mnist"):
        tasks.task_for("nope")
    with pytest.raises(ValueError, match=r"unknown task 'nope'"):
        tasks.get_task("nope")


class MeanTask(tasks.Task):
    """Regress the mean pixel of 8-pixel images (targets kept as a list by a collate function)."""
    name, datasets, eval_batch_size, curves = "mean-regression", ("means",), 16, (("loss", "loss"), ("err", "error"))
    pictures = []

    def build_datasets(self, cfg):
        rng = np.random.default_rng(0)
        x = rng.random((64, 1, 1, 8)).astype(np.float32)
        pairs = [(im, float(im.mean())) for im in x]           # a list is a dataset: len() and [i]
        return pairs[:48], pairs[48:], 1

    @staticmethod
    def collate(samples):
        return np.stack([s[0] for s in samples]), [float(s[1]) for s in samples]

    def batch_loss(self, model, x, y):
        assert isinstance(y, list)                            # the collate function's targets, untouched
        out = model(x).reshape(-1)
        return F.mse_loss(out, np.asarray(y, np.float32)), len(y), {"sq": float(((out.numpy() - y) ** 2).sum())}

    def train_metrics(self, sums, seen):
        return {"train_err": sums["sq"] / seen}

    def evaluate(self, model, loader):
        model.eval()
        with mc.no_grad():
            errs = [((model(x).numpy().reshape(-1) - np.asarray(y)) ** 2).tolist() for x, y in loader]
        return {"test_err": float(np.mean(sum(errs, [])))}

    def describe(self, row):
        return f"test err {row['test_err']:.5f}"

    def picture(self, model, test_set, out, device):
        MeanTask.pictures.append(out)


def test_fit_asks_the_task(monkeypatch, tmp_path):
    monkeypatch.setitem(tasks.TASKS, MeanTask.name, MeanTask)
    monkeypatch.setattr(T, "get_model", lambda name, **kw: nn.Sequential(nn.Flatten(), nn.Linear(8, 1)))
    cfg = T.config_for("lin", dataset="means", out=str(tmp_path / "run"), epochs=3, batch_size=8, lr=0.2,
                       optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="none", threads=None)
    lines = []
    history, _ = T.fit(cfg, log=lines.append)
    assert list(history[0]) == ["epoch", "train_loss", "train_err", "test_err", "lr", "seconds"]
    assert history[-1]["test_err"] < history[0]["test_err"] and "test err" in lines[-1]
    assert MeanTask.pictures == [str(tmp_path / "run")] * 3
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "curves.png", "metrics.csv"]
