"""``python -m minicnn``: train, evaluate, the non-finite-loss exit, and the verify/summary hand-over."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import train as T
from minicnn.__main__ import main


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, explode=False):
        super().__init__()
        self.fc1, self.fc2, self.explode = nn.Linear(784, 32), nn.Linear(32, num_classes), explode

    def forward(self, x):
        out = self.fc2(F.relu(self.fc1(x.reshape(x.shape[0], -1))))
        return out * float("nan") if self.explode and self.training else out


@pytest.fixture
def tiny_models(monkeypatch):
    models = {"tiny": TinyNet, "boom": lambda num_classes: TinyNet(num_classes, explode=True)}
    monkeypatch.setattr(T, "get_model", lambda name, **kw: models[name](**kw))


SMALL = ["--dataset", "mnist", "--epochs", "1", "--batch-size", "32", "--limit-train", "256", "--limit-test", "200"]


def test_train_then_evaluate(tiny_models, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "tiny", "--out", out, "--lr", "0.1", *SMALL]) == 0
    text = capsys.readouterr().out
    assert "training tiny on mnist: 1 epochs, batch 32, sgd lr 0.1" in text
    assert "epoch 1/1  train loss" in text and "done: test accuracy" in text
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "curves.png", "metrics.csv"]
    acc = float(text.split("done: test accuracy ")[1].split("%")[0])

    # no --dataset: evaluate takes mnist from the checkpoint's configuration
    assert main(["evaluate", "tiny", os.path.join(out, "checkpoint.npz"), "--limit-test", "200"]) == 0
    report = capsys.readouterr().out
    assert f"accuracy              {acc:.2f}%" in report
    assert f"error rate            {100 - acc:.2f}%" in report and "balanced error rate" in report
    rows = report.split("predicted class)\n")[1].strip().split("\n")[1:]
    C = np.array([[int(v) for v in r.split()[1:]] for r in rows])
    assert C.shape == (10, 10) and C.sum() == 200                  # every test image counted once
    assert np.trace(C) / 200 * 100 == pytest.approx(acc, abs=0.01)


def test_non_finite_loss_exits_with_advice(tiny_models, tmp_path, capsys):
    assert main(["train", "boom", "--out", str(tmp_path / "run"), *SMALL]) == 1
    err = capsys.readouterr().err
    assert "the training loss became nan at epoch 1, batch 1" in err and "no epoch had finished" in err
    assert "--lr" in err


def test_resume_needs_an_existing_checkpoint(tmp_path, capsys):
    assert main(["train", "lenet5", "--resume", str(tmp_path / "nope.npz")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_verify_and_summary_are_handed_their_arguments(monkeypatch, capsys):
    seen = {}
    for name in ("verify", "summary"):
        fake = types.ModuleType(f"minicnn.{name}")
        fake.main = lambda argv, name=name: seen.setdefault(name, argv) and 7
        monkeypatch.setitem(sys.modules, f"minicnn.{name}", fake)
        monkeypatch.setattr(minicnn, name, fake, raising=False)
    assert main(["verify", "--quick", "conv2d"]) == 7 and seen["verify"] == ["--quick", "conv2d"]
    assert main(["summary", "lenet5", "--input", "1,28,28"]) == 7 and seen["summary"] == ["lenet5", "--input",
                                                                                           "1,28,28"]


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "evaluate", "verify", "summary"):
        assert command in out.stdout
    bad = subprocess.run([sys.executable, "-m", "minicnn", "train", "lenet5", "--optimizer", "lbfgs"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'lbfgs'" in bad.stderr


def test_lenet5_main_job_path_on_a_small_subset(tmp_path, capsys):
    """The real command, in its own process, on 1024 training and 200 test images for one epoch."""
    out = str(tmp_path / "lenet")
    run = subprocess.run([sys.executable, "-m", "minicnn", "train", "lenet5", "--out", out, "--epochs", "1",
                          "--batch-size", "32", "--limit-train", "1024", "--limit-test", "200"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "training lenet5 on mnist: 1 epochs, batch 32, sgd lr 0.05 (cosine), cpu" in run.stdout
    assert "epoch 1/1" in run.stderr                             # the tqdm bar, on stderr
    assert main(["evaluate", "lenet5", os.path.join(out, "checkpoint.npz"), "--limit-test", "200"]) == 0
    report = capsys.readouterr().out
    assert "lenet5 on the mnist test set (200 images)" in report
    acc = float(report.split("accuracy")[1].split("%")[0])
    assert acc > 25                                              # 32 steps: well above chance (10%)
