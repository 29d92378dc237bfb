"""The training loop behind ``python -m minicnn train``: data, model, optimizer, schedule, checkpoints, logs.

``fit(config)`` trains for ``config["epochs"]`` epochs.  Every epoch it shows a progress bar, prints one line,
rewrites ``metrics.csv`` and ``curves.png`` and saves ``checkpoint.npz`` (atomically, via ``mc.save``) with
everything a resumed run needs to continue bit for bit: weights, optimizer and schedule state, the epoch, the
random generators and the data order.  A loss that stops being finite ends training with ``NonFiniteLossError``
and leaves the last good checkpoint in place.
"""
import csv
import math
import os
import random
import sys
import time

import numpy as np
from tqdm import tqdm

import minicnn as mc
import minicnn.functional as F
from minicnn import backend, distributed, optim
from minicnn import random as mc_random
from minicnn.serialization import atomic_write
from minicnn.data import DataLoader, DistributedSampler
from minicnn.models import get_model
from minicnn.tasks import task_for
from minicnn.tasks.classification import AUX_WEIGHT, DATASETS, build_datasets, evaluate  # noqa: F401
from minicnn.tasks.classification import classification_loss as _loss  # noqa: F401

__all__ = ["DATASETS", "DEFAULTS", "NonFiniteLossError", "config_for", "build_datasets", "build_model",
           "fit", "train_one_epoch", "evaluate", "load_weights"]

# Per-model defaults.  lenet5's reach 99.26-99.35% MNIST test accuracy (seeds 0-4) in 65-100 s of
# training on a 2-core CPU (idle, or shared with other work); without the random shifts and weight decay, 98.99-99.28%.
# Models without an entry get FALLBACK (a CIFAR recipe).
# ``threads``: CPU threads for Numba's kernels and NumPy's BLAS (None: leave them be).
DEFAULTS = {
    "lenet5": dict(dataset="mnist", epochs=8, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9,
                   weight_decay=5e-4, schedule="cosine", threads=1),
}
_DETECTOR = dict(dataset="mnist-detection", epochs=10, batch_size=16, optimizer="adam", lr=1e-3, momentum=0.9,
                 weight_decay=0.0, schedule="cosine", threads=None)
DEFAULTS.update({name: dict(_DETECTOR) for name in ("yolo_v1", "yolo_v2", "yolo_v3", "fast_rcnn", "faster_rcnn")})
# YOLO v1's sum-squared loss with IoU confidence targets learns slowly (a box must overlap before its confidence
# means anything): lr 3e-3 gave mAP@0.5 0.457 after 10 epochs where 1e-3 gave 0.293, and it runs 30 epochs.
DEFAULTS["yolo_v1"].update(epochs=30, lr=3e-3)
# Segmentation (minicnn/tasks/segmentation.py) and embeddings (minicnn/tasks/embedding.py); README gives results.
_SEGMENTER = dict(dataset="mnist-segmentation", epochs=3, batch_size=32, optimizer="adam", lr=3e-3, momentum=0.9,
                  weight_decay=0.0, schedule="cosine", threads=None)
DEFAULTS.update({**{n: dict(_SEGMENTER) for n in ("unet", "fcn32s", "fcn16s", "fcn8s")},
                 "embedding_net": dict(dataset="mnist", epochs=4, batch_size=128, optimizer="adam", lr=3e-3,
                                       momentum=0.9, weight_decay=0.0, schedule="cosine", threads=None)})
