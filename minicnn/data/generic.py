"""``torch.utils.data`` for any dataset: ``Dataset``, ``TensorDataset``, ``ConcatDataset``, ``random_split``,
samplers, ``default_collate`` and the ``DataLoader`` that takes PyTorch's arguments.

minicnn's image datasets (and ``Subset``/``ConcatDataset`` of them) keep their fast path: the loader asks them
for a whole batch at once (``get_batch``).  Any other dataset is indexed sample by sample and the samples are
merged by ``collate_fn`` (``default_collate``: Tensors and arrays stacked, numbers made into tensors, tuples,
lists and dicts merged field by field), as in PyTorch.
"""
import bisect
import math
import numbers

import numpy as np

from minicnn import backend
from minicnn import random as mc_random
from minicnn.autograd import Tensor
from minicnn.data import loader as _loader
from minicnn.data.datasets import Subset

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "Subset", "random_split",
           "default_collate", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "BatchSampler", "DataLoader"]


class Dataset:
    """Base class of map-style datasets: define ``__getitem__(i)`` and ``__len__``; ``a + b`` concatenates."""
    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Marker base for stream datasets (minicnn's DataLoader needs ``__len__`` and ``__getitem__``)."""


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; all tensors share their first dimension (PyTorch's
    TensorDataset, values as they are: unlike ``minicnn.data.TensorDataset`` nothing is scaled or cast)."""
    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor._make(np.asarray(t), "cpu") for t in tensors)
        if any(t.shape[:1] != tensors[0].shape[:1] for t in tensors):
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dims "
                             f"{[t.shape[0] if t.ndim else None for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(Tensor._make(t.data[index], t.device) for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def get_items(self, indices):
        """The collated batch of ``indices`` in one indexing per tensor (the loader's fast path)."""
        return [Tensor._make(t.data[backend.to_device(np.asarray(indices), t.device)], t.device)
                for t in self.tensors]


class ConcatDataset(Dataset):
    """The datasets one after another; ``cumulative_sizes[k]`` is the end of dataset ``k``."""
    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def _locate(self, idx):
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ConcatDataset: index {idx} out of range for {len(self)} samples")
        idx = idx % len(self)
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        return k, idx - (self.cumulative_sizes[k - 1] if k else 0)

    def __getitem__(self, idx):
        k, i = self._locate(int(idx))
        return self.datasets[k][i]

    @property
    def classes(self):
        return getattr(self.datasets[0], "classes", [])

    @property
    def target_transform(self):                  # the loader's label check skips remapped labels
        return next((t for t in (getattr(d, "target_transform", None) for d in self.datasets) if t is not None), None)

    def get_batch(self, indices, rng=None):
        """Each member's images fetched at once, put back in the order asked (members must all batch)."""
        where = [self._locate(int(i)) for i in indices]
        parts = {}
        for k in sorted({k for k, _ in where}):
            pos = [p for p, (kk, _) in enumerate(where) if kk == k]
            parts[k] = (pos, self.datasets[k].get_batch(np.asarray([where[p][1] for p in pos]), rng))
        first = next(iter(parts.values()))[1]
        x = np.empty((len(indices),) + tuple(np.shape(first[0])[1:]), np.float32)
        y = np.empty((len(indices),), np.int64)
        for pos, (xs, ys) in parts.values():
            x[pos], y[pos] = backend.to_cpu(np.asarray(xs)), np.asarray(ys)
        return x, y


def batchable(dataset):
    """True if ``dataset`` serves whole batches (``get_batch``): minicnn's image sets and their subsets."""
    if isinstance(dataset, Subset):
        return batchable(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return all(batchable(d) for d in dataset.datasets)
    return hasattr(dataset, "get_batch")


def random_split(dataset, lengths, generator=None):
    """Disjoint random ``Subset``s of the given lengths (or fractions summing to 1: floored, then the remainder
    handed out one by one from the first, as PyTorch)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(f, float) and 0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} do not sum to the dataset's {n} samples")
    order = mc_random.rng_of(generator).permutation(n)
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, order[start:start + k]))
        start += k
    return out


# ---- samplers -----------------------------------------------------------------------------------------------
class Sampler:
    """Iterates over dataset indices."""
    def __init__(self, data_source=None):
        self.data_source = data_source


class SequentialSampler(Sampler):
    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random order each pass (``replacement``: ``num_samples`` draws with replacement)."""
    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        super().__init__(data_source)
        self.replacement, self._num, self.generator = replacement, num_samples, generator

    @property
    def num_samples(self):
        return len(self.data_source) if self._num is None else self._num

    def __iter__(self):
        rng, n = mc_random.rng_of(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        return iter(np.concatenate([rng.permutation(n) for _ in range(-(-self.num_samples // n))])[
            :self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a new random order each pass."""
    def __init__(self, indices, generator=None):
        super().__init__(None)
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        return iter([self.indices[i] for i in mc_random.rng_of(self.generator).permutation(len(self.indices))])

    def __len__(self):
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size``."""
    def __init__(self, sampler, batch_size, drop_last):
        super().__init__(None)
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# ---- collation ----------------------------------------------------------------------------------------------
def default_collate(batch):
    """Merge a list of samples into a batch, as PyTorch: Tensors and arrays are stacked (a new first dim) into a
    Tensor, ints become an int64 tensor, floats a float64 tensor, bools a bool tensor, strings stay a list, and
    tuples, lists and dicts are merged field by field."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {t.shape for t in batch}
        if len(shapes) != 1:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, got {sorted(shapes)}")
        xp = backend.get_array_module(elem.data)
        return Tensor._make(xp.stack([t.data for t in batch]), elem.device)
    if isinstance(elem, np.ndarray) and elem.dtype.kind in "biuf":
        return Tensor._make(np.stack(batch), "cpu")
    if isinstance(elem, (bool, np.bool_)):
        return Tensor._make(np.asarray(batch, np.bool_), "cpu")
    if isinstance(elem, (numbers.Integral, np.integer)):
        return Tensor._make(np.asarray(batch, np.int64), "cpu")
    if isinstance(elem, (numbers.Real, np.floating)):
        return Tensor._make(np.asarray(batch, np.float64), "cpu")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, dict):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):          # namedtuple
        return type(elem)(*(default_collate(list(f)) for f in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        if any(len(s) != len(elem) for s in batch):
            raise RuntimeError("default_collate: each element in the list of samples should be of equal size")
        return [default_collate(list(f)) for f in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem)}")


def _to_device(batch, device):
    if isinstance(batch, Tensor):
        return batch if batch.device == device else Tensor._make(backend.to_device(batch.data, device), device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class DataLoader(_loader.DataLoader):
    """PyTorch's ``DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
    num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, ..., generator=None)``.

    Batches are prepared ahead in one background thread (``prefetch`` batches, from minicnn's loader), so
    ``num_workers``, ``pin_memory``, ``timeout``, ``worker_init_fn``, ``prefetch_factor`` and
    ``persistent_workers`` are accepted and change nothing.  ``generator`` (or ``seed``) fixes the shuffling;
    ``device`` puts every Tensor of a batch on that device.
    """
    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", seed=None, device="cpu", prefetch=2):
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        if batch_size is None:
            raise ValueError("DataLoader: batch_size=None (no batching) is not supported; use batch_size=1")
        if int(num_workers) < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative, got {num_workers}")
        if seed is None and generator is not None:
            seed = int(generator.rng.integers(2 ** 31))
        super().__init__(dataset, batch_size=batch_size, shuffle=bool(shuffle), drop_last=drop_last, seed=seed,
                         device=device, prefetch=prefetch, sampler=sampler)
        self.batch_sampler, self.num_workers = batch_sampler, int(num_workers)
        self.pin_memory, self.generator = pin_memory, generator
        self.collate_fn = collate_fn
        self._fast = collate_fn is None and batchable(dataset)

    def __len__(self):
        return len(self.batch_sampler) if self.batch_sampler is not None else super().__len__()

    def _batches(self, epoch):
        if self.batch_sampler is None:
            yield from super()._batches(epoch)
            return
        for b, indices in enumerate(self.batch_sampler):
            yield self._make_batch(epoch, b, np.asarray(indices, dtype=np.int64))

    def _make_batch(self, epoch, b, indices):
        if self._fast:                               # collate_fn is None: minicnn's batch path
            return super()._make_batch(epoch, b, indices)
        if self.collate_fn is None and isinstance(self.dataset, TensorDataset):
            batch = self.dataset.get_items(indices)
        else:
            batch = (self.collate_fn or default_collate)([self.dataset[int(i)] for i in indices])
        return _to_device(batch, self.device)
