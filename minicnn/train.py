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
from minicnn import backend, optim
from minicnn import random as mc_random
from minicnn.serialization import atomic_write
from minicnn.data import CIFAR10, CIFAR100, MNIST, DataLoader, FashionMNIST, Subset
from minicnn.data import transforms as T
from minicnn.models import get_model

__all__ = ["DATASETS", "DEFAULTS", "NonFiniteLossError", "config_for", "build_datasets", "build_model",
           "fit", "train_one_epoch", "evaluate", "load_weights"]

DATASETS = {        # file format class, per-channel mean and std of the training images, training augmentation
    "mnist": (MNIST, (0.1307,), (0.3081,), lambda: [T.RandomCrop(28, padding=2)]),          # shifts <= 2 px
    "fashion-mnist": (FashionMNIST, (0.2860,), (0.3530,), lambda: [T.RandomCrop(28, padding=2)]),
    "cifar10": (CIFAR10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                lambda: [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]),
    "cifar100": (CIFAR100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                 lambda: [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]),
}

# Per-model defaults.  lenet5's reach 99.26-99.35% MNIST test accuracy (seeds 0-4) in 65-100 s of
# training on a 2-core CPU (idle, or shared with other work); without the random shifts and weight decay, 98.99-99.28%.
# Models without an entry get FALLBACK (a CIFAR recipe).
# ``threads``: CPU threads for Numba's kernels and NumPy's BLAS (None: leave them be).
DEFAULTS = {
    "lenet5": dict(dataset="mnist", epochs=8, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9,
                   weight_decay=5e-4, schedule="cosine", threads=1),
}
FALLBACK = dict(dataset="cifar10", epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", threads=None)
COMMON = dict(device="cpu", seed=0, out=None, data=None, augment=True, limit_train=None, limit_test=None)
AUX_WEIGHT = 0.3            # GoogLeNet (Szegedy et al. 2015, section 5): auxiliary losses weighted by 0.3
EVAL_BATCH = 1000


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


def build_datasets(name, root=None, limit_train=None, limit_test=None, augment=True):
    """(train set, test set, number of classes) for a dataset name: normalised, the training set augmented."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    cls, mean, std, augmentation = DATASETS[name]
    normalize = T.Normalize(mean, std)
    train_tf = T.Compose(augmentation() + [normalize]) if augment else normalize
    download = not (cls is MNIST and root is None)      # fetches only missing or damaged files; MNIST is bundled
    train = cls(root, train=True, transform=train_tf, download=download)
    test = cls(root, train=False, transform=normalize, download=False)
    classes = len(train.classes)
    if limit_train:
        train = Subset(train, range(min(limit_train, len(train))))
    if limit_test:
        test = Subset(test, range(min(limit_test, len(test))))
    return train, test, classes


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


def _loss(out, y):
    """Cross-entropy of the main logits plus ``AUX_WEIGHT`` x each auxiliary head's (models returning tuples)."""
    if isinstance(out, (tuple, list)):
        main, aux = out[0], out[1:]
        loss = F.cross_entropy(main, y)
        for a in aux:
            loss = loss + AUX_WEIGHT * F.cross_entropy(a, y)
        return loss, main
    return F.cross_entropy(out, y), out


def train_one_epoch(model, loader, optimizer, epoch, epochs):
    """One pass over ``loader`` with a progress bar; returns (mean loss, accuracy, images per second)."""
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
               file=sys.stderr, dynamic_ncols=True)
    for b, (x, y) in enumerate(bar):
        loss, logits = _loss(model(x), y)
        value = loss.item()
        if not math.isfinite(value):
            bar.close()
            raise NonFiniteLossError(value, epoch + 1, b + 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n = len(y)
        total_loss += value * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
        if b % 10 == 0 or b == len(loader) - 1:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
    return total_loss / seen, correct / seen, seen / (time.perf_counter() - start)


def evaluate(model, loader):
    """(mean loss, predicted classes, true classes) over ``loader``, in eval mode without a graph."""
    model.eval()
    total, preds, targets = 0.0, [], []
    with mc.no_grad():
        for x, y in loader:
            out = model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            total += F.cross_entropy(logits, y).item() * len(y)
            preds.append(backend.to_cpu(logits.data.argmax(axis=1)))
            targets.append(backend.to_cpu(y.data))
    preds, targets = np.concatenate(preds), np.concatenate(targets)
    return total / len(targets), preds, targets


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


def plot_curves(out, history):
    """``curves.png``: train/test loss and accuracy per epoch (matplotlib's Agg canvas, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    for ax, key, label in zip(fig.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"test_{key}"] for h in history], "s-", label="test")
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


def _fit(cfg, resume, log):
    device = backend.check_device(cfg["device"])
    state = mc.load(resume) if resume is not None else None
    for key in ("model", "dataset", "optimizer"):
        if state is not None and cfg[key] != state["config"][key]:
            raise ValueError(f"cannot resume a run of {key} {state['config'][key]!r} as {key} {cfg[key]!r}")
    mc.manual_seed(cfg["seed"])
    train_set, test_set, num_classes = build_datasets(cfg["dataset"], cfg["data"], cfg["limit_train"],
                                                      cfg["limit_test"], cfg.get("augment", True))
    model = build_model(cfg["model"], num_classes, device)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer)
    train_loader = DataLoader(train_set, cfg["batch_size"], shuffle=True, seed=cfg["seed"], device=device)
    test_loader = DataLoader(test_set, EVAL_BATCH, seed=cfg["seed"], device=device)
    history, start = [], 0
    if state is not None:
        _restore(state, model, optimizer, scheduler, train_loader)
        _continue_with(cfg, state["config"], optimizer, scheduler)
        history, start = list(state["history"]), int(state["epoch"])
        log(f"resumed from {resume} after epoch {start}")
    os.makedirs(cfg["out"], exist_ok=True)
    ckpt = os.path.join(cfg["out"], "checkpoint.npz")
    for epoch in range(start, cfg["epochs"]):
        t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        train_loader.set_epoch(epoch)
        train_loss, train_acc, speed = train_one_epoch(model, train_loader, optimizer, epoch, cfg["epochs"])
        test_loss, preds, targets = evaluate(model, test_loader)
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - t0
        history.append(dict(epoch=epoch + 1, train_loss=round(train_loss, 6), train_acc=round(train_acc, 6),
                            test_loss=round(test_loss, 6), test_acc=round(float((preds == targets).mean()), 6),
                            lr=lr, seconds=round(seconds, 2)))
        mc.save(_checkpoint(cfg, model, optimizer, scheduler, train_loader, epoch + 1, history), ckpt)
        write_metrics(cfg["out"], history)
        plot_curves(cfg["out"], history)
        h = history[-1]
        log(f"epoch {epoch + 1}/{cfg['epochs']}  train loss {h['train_loss']:.4f}  train acc "
            f"{100 * h['train_acc']:.2f}%  test acc {100 * h['test_acc']:.2f}%  lr {lr:.4g}  "
            f"{speed:.0f} img/s  {seconds:.1f} s")
    return history, model
