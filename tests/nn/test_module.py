"""Module plumbing: registration, traversal, modes, state dicts (and their errors), init, save/load."""
import os

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.register_buffer("running", np.zeros(3))
        self.fc2 = nn.Linear(3, 2, bias=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(Block(), nn.Identity())
        self.heads = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1)])

    def forward(self, x):
        h = self.layer1(x)
        return self.heads[0](h) + self.heads[1](h)


def test_registration_order_and_keys():
    net = Net()
    assert list(net.state_dict()) == [            # as torch: a module's own tensors, then its children's
        "layer1.0.running", "layer1.0.fc1.weight", "layer1.0.fc1.bias", "layer1.0.fc2.weight",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    assert [n for n, _ in net.named_parameters()][:3] == ["layer1.0.fc1.weight", "layer1.0.fc1.bias",
                                                          "layer1.0.fc2.weight"]
    assert len(list(net.children())) == 2 and len(list(net.modules())) == 10
    assert sum(p.numel() for p in net.parameters()) == 4 * 3 + 3 + 3 * 2 + 2 * 3


def test_train_eval_and_requires_grad_and_zero_grad():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.layer1.requires_grad_(False)
    net(mc.tensor(np.ones((2, 4)))).sum().backward()
    assert net.layer1[0].fc1.weight.grad is None and net.heads[0].weight.grad is not None
    net.zero_grad()
    assert net.heads[0].weight.grad is None


def test_load_state_dict_round_trip_and_errors(tmp_path):
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = mc.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    sd = {k: v.numpy().copy() for k, v in a.state_dict().items()}
    sd["extra.weight"] = np.ones(2)
    del sd["heads.1.bias"]
    sd["heads.0.weight"] = np.ones((5, 5))
    before = {k: v.numpy().copy() for k, v in b.state_dict().items()}
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: heads.1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "heads.0.weight: checkpoint (5, 5) vs model (1, 2)" in msg
    for k, v in b.state_dict().items():          # nothing was changed
        np.testing.assert_array_equal(v.numpy(), before[k])
    del sd["heads.0.weight"], sd["extra.weight"]
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["heads.0.weight", "heads.1.bias"] and unexpected == []


def test_save_load_round_trip_permissions_and_corruption(tmp_path):   # atomicity: tests/test_serialization.py
    net = Net()
    path = tmp_path / "w.npz"
    mc.save(net.state_dict(), path)
    assert np.load(path)["layer1.0.fc1.weight"].shape == (3, 4)   # plain .npz, readable without minicnn
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask          # as open() would make it, not mkstemp's 0600
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        mc.load(path)
    path.write_bytes(good)

    class Boom:
        pass
    with pytest.raises(TypeError, match="cannot store"):             # refused while encoding, before any write
        mc.save({"weights": net.state_dict(), "bad": Boom()}, path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["w.npz"]                        # no temporary .w.npz.*.part either
    with pytest.raises(FileNotFoundError, match="no such file"):
        mc.load(tmp_path / "missing.npz")


def test_nested_checkpoint_round_trip(tmp_path):
    obj = {"model": {"a.w": np.arange(3.0)}, "epoch": 4, "lrs": [0.1, 0.01], "opt": {"state": {0: {"step": 2}}},
           "rng": mc.random.get_rng_state(), "none": None, "t": (1, "x")}
    mc.save(obj, tmp_path / "c.npz")
    back = mc.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back["model"]["a.w"], obj["model"]["a.w"])
    assert back["epoch"] == 4 and back["lrs"] == [0.1, 0.01] and back["opt"]["state"][0]["step"] == 2
    assert back["rng"] == obj["rng"] and back["none"] is None and back["t"] == (1, "x")


def test_init_statistics_and_defaults():
    mc.manual_seed(0)
    w = nn.Parameter(np.empty((400, 300), np.float32))
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.01 * np.sqrt(2 / 300) * 5
    nn.init.xavier_uniform_(w)
    bound = np.sqrt(6 / 700)
    assert w.numpy().max() <= bound and w.numpy().min() >= -bound and w.numpy().max() > 0.95 * bound
    lin = nn.Linear(100, 10)                       # PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(lin.weight.numpy()).max() <= 0.1 and np.abs(lin.bias.numpy()).max() <= 0.1
    mc.manual_seed(3)
    a = nn.Linear(5, 5).weight.numpy()
    mc.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.numpy(), a)


def test_repr_like_pytorch():
    r = repr(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    assert r == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)"


def test_forward_hook_and_dtype_move():
    net = Net().double()
    seen = []
    h = net.heads[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net(mc.tensor(np.ones((2, 4)), dtype=np.float64))
    h.remove()
    net(mc.tensor(np.ones((2, 4)), dtype=np.float64))
    assert seen == [(2, 1)] and net.heads[0].weight.dtype == np.float64
