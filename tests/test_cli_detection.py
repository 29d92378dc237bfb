"""Detectors through the loop and the command line: train (detections.png), evaluate (AP per class, mAP),
detect on a PNG, and bit-identical resume."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import models
from minicnn import train as T
from minicnn.__main__ import main
from minicnn.data import MNISTDetection

REAL_GET_MODEL = models.get_model


@pytest.fixture
def tiny_detectors(monkeypatch):
    monkeypatch.setattr(T, "get_model", lambda name, **kw: REAL_GET_MODEL(name, width=4, **kw))


SMALL = ["--dataset", "mnist-detection", "--epochs", "1", "--batch-size", "4", "--train-size", "8", "--limit-test", "6"]


def test_train_evaluate_detect(tiny_detectors, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "yolo_v2", "--out", out, *SMALL]) == 0
    text = capsys.readouterr().out
    assert "training yolo_v2 on mnist-detection: 1 epochs, batch 4, adam lr 0.001" in text
    assert "epoch 1/1  train loss" in text and "test mAP@0.5 " in text and "done: test mAP@0.5 " in text
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "curves.png", "detections.png", "metrics.csv"]
    assert open(os.path.join(out, "detections.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "metrics.csv")) as f:
        assert f.readline().strip() == "epoch,train_loss,test_map50,test_map,lr,seconds"
    ckpt = os.path.join(out, "checkpoint.npz")
    state = mc.load(ckpt)
    fitted = state["model"]["anchors"]                          # k-means anchors travel with the weights
    assert fitted.shape == (5, 2) and not np.allclose(fitted, REAL_GET_MODEL("yolo_v2").anchors.numpy())
    reported = float(text.split("done: test mAP@0.5 ")[1].split(",")[0])

    assert main(["evaluate", "yolo_v2", ckpt, "--limit-test", "6"]) == 0
    report = capsys.readouterr().out
    assert "yolo_v2 on the mnist-detection test set (6 images" in report and "AP@0.5 per class: 0: " in report
    assert float(report.split("mAP@0.5           ")[1].split()[0]) == pytest.approx(reported, abs=1e-4)
    assert "mAP@0.5:0.95" in report

    from matplotlib import image as mpimg
    image = MNISTDetection(train=False, size=1)[0][0][0]
    png = str(tmp_path / "mine.png")
    mpimg.imsave(png, 1 - image, cmap="gray", vmin=0, vmax=1)    # dark digits on white, as on paper
    assert main(["detect", "yolo_v2", ckpt, png, "--out", str(tmp_path / "boxes.png"), "--score", "0"]) == 0
    said = capsys.readouterr().out
    assert "detections (score >= 0.0) -> " in said and os.path.exists(tmp_path / "boxes.png")
    assert main(["detect", "yolo_v2", ckpt, str(tmp_path / "missing.png")]) == 2


def test_detector_resume_is_bit_identical(tiny_detectors, tmp_path, monkeypatch):
    def cfg(out):
        return T.config_for("faster_rcnn", out=str(tmp_path / out), epochs=2, batch_size=4, limit_train=8,
                            limit_test=4)
    history, straight = T.fit(cfg("straight"), log=lambda s: None)
    real = T.train_one_epoch
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(T, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.fit(cfg("broken"), log=lambda s: None)
    monkeypatch.setattr(T, "train_one_epoch", real)
    resumed_history, resumed = T.fit(cfg("broken"), resume=str(tmp_path / "broken" / "checkpoint.npz"),
                                     log=lambda s: None)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)      # RoI and anchor samples included
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop(resumed_history) == drop(history)
