"""``DistributedSampler``: each rank's shard of every epoch's order, as PyTorch's
(``torch.utils.data.distributed.DistributedSampler``)."""
import math

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """The dataset indices rank ``rank`` of ``num_replicas`` serves in each epoch.

    The epoch's order is ``default_rng([seed, epoch]).permutation(n)`` (``shuffle``; else 0..n-1), the very
    order a ``DataLoader(shuffle=True, seed=seed)`` serves in one process.  Unless ``drop_last``, it is padded by
    repeating its first indices up to a multiple of ``num_replicas``; with ``drop_last`` the tail is dropped
    instead.  Rank r takes every ``num_replicas``-th index from position r, so the ranks' shards are disjoint
    (but for the padding), cover the epoch, and batch b of every rank together is batch b of one process whose
    batch is ``num_replicas`` times larger.  Call ``set_epoch`` before each epoch (``DataLoader`` does).
    ``num_replicas`` and ``rank`` default to the world size and rank of ``minicnn.distributed``.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from minicnn import distributed as dist
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if int(num_replicas) < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the interval "
                             f"[0, {int(num_replicas) - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, int(seed), drop_last, 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n:                  # pad with the first indices (several times if n < replicas)
            order = np.concatenate([order] + [order] * ((self.total_size - n) // n) +
                                   [order[:(self.total_size - n) % n]])
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())
