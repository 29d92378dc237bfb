"""``torch.utils.data`` under minicnn: ``from minicnn.utils.data import DataLoader, Dataset, TensorDataset``.

``DataLoader`` takes PyTorch's arguments (``batch_size``, ``shuffle``, ``sampler``, ``drop_last``,
``collate_fn``, ``num_workers``, ...); ``TensorDataset`` is PyTorch's (values as they are).  The classes live
in ``minicnn.data.generic`` (and ``Subset`` in ``minicnn.data.datasets``).
"""
from minicnn.data.generic import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset,  # noqa: F401
                                  RandomSampler, Sampler, SequentialSampler, Subset, SubsetRandomSampler,
                                  TensorDataset, default_collate, random_split)
from minicnn.data.sampler import DistributedSampler  # noqa: F401  (torch.utils.data.DistributedSampler)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset", "default_collate", "random_split",
           "DistributedSampler"]
