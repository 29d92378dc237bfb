"""The training loop: bit-identical resume, the non-finite-loss stop, auxiliary heads, run files."""
import csv
import os

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
from minicnn import train as T


class TinyNet(nn.Module):
    """A small MLP with dropout (so resuming must restore the random generator too)."""
    def __init__(self, num_classes=10, aux=False):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.2))
        self.fc = nn.Linear(32, num_classes)
        self.aux = nn.Linear(32, num_classes) if aux else None

    def forward(self, x):
        h = self.body(x)
        return (self.fc(h), self.aux(h)) if self.aux is not None and self.training else self.fc(h)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Runs of TinyNet on the first 256 MNIST training and 128 test images; returns a config maker."""
    models = {"tiny": TinyNet, "tiny-aux": lambda num_classes: TinyNet(num_classes, aux=True)}
    monkeypatch.setattr(T, "get_model", lambda name, **kw: models[name](**kw))

    def config(out="run", model="tiny", **kw):
        kw = dict(dict(epochs=3, batch_size=32, lr=0.05, limit_train=256, limit_test=128), **kw)
        return T.config_for(model, dataset="mnist", out=str(tmp_path / out), **kw)
    return config


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_resume_is_bit_identical(tiny, monkeypatch):
    history, straight = T.fit(tiny("straight"), log=lambda s: None)
    calls, real = [], T.train_one_epoch

    def interrupted(*args):                              # Ctrl-C during the third epoch
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(T, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.fit(tiny("broken"), log=lambda s: None)
    monkeypatch.setattr(T, "train_one_epoch", real)
    ckpt = os.path.join(tiny("broken")["out"], "checkpoint.npz")
    assert mc.load(ckpt)["epoch"] == 2
    lines = []
    resumed_history, resumed = T.fit(tiny("broken"), resume=ckpt, log=lines.append)
    assert lines[0].startswith(f"resumed from {ckpt} after epoch 2") and len(lines) == 2
    a, b = weights(straight), weights(resumed)
    assert all(np.array_equal(a[k], b[k]) for k in a)           # bit for bit, not just close
    drop_time = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]
    assert drop_time(resumed_history) == drop_time(history)
    assert history[-1]["test_acc"] > 0.5                         # and it did learn something


def test_run_files_and_log(tiny, tmp_path):
    lines = []
    history, _ = T.fit(tiny(epochs=2), log=lines.append)
    out = tmp_path / "run"
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "curves.png", "metrics.csv"]
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
    assert float(rows[1]["lr"]) == pytest.approx(0.05 * (1 + np.cos(np.pi / 2)) / 2)   # cosine schedule
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert lines[1].startswith("epoch 2/2  train loss ") and "test acc" in lines[1] and lines[1].endswith(" s")
    state = mc.load(str(out / "checkpoint.npz"))
    assert state["epoch"] == 2 and state["config"]["model"] == "tiny" and len(state["history"]) == 2
    assert set(state["rng"]) == {"minicnn", "python"} and state["data_order"]["epoch"] == 2
    assert "momentum_buffer" in state["optimizer"]["state"][0] and state["scheduler"]["last_epoch"] == 2
    assert not [n for n in os.listdir(out) if n.startswith(".")]   # no temporary files left


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny, monkeypatch):
    class Explodes(TinyNet):                             # logits become nan in the 12th training step
        steps = 0

        def forward(self, x):
            out = super().forward(x)
            if self.training:
                Explodes.steps += 1
                if Explodes.steps >= 12:
                    return out * float("nan")
            return out
    monkeypatch.setattr(T, "get_model", lambda name, **kw: Explodes(**kw))
    cfg = tiny()
    ckpt = os.path.join(cfg["out"], "checkpoint.npz")
    with pytest.raises(T.NonFiniteLossError, match=r"loss became nan at epoch 2, batch 4"):
        T.fit(cfg, log=lambda s: None)
    state = mc.load(ckpt)                                # epoch 1's checkpoint, intact and finite
    assert state["epoch"] == 1 and all(np.isfinite(v).all() for v in state["model"].values())


def test_auxiliary_heads_add_three_tenths_of_their_loss(tiny):
    import minicnn.functional as F
    x, y = mc.tensor(np.random.default_rng(0).random((4, 1, 28, 28))), mc.tensor(np.array([1, 2, 3, 4]))
    model = TinyNet(aux=True)
    mc.manual_seed(0)
    loss, main = T._loss(model(x), y)
    mc.manual_seed(0)
    logits, aux = model(x)
    expected = F.cross_entropy(logits, y).item() + 0.3 * F.cross_entropy(aux, y).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6) and main.shape == (4, 10)
    history, _ = T.fit(tiny(model="tiny-aux", epochs=1), log=lambda s: None)   # the loop runs it end to end
    assert np.isfinite(history[0]["train_loss"])


def test_resume_may_extend_the_run_and_refuses_another_model(tiny):
    T.fit(tiny(epochs=1), log=lambda s: None)
    ckpt = os.path.join(tiny()["out"], "checkpoint.npz")
    history, _ = T.fit(tiny(epochs=2, lr=0.01), resume=ckpt, log=lambda s: None)
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["lr"] == pytest.approx(0.01 * (1 + np.cos(np.pi / 2)) / 2)   # new lr, new T_max
    with pytest.raises(ValueError, match="cannot resume a run of model 'tiny' as model 'tiny-aux'"):
        T.fit(tiny(model="tiny-aux", epochs=3), resume=ckpt, log=lambda s: None)


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.skipif(not mc.cuda_available(), reason="needs a GPU, or NUMBA_ENABLE_CUDASIM=1 for the simulator")
def test_two_lenet5_steps_on_cuda_match_the_cpu(device):
    from minicnn.data import MNIST, DataLoader, Subset
    from minicnn.data.transforms import Normalize
    from minicnn.models import lenet5
    data = Subset(MNIST(train=False, transform=Normalize(0.1307, 0.3081)), range(2))
    mc.manual_seed(0)
    cpu = lenet5()
    gpu = lenet5().to(device)
    gpu.load_state_dict(cpu.state_dict())
    start, runs = weights(cpu), {}
    for model, dev in ((cpu, "cpu"), (gpu, device)):           # the loop's own epoch: two steps of 1 image
        optimizer = mc.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(data, batch_size=1, shuffle=True, seed=0, device=dev)
        runs[dev] = T.train_one_epoch(model, loader, optimizer, 0, 1)[:2], weights(model)
    (loss_cpu, acc_cpu), w_cpu = runs["cpu"]
    (loss_gpu, acc_gpu), w_gpu = runs[device]
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-5) and acc_gpu == acc_cpu
    for k in w_cpu:
        np.testing.assert_allclose(w_gpu[k], w_cpu[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert all(not np.array_equal(w_cpu[k], start[k]) for k in start)        # both steps really moved them
