"""Cases that run inside ``mpiexec -n 2 python -m pytest tests/distributed/mpi_cases.py`` (launched by
test_two_ranks.py; the file name keeps the plain test run from collecting it).  Every rank runs every case in
the same order; each rank also computes the one-process reference itself, from the whole batch."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.distributed as dist
import minicnn.functional as F
import minicnn.nn as nn

if not dist.is_initialized():
    dist.init_process_group()
RANK, WORLD = dist.get_rank(), dist.get_world_size()


def test_world():
    assert WORLD == 2 and dist.get_backend() == "mpi" and dist.launched_world_size() == 2
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group()
    gathered = [None] * WORLD
    dist.all_gather_object(gathered, {"rank": RANK})
    assert gathered == [{"rank": r} for r in range(WORLD)]


@pytest.mark.parametrize("op, expect", [(dist.ReduceOp.SUM, lambda v: v.sum(0)), (dist.ReduceOp.AVG,
                                        lambda v: v.mean(0)), (dist.ReduceOp.MAX, lambda v: v.max(0)),
                                        (dist.ReduceOp.MIN, lambda v: v.min(0))])
def test_all_reduce(op, expect):
    values = np.stack([np.arange(6, dtype=np.float32).reshape(2, 3) * (r + 1) - r for r in range(WORLD)])
    t = mc.tensor(values[RANK])
    assert dist.all_reduce(t, op) is t
    np.testing.assert_array_equal(t.numpy(), expect(values))


def test_all_reduce_non_contiguous_and_broadcast():
    a = np.full((4, 6), float(RANK + 1), np.float64)
    dist.all_reduce(a[:, ::2])                     # a strided view: reduced through a buffer, written back
    np.testing.assert_array_equal(a[:, ::2], 3.0)
    np.testing.assert_array_equal(a[:, 1::2], RANK + 1)
    t = mc.tensor(np.arange(5) + 10 * RANK)
    dist.broadcast(t, src=1)
    np.testing.assert_array_equal(t.numpy(), np.arange(5) + 10)
    with pytest.raises(ValueError, match="src 2"):
        dist.broadcast(t, src=2)
    dist.barrier()


class Net(nn.Module):
    def __init__(self, bn=nn.BatchNorm2d):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = bn(4)
        self.fc = nn.Linear(4 * 5 * 5, 3)
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).reshape(x.shape[0], -1))


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 5, 5)).astype(np.float32), rng.integers(0, 3, n)


def _steps(model, batches, lr=0.1):
    opt = mc.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(mc.tensor(x)), mc.tensor(y)).backward()
        opt.step()
    return opt


@pytest.mark.parametrize("bucket_cap_mb", [25, 1e-6])          # one bucket; one per parameter
def test_ddp_equals_one_process_on_the_whole_batch(bucket_cap_mb):
    """Two ranks on halves of each batch, with SyncBatchNorm, take the steps of one process on the whole."""
    batches = [_data(8, s) for s in range(3)]
    mc.manual_seed(1)
    ref = Net()
    ref.unused.requires_grad_(False)
    _steps(ref, batches)
    mc.manual_seed(1 if RANK == 0 else 100)        # rank 1 starts elsewhere: DDP must broadcast rank 0's weights
    model = dist.SyncBatchNorm.convert_sync_batchnorm(Net())
    model.unused.requires_grad_(False)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    assert len(ddp.buckets) == (1 if bucket_cap_mb == 25 else 6)
    assert sum(ddp.bucket_sizes) == 4 * sum(p.data.size for p in model.parameters() if p.requires_grad)
    half = 8 // WORLD
    _steps(ddp, [(x[RANK * half:(RANK + 1) * half], y[RANK * half:(RANK + 1) * half]) for x, y in batches])
    assert list(ddp.state_dict())[0].startswith("module.")
    for (k, v), (k2, w) in zip(ref.state_dict().items(), model.state_dict().items()):
        assert k == k2
        np.testing.assert_allclose(w.numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    assert ddp.comm_seconds > 0


def test_ddp_unused_parameters():
    mc.manual_seed(2)
    model = Net()                                   # `unused` gets no gradient
    ddp = dist.DistributedDataParallel(model)
    x, y = _data(4)
    F.cross_entropy(ddp(mc.tensor(x)), mc.tensor(y)).backward()
    with pytest.raises(RuntimeError, match="find_unused_parameters=True"):
        ddp(mc.tensor(x))
    mc.manual_seed(2)
    model = Net()
    ddp = dist.DistributedDataParallel(model, find_unused_parameters=True)
    for _ in range(2):
        model.zero_grad()
        F.cross_entropy(ddp(mc.tensor(x)), mc.tensor(y)).backward()
    np.testing.assert_array_equal(model.unused.weight.grad.numpy(), 0)
    assert model.conv.weight.grad is not None


def test_ddp_no_sync_accumulates_locally():
    mc.manual_seed(3)
    model = Net()
    model.unused.requires_grad_(False)
    ddp = dist.DistributedDataParallel(model)
    x, y = _data(4, seed=RANK)
    with ddp.no_sync():
        F.cross_entropy(ddp(mc.tensor(x)), mc.tensor(y)).backward()
    local = model.fc.bias.grad.numpy().copy()
    both = [None] * WORLD
    dist.all_gather_object(both, local)
    assert not np.allclose(both[0], both[1])       # not reduced
    F.cross_entropy(ddp(mc.tensor(x)), mc.tensor(y)).backward()
    dist.all_gather_object(both, model.fc.bias.grad.numpy())
    np.testing.assert_array_equal(both[0], both[1])  # reduced: the same on every rank


@pytest.mark.parametrize("shape", [(6, 3, 4, 5), (5, 3)])
def test_sync_batch_norm_equals_batch_norm_on_the_concatenated_batch(shape):
    rng = np.random.default_rng(4)
    sizes = [shape[0], shape[0] + 1]                # unequal shares of the batch
    xs = [rng.standard_normal((n,) + shape[1:]) * 3 + 1 for n in sizes]
    gys = [rng.standard_normal(x.shape) for x in xs]
    bn_cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    ref = bn_cls(3, momentum=None).double()
    ref.weight.data[...] = [0.5, 1.5, -1.0]
    xr = mc.tensor(np.concatenate(xs), requires_grad=True, dtype=np.float64)
    yr = ref(xr)
    (yr * mc.tensor(np.concatenate(gys))).sum().backward()

    sync = dist.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(bn_cls(3, momentum=None).double()))
    assert isinstance(sync[0], dist.SyncBatchNorm)
    sync[0].weight.data[...] = [0.5, 1.5, -1.0]
    x = mc.tensor(xs[RANK], requires_grad=True, dtype=np.float64)
    y = sync(x)
    (y * mc.tensor(gys[RANK])).sum().backward()
    start = sum(sizes[:RANK])
    rows = slice(start, start + sizes[RANK])
    np.testing.assert_allclose(y.numpy(), yr.numpy()[rows], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy()[rows], rtol=1e-9, atol=1e-10)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(sync[0], name).numpy(), getattr(ref, name).numpy(), rtol=1e-12)
    for name in ("weight", "bias"):                 # this rank's share; the sum over ranks is the whole batch's
        total = getattr(sync[0], name).grad.numpy().copy()
        dist.all_reduce(total)
        np.testing.assert_allclose(total, getattr(ref, name).grad.numpy(), rtol=1e-9, atol=1e-10)
    sync.eval()                                     # eval: the running statistics, no communication
    np.testing.assert_allclose(sync(mc.tensor(xs[0], dtype=np.float64)).numpy(),
                               ref.eval()(mc.tensor(xs[0], dtype=np.float64)).numpy(), rtol=1e-12)


# ---- the cuda device: run with -m cuda under NUMBA_ENABLE_CUDASIM=1, and with MINICNN_STRICT_CUPY=1 (CuPy's
# rules on a NumPy stand-in: reductions go through host memory, as with an MPI that is not CUDA-aware)
@pytest.mark.cuda
def test_collectives_on_cuda_tensors():
    if not mc.cuda_available():
        pytest.skip("no cuda device (set NUMBA_ENABLE_CUDASIM=1)")
    t = mc.tensor(np.arange(4.0) * (RANK + 1), device="cuda")
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.numpy(), np.arange(4.0) * 3)
    dist.broadcast(t, src=1)
    dist.all_reduce(t, dist.ReduceOp.AVG)
    np.testing.assert_array_equal(t.numpy(), np.arange(4.0) * 3)


@pytest.mark.cuda
def test_ddp_with_sync_batch_norm_on_cuda_equals_one_process_on_the_cpu():
    if not mc.cuda_available():
        pytest.skip("no cuda device (set NUMBA_ENABLE_CUDASIM=1)")
    batches = [_data(4, s) for s in range(2)]
    mc.manual_seed(1)
    ref = Net()
    ref.unused.requires_grad_(False)
    _steps(ref, batches)
    mc.manual_seed(1 if RANK == 0 else 100)
    model = dist.SyncBatchNorm.convert_sync_batchnorm(Net()).to("cuda")
    model.unused.requires_grad_(False)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1e-6)
    opt = mc.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    for x, y in batches:
        opt.zero_grad()
        half = slice(RANK * 2, RANK * 2 + 2)
        F.cross_entropy(ddp(mc.tensor(x[half], device="cuda")), mc.tensor(y[half], device="cuda")).backward()
        opt.step()
    for (k, v), w in zip(ref.state_dict().items(), model.state_dict().values()):
        np.testing.assert_allclose(w.numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
