"""torchvision-compatible weights: a state dict saved as .npz (what examples/convert_torch_weights.py writes)
loads back and gives the same logits; the converter, run against a stand-in for torch."""
import importlib.util
import os
import sys
import types

import numpy as np
import pytest

import minicnn as mc
from minicnn.models import resnet18

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "convert_torch_weights.py")


def load_example():
    spec = importlib.util.spec_from_file_location("convert_torch_weights", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_npz_round_trip_gives_the_same_logits(tmp_path):
    mc.manual_seed(0)
    src = resnet18(num_classes=4)
    with mc.no_grad():                       # some training-mode steps so the running statistics are not 1/0
        for _ in range(2):
            src(mc.tensor(np.random.default_rng(0).standard_normal((4, 3, 32, 32))))
    np.savez(tmp_path / "r18.npz", **{k: v.numpy() for k, v in src.state_dict().items()})
    dst = resnet18(num_classes=4)
    dst.load_state_dict(dict(np.load(tmp_path / "r18.npz")))
    assert int(dst.layer1[0].bn1.num_batches_tracked.item()) == 2
    x = mc.tensor(np.random.default_rng(1).standard_normal((2, 3, 32, 32)))
    src.eval(), dst.eval()
    np.testing.assert_array_equal(dst(x).numpy(), src(x).numpy())


class FakeTensor:
    """Just what the converter calls on a torch tensor."""
    def __init__(self, a):
        self.a = a

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a


def test_converter_with_a_stand_in_for_torch(tmp_path, monkeypatch):
    sd = {k: FakeTensor(v.numpy().copy()) for k, v in resnet18(num_classes=3).state_dict().items()}
    fake = types.ModuleType("torch")
    fake.load = lambda path, map_location=None, weights_only=None: {"state_dict": sd}
    monkeypatch.setitem(sys.modules, "torch", fake)
    conv = load_example()
    assert conv.main([str(tmp_path / "in.pth"), str(tmp_path / "out.npz"), "--check", "resnet18"]) == 0
    arrays = dict(np.load(tmp_path / "out.npz"))
    assert list(arrays) == list(sd) and arrays["fc.weight"].shape == (3, 512)
    sd["fc.weight"] = FakeTensor(np.zeros((3, 7), np.float32))
    with pytest.raises(SystemExit, match="fc.weight"):
        conv.main([str(tmp_path / "in.pth"), str(tmp_path / "out.npz"), "--check", "resnet18"])


def test_converter_without_torch_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)                # import torch -> ImportError
    with pytest.raises(SystemExit, match="needs PyTorch"):
        load_example().main([str(tmp_path / "in.pth"), str(tmp_path / "out.npz")])


def test_freezing_and_replacing_the_head():
    """Transfer learning: frozen parameters get no gradient and do not move; the new head trains."""
    from minicnn import nn, optim
    import minicnn.functional as F
    m = resnet18(num_classes=10)
    m.requires_grad_(False)
    m.fc = nn.Linear(512, 3)
    frozen = {k: v.numpy().copy() for k, v in m.state_dict().items() if not k.startswith("fc.")}
    head = m.fc.weight.numpy().copy()
    opt = optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    x, y = mc.tensor(np.random.default_rng(0).standard_normal((4, 3, 32, 32))), mc.tensor(np.array([0, 1, 2, 0]))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(m.eval()(x), y).backward()
        opt.step()
    assert all(p.grad is None for n, p in m.named_parameters() if not n.startswith("fc."))
    for k, v in m.state_dict().items():
        if not k.startswith("fc."):
            np.testing.assert_array_equal(v.numpy(), frozen[k])
    assert not np.allclose(m.fc.weight.numpy(), head)


def test_finetune_example_runs(capsys):
    spec = importlib.util.spec_from_file_location(
        "finetune", os.path.join(os.path.dirname(EXAMPLE), "finetune.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--seed", "1", "--pretrain-images", "300", "--finetune-images", "20"]) == 0
    out = capsys.readouterr().out
    assert "pretrained on 0-4" in out and "20 images of 5-9" in out and "from scratch" in out


def test_converter_reads_timm_safetensors_into_the_timm_keyed_models(tmp_path, monkeypatch):
    """timm's files are .safetensors: the converter reads them (here through a stand-in for the package) and the
    arrays load into inception_resnet_v2's timm keys; a torchvision-keyed model refuses them, naming keys."""
    from minicnn.models import inception_resnet_v2
    sd = {k: v.numpy().copy() for k, v in inception_resnet_v2(num_classes=5).state_dict().items()}
    fake = types.ModuleType("safetensors.numpy")
    fake.load_file = lambda path: dict(sd)
    monkeypatch.setitem(sys.modules, "safetensors", types.ModuleType("safetensors"))
    monkeypatch.setitem(sys.modules, "safetensors.numpy", fake)
    conv = load_example()
    out = tmp_path / "irv2.npz"
    assert conv.main([str(tmp_path / "m.safetensors"), str(out), "--check", "inception_resnet_v2"]) == 0
    arrays = dict(np.load(out))
    assert arrays["classif.weight"].shape == (5, 1536) and len(arrays) == len(sd)
    with pytest.raises(SystemExit, match="conv2d_1a"):
        conv.main([str(tmp_path / "m.safetensors"), str(out), "--check", "inception_v3"])
