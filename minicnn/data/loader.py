"""``DataLoader``: batches of (images, labels) as Tensors on a device, the next one prepared while the step runs.

Randomness is a pure function of ``(seed, epoch, batch)``: the shuffle of epoch ``e`` comes from
``default_rng([seed, e])`` and the augmentation of its batch ``b`` from ``default_rng([seed, e, b])``.  So a run
resumed at epoch ``e`` (``load_state_dict``) sees exactly the batches an uninterrupted one would, and the
background thread cannot change the result by running ahead.
"""
import queue
import threading

import numpy as np

from minicnn import backend
from minicnn import random as mc_random
from minicnn.autograd import Tensor

__all__ = ["DataLoader"]

_DONE = object()


class DataLoader:
    """Iterate over ``dataset`` in batches: ``for images, labels in loader`` gives float32 ``(B, C, H, W)`` and
    int64 ``(B,)`` Tensors on ``device``.

    ``shuffle`` draws a new order every epoch; ``drop_last`` skips a final short batch; ``seed`` fixes order
    and augmentation (default: drawn from minicnn's generator, so ``mc.manual_seed`` decides).  ``prefetch``
    batches are prepared ahead in a background thread (0: everything in the caller's thread).
    The dataset needs ``__len__`` and either ``get_batch(indices, rng)`` or ``__getitem__`` -> (image, label).
    ``collate_fn(samples) -> (images, targets)`` builds a batch from a list of ``dataset[i]`` instead (e.g.
    detection targets kept as a list of dicts): images become a Tensor on ``device``, targets an int64 Tensor
    when they are an array, and are handed over unchanged otherwise.
    ``sampler`` (e.g. a ``DistributedSampler``; excludes ``shuffle``) gives the indices of each epoch instead;
    ``set_epoch`` passes the epoch on to it (or call the sampler's, as in PyTorch), and its ``rank`` is mixed
    into the augmentation's seed.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, device="cpu",
                 prefetch=2, collate_fn=None, sampler=None):
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self.sampler = sampler
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.seed = int(seed) if seed is not None else int(mc_random.generator().integers(2 ** 31))
        self.device = backend.check_device(device)
        self.prefetch = int(prefetch)
        self.collate_fn = collate_fn
        self.epoch = 0                               # the epoch the next ``iter()`` will serve

    def __len__(self):
        n, b = len(self.sampler if self.sampler is not None else self.dataset), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    # ---- resuming -----------------------------------------------------------------------------------------
    def set_epoch(self, epoch):
        """Serve epoch ``epoch`` next (its order and augmentation), like ``DistributedSampler.set_epoch``."""
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    # ---- batches ------------------------------------------------------------------------------------------
    def order(self, epoch):
        """The dataset indices of ``epoch`` in the order they are served."""
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), np.int64)
        n = len(self.dataset)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _make_batch(self, epoch, b, indices):
        ranks = getattr(self.sampler, "num_replicas", 1) > 1        # ranks draw different augmentations
        rng = np.random.default_rng([self.seed, epoch, b] + ([self.sampler.rank] if ranks else []))
        if self.collate_fn is not None:
            x, y = self.collate_fn([self.dataset[int(i)] for i in indices])
        elif hasattr(self.dataset, "get_batch"):
            x, y = self.dataset.get_batch(indices, rng)
        else:
            items = [self.dataset[int(i)] for i in indices]
            x = np.stack([np.asarray(im, dtype=np.float32) for im, _ in items])
            y = np.asarray([label for _, label in items], dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.float32)
        keep_y = self.collate_fn is not None and not isinstance(y, np.ndarray)
        y = y if keep_y else np.asarray(y, dtype=np.int64)
        if not np.isfinite(x).all():                 # fail here, naming the samples, not as a nan loss later
            bad = sorted({int(indices[i]) for i in np.nonzero(~np.isfinite(x.reshape(len(x), -1)).all(1))[0]})
            raise ValueError(f"DataLoader: dataset samples {bad[:10]} hold NaN or infinite values "
                             f"(batch {b} of epoch {epoch}); clean or drop them")
        classes = len(getattr(self.dataset, "classes", None) or ())    # unless a target_transform remaps labels
        if not keep_y and y.ndim == 1 and classes and getattr(self.dataset, "target_transform", None) is None:
            # checked here, on the host, once per batch: the losses do not copy device targets back every step
            bad = np.nonzero((y < 0) | (y >= classes))[0]
            if bad.size:
                raise ValueError(f"DataLoader: dataset samples {[int(indices[i]) for i in bad[:10]]} have labels "
                                 f"{y[bad[:10]].tolist()} outside [0, {classes}) (batch {b} of epoch {epoch})")
        return (Tensor._make(backend.to_device(x, self.device), self.device),
                y if keep_y else Tensor._make(backend.to_device(y, self.device), self.device))

    def _batches(self, epoch):
        order, B = self.order(epoch), self.batch_size
        for b in range(len(self)):
            yield self._make_batch(epoch, b, order[b * B:(b + 1) * B])

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.prefetch <= 0:
            yield from self._batches(epoch)
            return
        ready, stop = queue.Queue(maxsize=self.prefetch), threading.Event()

        def produce():                               # runs ahead of the training step by ``prefetch`` batches
            try:
                for batch in self._batches(epoch):
                    while not stop.is_set():
                        try:
                            ready.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                item = _DONE
            except BaseException as e:               # handed to the consumer, re-raised there
                item = e
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        worker = threading.Thread(target=produce, name="minicnn-dataloader", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:                                     # also when the consumer stops early (break, exception)
            stop.set()
            worker.join()
