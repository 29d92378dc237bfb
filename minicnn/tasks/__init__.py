"""Tasks: what the one training loop (``minicnn/train.py``) asks of a kind of problem.

``fit()`` is the same loop for every problem: data order, optimizer steps, schedule, checkpoints, resume,
the non-finite-loss stop, ``metrics.csv`` and ``curves.png``.  What differs lives in a ``Task``: which
datasets it trains on, how a batch becomes a loss, what the test metrics are, what picture an epoch leaves
behind and how samples are collated into a batch.  A task is chosen by the run's dataset (``task_for``).
"""

import importlib

__all__ = ["Task", "TASKS", "BUILTIN", "register", "get_task", "task_for"]

TASKS = {}                              # task name -> Task subclass
BUILTIN = ["classification", "detection", "segmentation", "embedding"]   # modules holding the built-in tasks


def register(cls):
    """Class decorator: make a Task subclass known under ``cls.name``, for the datasets in ``cls.datasets``."""
    TASKS[cls.name] = cls
    return cls


class Task:
    """The interface.  Subclasses set ``name`` and ``datasets`` and override the methods below.

    History rows are ``epoch, train_loss, **train_metrics(), **evaluate(), lr, seconds``; ``curves`` lists
    the (key, y-axis label) panels of ``curves.png``, each plotting ``train_<key>`` and/or ``test_<key>``."""
    name = None
    datasets = ()                  # the dataset names this task trains on
    models = ()                    # models that take this task on its datasets even where another claims them
    eval_batch_size = 1000         # batch size of the test loader
    curves = (("loss", "loss"),)

    collate = None                 # DataLoader collate_fn (samples -> (images, targets)); None: the default

    def build_datasets(self, cfg):
        """(train set, test set, number of classes) for the run configuration ``cfg``."""
        raise NotImplementedError

    def setup(self, model, train_set):
        """Fit what the model learns from the data before training (e.g. anchors); called on a fresh model,
        before a resumed run's checkpoint is loaded over it.  Default: nothing."""

    def batch_loss(self, model, images, targets):
        """(loss Tensor to minimise, number of images, dict of running sums for ``train_metrics``)."""
        raise NotImplementedError

    def train_metrics(self, sums, seen):
        """Training columns of the history row from the epoch's summed batch statistics."""
        return {}

    def evaluate(self, model, loader):
        """Test columns of the history row (``test_...``), computed in eval mode without a graph."""
        raise NotImplementedError

    def describe(self, row):
        """The metric part of the epoch's log line."""
        return ""

    def picture(self, model, test_set, out, device):
        """Write this epoch's picture(s) into the folder ``out`` (default: none)."""


def get_task(name):
    """An instance of the task registered as ``name``."""
    _load()
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(TASKS)}")
    return TASKS[name]()


def task_for(dataset, model=None):
    """An instance of the task that trains on ``dataset`` (the one naming ``model`` in its ``models`` first:
    ``embedding_net`` on mnist learns embeddings, not classes)."""
    _load()
    for cls in TASKS.values():
        if model is not None and model in cls.models and dataset in cls.datasets:
            return cls()
    for cls in TASKS.values():
        if dataset in cls.datasets:
            return cls()
    known = [d for cls in TASKS.values() for d in cls.datasets]
    raise ValueError(f"unknown dataset {dataset!r}; available: {', '.join(known)}")


def _load():
    """Import the built-in tasks (each registers itself); late, so that importing ``minicnn.tasks`` is cheap."""
    for module in BUILTIN:
        importlib.import_module(f"minicnn.tasks.{module}")
