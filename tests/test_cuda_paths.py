"""Code paths that differ on the cuda device: index arrays, comparisons with host operands, losses and BatchNorm
without host round trips.  On the simulated device these run on NumPy arrays; ``tests/run.sh`` runs them again
on the strict CuPy stand-in (``tests/strict_cupy.py``), where a NumPy operand or an implicit conversion fails as
on a GPU, and where host synchronisations are counted."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import backend
from helpers import DEVICES, randn

STRICT = getattr(backend.cupy, "STANDIN", False)


def syncs():
    """Host synchronisations so far (only counted on the strict stand-in; 0 elsewhere)."""
    if not STRICT:
        return 0
    import strict_cupy
    return strict_cupy.SYNCS[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["numpy", "list", "tensor", "cpu tensor", "mask", "mask tensor", "tuple"])
def test_getitem_with_index_arrays(device, kind):
    x = randn(4, 5, seed=0)
    rows = np.array([2, 0, 2, 3])
    index = {"numpy": rows, "list": rows.tolist(), "tensor": mc.tensor(rows, device=device),
             "cpu tensor": mc.tensor(rows), "mask": x[:, 0] > 0, "mask tensor": mc.tensor(x[:, 0] > 0, device=device),
             "tuple": (mc.tensor(rows, device=device), np.array([1, 1, 4, 0]))}[kind]
    host = {"tensor": rows, "cpu tensor": rows, "mask tensor": x[:, 0] > 0,
            "tuple": (rows, np.array([1, 1, 4, 0]))}.get(kind, index)
    t = mc.tensor(x, device=device, requires_grad=True)
    y = t[index]
    assert y.device == device
    np.testing.assert_allclose(y.numpy(), x.astype(np.float32)[host])
    gy = randn(*y.shape, seed=1)
    (y * mc.tensor(gy, device=device)).sum().backward()
    expected = np.zeros_like(x)
    np.add.at(expected, host, gy)                  # repeated rows accumulate
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_getitem_out_of_range_device_index_fails_clearly(device):
    t = mc.tensor(randn(4, 5), device=device)
    with pytest.raises(IndexError, match=r"getitem: index out of range for tensor of shape \(4, 5\)"):
        t[mc.tensor([1, 4], device=device)]


@pytest.mark.parametrize("device", DEVICES)
def test_compare_with_host_operands(device):
    x = randn(3, 4, seed=2)
    t = mc.tensor(x, device=device)
    other = randn(3, 4, seed=3).astype(np.float32)
    for got, want in [(t < other, x.astype(np.float32) < other), (t >= other.tolist(), x.astype(np.float32) >= other),
                      (t <= mc.tensor(other), x.astype(np.float32) <= other), (t > np.float32(0), x > 0)]:
        assert got.device == device and got.dtype == np.bool_
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_eq_ne_with_host_operands(device):
    x = randn(3, 4, seed=2).astype(np.float32)
    other = x.copy()
    other[0] += 1
    t = mc.tensor(x, device=device)
    np.testing.assert_array_equal(t.eq(other).numpy(), x == other)
    np.testing.assert_array_equal(t.ne(mc.tensor(other)).numpy(), x != other)


LOSSES = {
    "mean": lambda x, t, w: F.cross_entropy(x, t),
    "weighted ignore": lambda x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=1),
    "smoothing": lambda x, t, w: F.cross_entropy(x, t, label_smoothing=0.2, ignore_index=1),
    "weighted smoothing": lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.3),
    "nll sum": lambda x, t, w: F.nll_loss(F.log_softmax(x, dim=1), t, weight=w, reduction="sum"),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", LOSSES)
def test_class_losses_match_cpu_without_host_round_trips(device, name):
    x, t, w = randn(6, 4, seed=4), np.array([0, 1, 3, 1, 2, 0]), np.array([1.0, 2.0, 0.5, 3.0])
    results = []
    for d in ("cpu", device):
        xt = mc.tensor(x, device=d, requires_grad=True)
        tt, wt = mc.tensor(t, device=d), mc.tensor(w, device=d)
        before = syncs()
        loss = LOSSES[name](xt, tt, wt)
        loss.backward()
        if d != "cpu":
            assert syncs() == before, "the loss read a device value back to the host"
        results.append((loss.item(), xt.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_mean_loss_over_ignored_targets_only_is_nan(device):
    loss = F.cross_entropy(mc.tensor(randn(2, 3), device=device), mc.tensor([1, 1], device=device), ignore_index=1)
    assert np.isnan(loss.item())                   # 0 / 0, as in PyTorch


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_targets(device):
    x = mc.tensor(randn(3, 4), device=device)
    with pytest.raises(ValueError, match=r"cross_entropy: target holds class 4, outside \[0, 4\)"):
        F.cross_entropy(x, np.array([0, 4, 1]))    # host targets are checked
    if device != "cpu":                            # device targets are not read back: their loss is NaN instead
        assert np.isnan(F.cross_entropy(x, mc.tensor([0, 4, 1], device=device), reduction="none").numpy()[1])


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_momentum_none_is_a_cumulative_average_on_the_device(device):
    bn = nn.BatchNorm1d(3, momentum=None).to(device)
    batches = [randn(5, 3, seed=s) * (s + 1) for s in range(4)]
    before = syncs()
    for b in batches:
        bn(mc.tensor(b, device=device))
    assert syncs() == before, "BatchNorm read a device value back to the host"
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 4


@pytest.mark.parametrize("device", DEVICES)
def test_training_loop_reads_the_loss_every_few_batches(device):
    from minicnn.train import READ_EVERY, train_one_epoch
    mc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
    batches = [(mc.tensor(randn(5, 4, seed=s), device=device), mc.tensor(np.arange(5) % 3, device=device))
               for s in range(2 * READ_EVERY + 3)]
    opt = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = syncs()
    loss, metrics, _ = train_one_epoch(model, batches, opt, 0, 1)
    if STRICT and device != "cpu":                 # 3 reads of the losses + 1 of the accuracy, not one per batch
        assert syncs() - before == 3 + 1
    assert np.isfinite(loss) and 0 <= metrics["train_acc"] <= 1


@pytest.mark.parametrize("device", DEVICES)
def test_training_loop_names_the_first_non_finite_batch(device):
    from minicnn.train import NonFiniteLossError, train_one_epoch
    model = nn.Linear(4, 3).to(device)
    batches = [(mc.tensor(randn(5, 4, seed=s) * (np.inf if s == 4 else 1), device=device),
                mc.tensor(np.arange(5) % 3, device=device)) for s in range(7)]
    with pytest.raises(NonFiniteLossError, match="batch 5"):
        train_one_epoch(model, batches, mc.optim.SGD(model.parameters(), lr=0.1), 0, 1)


def test_data_loader_checks_labels_on_the_host():
    class Labels:
        classes = ["a", "b", "c"]

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return np.zeros((1, 2, 2), np.float32), [0, 1, 2, 3, 1, 0][i]

    with pytest.raises(ValueError, match=r"DataLoader: dataset samples \[3\] have labels \[3\] outside \[0, 3\)"):
        list(mc.data.DataLoader(Labels(), batch_size=6))


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_reads_the_device_once_at_the_end(device):
    from minicnn.tasks.classification import evaluate
    model = nn.Linear(4, 3).to(device)
    batches = [(mc.tensor(randn(5, 4, seed=s), device=device), mc.tensor(np.arange(5) % 3, device=device))
               for s in range(6)]
    before = syncs()
    loss, preds, targets = evaluate(model, batches)
    if STRICT and device != "cpu":             # predictions, targets, the loss: three reads, not one per batch
        assert syncs() - before == 3
    with mc.no_grad():
        logits = [model(x).numpy() for x, _ in batches]
    np.testing.assert_array_equal(preds, np.concatenate([lg.argmax(1) for lg in logits]))
    np.testing.assert_array_equal(targets, np.tile(np.arange(5) % 3, 6))
    assert np.isfinite(loss) and type(preds) is np.ndarray