FALLBACK = dict(dataset="cifar10", epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", threads=None)
COMMON = dict(device="cpu", seed=0, out=None, data=None, augment=True, limit_train=None, limit_test=None)


class NonFiniteLossError(RuntimeError):
    """The training loss became nan or inf; ``epoch`` and ``batch`` say where (counting from 1)."""

    def __init__(self, value, epoch, batch):
        super().__init__(f"the training loss became {value} at epoch {epoch}, batch {batch}")
        self.value, self.epoch, self.batch = value, epoch, batch


def config_for(model, **overrides):
    """The full configuration of a run: the model's defaults, then every override that is not None."""
    cfg = dict(COMMON, model=model.lower(), **DEFAULTS.get(model.lower(), FALLBACK))
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if cfg["out"] is None:
        cfg["out"] = os.path.join("runs", f"{cfg['model']}-{cfg['dataset']}")
    return cfg


def set_threads(n):
    """Run CPU work on ``n`` threads (see ``mc.set_num_threads``).  For a model as small as LeNet-5 one thread is
    fastest: on a 2-core machine shared with other work we measured 7-10 ms per training step with one thread
    and 30-150 ms with two, which spend their time waiting for each other."""
    return backend.set_num_threads(n)


def build_model(name, num_classes, device="cpu"):
    return get_model(name, num_classes=num_classes).to(device)


def build_optimizer(cfg, params):
    kind, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if kind == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if kind == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if kind == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    raise ValueError(f"unknown optimizer {kind!r}; expected sgd, adam or rmsprop")


def build_scheduler(cfg, optimizer):
    """One ``step()`` per epoch: cosine annealing to 0 over the run, or constant (``schedule="none"``)."""
    if cfg["schedule"] == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    return None


def train_one_epoch(model, loader, optimizer, epoch, epochs, task=None):
    """One pass over ``loader`` with a progress bar, the loss of each batch from ``task`` (default:
    classification); returns (mean loss, the task's training metrics (dict), images per second)."""
    task = task or task_for("mnist")
    model.train()
    total_loss, sums, seen, start = 0.0, {}, 0, time.perf_counter()
    bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
               file=sys.stderr, dynamic_ncols=True, disable=not _main_rank())
    window = []                                      # (batch, loss array, n) not yet read on the host
    for b, (x, y) in enumerate(bar):
        loss, n, stats = task.batch_loss(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        window.append((b, loss.data, n))
        for k, v in stats.items():                   # device sums: read once per epoch, below
            sums[k] = sums.get(k, 0) + v
        seen += n
        if len(window) == READ_EVERY or b == len(loader) - 1:
            total_loss += _read_losses(window, epoch, bar)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
    metrics = {k: float(v) for k, v in task.train_metrics(sums, seen).items()}      # one read per epoch
    return total_loss / seen, metrics, seen / (time.perf_counter() - start)


READ_EVERY = 10       # batches between reads of the loss: on a GPU each read waits for the queued steps to finish


def _read_losses(window, epoch, bar):
    """The summed loss * n of the window's batches, copied to the host in one transfer; the first non-finite
    one raises NonFiniteLossError naming its batch (the steps after it in the window ran, but no checkpoint
    is written from them)."""
    xp = backend.get_array_module(window[0][1])
    values = backend.to_cpu(xp.stack([v.reshape(()) for _, v, _ in window]))
    for (b, _, n), value in zip(window, values.tolist()):
        if not math.isfinite(value):
            bar.close()
            raise NonFiniteLossError(value, epoch + 1, b + 1)
    total = sum(value * n for (_, _, n), value in zip(window, values.tolist()))
    window.clear()
    return total


def load_weights(model, path):
    """Load the weights of a checkpoint (``checkpoint.npz``) or of a plain state-dict file into ``model``."""
    state = mc.load(path)
    model.load_state_dict(state["model"] if isinstance(state.get("model"), dict) else state)
    return state


# ---- run bookkeeping --------------------------------------------------------------------------------------
def _write_atomic(path, write, mode="w"):
    with atomic_write(path, mode) as f:
        write(f)


def write_metrics(out, history):
    def write(f):
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    _write_atomic(os.path.join(out, "metrics.csv"), write)


def plot_curves(out, history, panels=(("loss", "loss"), ("acc", "accuracy"))):
    """``curves.png``: train/test loss and metrics per epoch, one panel per (key, label) of ``panels``, each
    plotting the history's ``train_<key>`` and ``test_<key>`` columns that exist (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(5 * len(panels), 4))
    FigureCanvasAgg(fig)
    for ax, (key, label) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        for split, style in (("train", "o-"), ("test", "s-")):
            if f"{split}_{key}" in history[0]:
                ax.plot(epochs, [h[f"{split}_{key}"] for h in history], style, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _write_atomic(os.path.join(out, "curves.png"), lambda f: fig.savefig(f, format="png", dpi=100), mode="wb")


def _checkpoint(cfg, model, optimizer, scheduler, loader, epoch, history):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None, "epoch": epoch,
            "rng": {"minicnn": mc_random.get_rng_state(), "python": random.getstate()},
            "data_order": loader.state_dict(), "config": cfg, "history": history}


def _restore(state, model, optimizer, scheduler, loader):
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    mc_random.set_rng_state(state["rng"]["minicnn"])
    random.setstate(state["rng"]["python"])
    loader.load_state_dict(state["data_order"])


def _continue_with(cfg, saved, optimizer, scheduler):
    """On resume, apply what the new configuration changes: more epochs, another lr, momentum or weight decay."""
    for g in optimizer.param_groups:
        g["weight_decay"] = cfg["weight_decay"]
        if "momentum" in g:
            g["momentum"] = cfg["momentum"]
    if scheduler is None:
        for g in optimizer.param_groups:
            g["lr"] = cfg["lr"] if cfg["lr"] != saved["lr"] else g["lr"]
        return
    scheduler.T_max = cfg["epochs"]
    if cfg["lr"] != saved["lr"]:
        scheduler.base_lrs = [base * cfg["lr"] / saved["lr"] for base in scheduler.base_lrs]
    for g, base in zip(optimizer.param_groups, scheduler.base_lrs):
        g["lr"] = scheduler._lr(base)                    # the same value as before when nothing changed


def fit(cfg, resume=None, log=print):
    """Train as ``cfg`` (from ``config_for``) says, resuming from the checkpoint ``resume`` if given.
    Returns (history, model): one dict per epoch (epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds)
    and the trained model."""
    restore_threads = set_threads(cfg["threads"]) if cfg.get("threads") else None
    try:
        return _fit(cfg, resume, log)
    finally:
        if restore_threads is not None:
            restore_threads()


def _main_rank():
    """True in one process, and on rank 0 of a data-parallel run: the one that prints and writes files."""
    return not distributed.is_initialized() or distributed.get_rank() == 0


def _fit(cfg, resume, log):
    device = backend.check_device(cfg["device"])
    state = mc.load(resume) if resume is not None else None
    for key in ("model", "dataset", "optimizer"):
        if state is not None and cfg[key] != state["config"][key]:
            raise ValueError(f"cannot resume a run of {key} {state['config'][key]!r} as {key} {cfg[key]!r}")
    mc.manual_seed(cfg["seed"])
    task = task_for(cfg["dataset"], cfg["model"])
    train_set, test_set, num_classes = task.build_datasets(cfg)
    model = build_model(cfg["model"], num_classes, device)
    if state is None:
        task.setup(model, train_set)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer)
    # data-parallel under mpiexec (minicnn.distributed): batch_size is the global batch, each rank takes its
    # share of it (DistributedSampler: the one-process order, dealt out), gradients are averaged (DDP)
    world = distributed.get_world_size() if distributed.is_initialized() else 1
    if cfg["batch_size"] % world:
        raise ValueError(f"batch size {cfg['batch_size']} does not divide among {world} ranks")
    sampler = DistributedSampler(train_set, seed=cfg["seed"]) if world > 1 else None
    net = distributed.DistributedDataParallel(model) if world > 1 else model
    train_loader = DataLoader(train_set, cfg["batch_size"] // world, shuffle=sampler is None, seed=cfg["seed"],
                              device=device, collate_fn=task.collate, sampler=sampler)
    test_loader = DataLoader(test_set, task.eval_batch_size, seed=cfg["seed"], device=device,
                             collate_fn=task.collate)
    history, start = [], 0
    if state is not None:
        _restore(state, model, optimizer, scheduler, train_loader)
        _continue_with(cfg, state["config"], optimizer, scheduler)
        history, start = list(state["history"]), int(state["epoch"])
        if sampler is not None:
            sampler.seed = train_loader.seed
        if _main_rank():
            log(f"resumed from {resume} after epoch {start}")
    os.makedirs(cfg["out"], exist_ok=True)
    ckpt = os.path.join(cfg["out"], "checkpoint.npz")
    for epoch in range(start, cfg["epochs"]):
        t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        train_loader.set_epoch(epoch)
        train_loss, train_metrics, speed = train_one_epoch(net, train_loader, optimizer, epoch, cfg["epochs"],
                                                           task)
        if world > 1:                                # this rank's shard -> the whole (equal shards)
            train_loss, train_metrics, speed = distributed.mean_over_ranks(train_loss, train_metrics, speed * world)
        test_metrics = task.evaluate(model, test_loader)
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - t0
        metrics = {k: round(float(v), 6) for k, v in {**train_metrics, **test_metrics}.items()}
        history.append(dict(epoch=epoch + 1, train_loss=round(train_loss, 6), **metrics, lr=lr,
                            seconds=round(seconds, 2)))
        if not _main_rank():                         # the ranks hold the same weights: rank 0 writes
            continue
        mc.save(_checkpoint(cfg, model, optimizer, scheduler, train_loader, epoch + 1, history), ckpt)
        write_metrics(cfg["out"], history)
        plot_curves(cfg["out"], history, task.curves)
        task.picture(model, test_set, cfg["out"], device)
        h = history[-1]
        log(f"epoch {epoch + 1}/{cfg['epochs']}  train loss {h['train_loss']:.4f}  {task.describe(h)}  "
            f"lr {lr:.4g}  {speed:.0f} img/s  {seconds:.1f} s")
    return history, model
