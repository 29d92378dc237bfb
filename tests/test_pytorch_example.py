"""examples/pytorch_mnist.py, pytorch/examples' MNIST script with only its imports changed, runs as it is
(its own main(): argument parsing, device choice, datasets with download=True, loaders, Adadelta + StepLR,
torch.save) on a small part of MNIST and learns: the test accuracy it prints is well above chance."""
import importlib.util
import os
import re
import sys

import minicnn as mc
from minicnn.utils.data import Subset

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "pytorch_mnist.py")
TRAIN, TEST = 1920, 500          # 30 steps of 64 images, then the test on 500 images


def load_example():
    spec = importlib.util.spec_from_file_location("pytorch_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_imports_differ_from_pytorch():
    with open(EXAMPLE) as f:
        code = [line for line in f if line.strip() and not line.startswith("#")]
    imports = [line.strip() for line in code if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import print_function", "import argparse", "import minicnn as torch",
                       "import minicnn.nn as nn", "import minicnn.nn.functional as F", "import minicnn.optim as optim",
                       "from minicnn.data import datasets, transforms",
                       "from minicnn.optim.lr_scheduler import StepLR"]
    body = "".join(code)
    assert "minicnn" not in body.split("from minicnn.optim.lr_scheduler import StepLR")[1]


def test_pytorch_mnist_script_trains(tmp_path, monkeypatch, capsys):
    ex = load_example()
    real = ex.datasets.MNIST
    made = []

    def small_mnist(root, train=True, **kwargs):          # the script's own datasets, cut to a small part
        ds = real(str(tmp_path / "data"), train=train, **kwargs)
        made.append(ds)
        return Subset(ds, range(TRAIN if train else TEST))

    monkeypatch.setattr(ex.datasets, "MNIST", small_mnist)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pytorch_mnist.py", "--epochs", "1", "--no-cuda", "--save-model"])
    ex.main()
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [640/1920 (33%)]" in out
    correct, total = map(int, re.search(r"Accuracy: (\d+)/(\d+)", out).groups())
    assert total == TEST and correct / total > 0.8, out           # chance is 0.10; measured 0.90
    assert os.path.exists(tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte")   # download=True
    assert made[0].transform.transforms[0].__class__.__name__ == "ToTensor"
    state = mc.load(tmp_path / "mnist_cnn.pt")                    # torch.save(model.state_dict(), ...)
    assert sorted(state) == ["conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "fc1.bias", "fc1.weight",
                             "fc2.bias", "fc2.weight"] and state["fc1.weight"].shape == (128, 9216)
