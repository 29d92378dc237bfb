"""DistributedSampler and DataLoader(sampler=): shards, padding as PyTorch's, and the one-process batches."""
import numpy as np
import pytest

from minicnn import distributed as dist
from minicnn.data import DataLoader, DistributedSampler, TensorDataset


class Range:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 1, 1), i, np.float32), i


def shards(n, W, **kw):
    return [DistributedSampler(Range(n), num_replicas=W, rank=r, **kw).indices() for r in range(W)]


@pytest.mark.parametrize("n, W", [(12, 3), (10, 3), (7, 2), (2, 5), (1, 1)])
def test_shards_are_disjoint_cover_the_epoch_and_pad_as_pytorch(n, W):
    parts = shards(n, W, seed=3)
    per = -(-n // W)                                # ceil
    assert [len(p) for p in parts] == [per] * W
    order = np.random.default_rng([3, 0]).permutation(n)
    padded = np.resize(order, per * W)              # PyTorch: the order, then its first indices again
    for r, p in enumerate(parts):
        np.testing.assert_array_equal(p, padded[r::W])
    allidx = np.concatenate(parts)
    assert set(allidx.tolist()) == set(range(n))    # covers the epoch
    counts = np.bincount(allidx, minlength=n)       # disjoint but for the padding: repeats of the first ones
    assert counts.sum() - n == per * W - n and counts.max() <= -(-per * W // n)


def test_drop_last_drops_the_tail_instead():
    parts = shards(10, 3, seed=0, drop_last=True)
    assert [len(p) for p in parts] == [3, 3, 3]
    allidx = np.concatenate(parts)
    assert len(set(allidx.tolist())) == 9            # no index twice
    np.testing.assert_array_equal(np.sort(allidx), np.sort(np.random.default_rng([0, 0]).permutation(10)[:9]))


def test_epochs_and_shuffle():
    s = DistributedSampler(Range(20), num_replicas=2, rank=1, seed=5)
    first = s.indices()
    s.set_epoch(1)
    assert not np.array_equal(first, s.indices())
    s.set_epoch(0)
    np.testing.assert_array_equal(first, list(iter(s)))
    np.testing.assert_array_equal(shards(5, 2, shuffle=False)[0], [0, 2, 4])
    np.testing.assert_array_equal(shards(5, 2, shuffle=False)[1], [1, 3, 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(Range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(Range(4), num_replicas=0, rank=0)
    if not dist.is_initialized():                   # the defaults come from the process group
        with pytest.raises(RuntimeError, match="init_process_group"):
            DistributedSampler(Range(4))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Range(4), 2, shuffle=True, sampler=DistributedSampler(Range(4), num_replicas=1, rank=0))


@pytest.mark.parametrize("n", [64, 60])
def test_ranks_batches_together_are_the_one_process_batches(n):
    data = TensorDataset(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1), np.arange(n))
    one = DataLoader(data, 8, shuffle=True, seed=7, prefetch=0)
    ranks = [DataLoader(data, 4, seed=7, prefetch=0, sampler=DistributedSampler(data, 2, r, seed=7))
             for r in range(2)]
    for epoch in (0, 1):
        for loader in [one] + ranks:
            loader.set_epoch(epoch)
        batches = list(zip(one, *ranks))
        assert len(batches) == len(one) == len(ranks[0]) == -(-n // 8)
        for (_, y), (_, y0), (_, y1) in batches:
            assert sorted(y.numpy().tolist()) == sorted(y0.numpy().tolist() + y1.numpy().tolist())


def test_pytorch_style_loader_takes_the_sampler():
    import minicnn as mc
    from minicnn.utils import data as tud
    ds = tud.TensorDataset(mc.tensor(np.arange(10.0)), mc.tensor(np.arange(10)))
    s = tud.DistributedSampler(ds, num_replicas=2, rank=1, seed=0)
    s.set_epoch(3)                                   # as a PyTorch loop does before each epoch
    got = np.concatenate([y.numpy() for _, y in tud.DataLoader(ds, batch_size=2, sampler=s)])
    np.testing.assert_array_equal(got, np.random.default_rng([0, 3]).permutation(10)[1::2])
