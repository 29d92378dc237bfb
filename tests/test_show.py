"""What a network sees: saliency and Grad-CAM against hand-derived values on tiny models; the command line."""
import os

import numpy as np

import minicnn as mc
import minicnn.nn as nn
from minicnn import show


class TinyCAM(nn.Module):
    """conv -> ReLU -> global average pool -> linear: Grad-CAM on the ReLU is ReLU(sum_k W[t, k] / (h w) A_k)."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(axis=(2, 3)))


def test_saliency_of_a_linear_model_is_its_weights():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = np.random.default_rng(0).random((1, 1, 3, 4)).astype(np.float32)
    sal, target = show.saliency(model, x, target=2)
    np.testing.assert_allclose(sal, np.abs(model[1].weight.numpy()[2]).reshape(3, 4), rtol=1e-6)
    assert target == 2


def test_grad_cam_by_hand():
    mc.manual_seed(0)
    model = TinyCAM()
    model.fc.weight.data[...] = [[-1.0, -0.5, -0.2], [0.2, 1.0, -0.3]]      # class 0: an all-zero map
    x = np.random.default_rng(1).random((1, 1, 4, 4)).astype(np.float32)
    with mc.no_grad():
        A = model.relu(model.conv(mc.tensor(x))).numpy()[0]                 # (3, 4, 4)
    for t in (0, 1):
        cam, target, layer = show.grad_cam(model, x, layer="relu", target=t)
        want = np.maximum((model.fc.weight.numpy()[t][:, None, None] / 16 * A).sum(0), 0)
        if want.max() > 0:
            np.testing.assert_allclose(cam, want / want.max(), rtol=1e-5, atol=1e-7)
        else:
            assert (cam == 0).all()
        assert layer == "relu" and target == t
    assert show.grad_cam(model, x, layer="relu", target=1)[0].max() == 1     # the check was not all zeros


def test_command_line_on_a_lenet5_checkpoint(tmp_path):
    from minicnn.models import get_model
    model = get_model("lenet5")
    ckpt = tmp_path / "checkpoint.npz"
    mc.save({"model": model.state_dict(), "config": {"dataset": "mnist"}}, str(ckpt))
    from minicnn.__main__ import main
    assert main(["show", "lenet5", str(ckpt), "--out", str(tmp_path / "pics")]) == 0
    for name in ("filters.png", "features.png", "saliency.png", "gradcam.png"):
        assert os.path.getsize(tmp_path / "pics" / name) > 0
