"""minicnn.summary: rows and totals computed by hand for a small model, conventions (per image, conv/linear
only, shared layers once, frozen parameters), the command line, and the model registry."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn
from minicnn.models import get_model, list_models
from minicnn.summary import main, summary


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)     # 6 * 2 * 9 + 6 = 114 parameters
        self.bn = nn.BatchNorm2d(6)                              # 12
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 4 * 4, 5)                        # 485
        self.shared = nn.Linear(5, 5)                            # 30, applied twice

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.shared(self.shared(self.fc(x.reshape(x.shape[0], -1))))


def test_rows_and_totals_by_hand():
    m = Small()
    s = summary(m, (4, 8, 8))
    assert [(r.name, r.type, tuple(r.output_shape), r.params, r.mult_adds) for r in s.rows] == [
        ("conv", "Conv2d", (1, 6, 8, 8), 114, 6 * 8 * 8 * 2 * 9),       # each output sees 2 of 4 channels
        ("bn", "BatchNorm2d", (1, 6, 8, 8), 12, 0),
        ("pool", "MaxPool2d", (1, 6, 4, 4), 0, 0),
        ("fc", "Linear", (1, 5), 485, 96 * 5),
        ("shared", "Linear", (1, 5), 30, 25),
        ("shared", "Linear", (1, 5), 0, 25)]                              # parameters counted once
    assert s.total_params == s.trainable_params == 114 + 12 + 485 + 30
    assert s.total_mult_adds == 6912 + 480 + 50
    text = str(s)
    assert "conv (Conv2d)" in text and "Total params: 641" in text and "Total mult-adds: 7,442" in text


def test_frozen_parameters_mode_and_graph():
    m = Small()
    m.conv.requires_grad_(False)
    m.train()
    m.bn.eval()                                                           # a frozen BatchNorm stays frozen
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    s = summary(m, (4, 8, 8))
    assert s.trainable_params == 641 - 114 and "Non-trainable params: 114" in str(s)
    assert m.training and m.conv.training and not m.bn.training          # modes restored
    for k, v in m.state_dict().items():                                   # eval mode: running stats untouched
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert all(p.grad is None for p in m.parameters())
    assert not m._modules["conv"]._forward_hooks                          # hooks removed


def test_bad_input_size():
    with pytest.raises(ValueError, match="input_size"):
        summary(Small(), (4, 0, 8))


def test_command_line(capsys):
    assert main(["lenet5"]) == 0
    out = capsys.readouterr().out
    assert "conv1 (Conv2d)" in out and "[1, 6, 24, 24]" in out and "Total params: 44,426" in out
    assert main(["resnet20", "--num-classes", "4"]) == 0
    assert "[1, 4]" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["no_such_net"])


def test_registry_lists_every_family():
    names = list_models()
    for n in ("lenet5", "alexnet", "alexnet_paper", "zfnet", "vgg16_c", "vgg19_bn", "nin", "googlenet", "resnet152",
              "resnet110", "preact_resnet164", "densenet264", "mobilenet_v1", "darknet53", "wide_resnet50_2",
              "inception_v2", "inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2",
              "xception", "mobilenet_v2", "efficientnet_b0", "efficientnet_b7"):
        assert n in names
    m = get_model("ResNet20", num_classes=3)
    assert m(mc.tensor(np.zeros((1, 3, 32, 32)))).shape == (1, 3)


def test_package_function_and_python_m_minicnn_summary(capsys):
    from minicnn.__main__ import main as cli
    assert mc.summary(Small(), (4, 8, 8)).total_params == 641
    assert cli(["summary", "resnet20"]) == 0
    assert "Total params: 269,722" in capsys.readouterr().out
