"""Image classification: MNIST, Fashion-MNIST, CIFAR-10/100; cross-entropy (plus auxiliary heads), accuracy."""

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.data import CIFAR10, CIFAR100, MNIST, FashionMNIST, Subset
from minicnn.data import transforms as T
from minicnn.tasks import Task, register

__all__ = ["Classification", "DATASETS", "AUX_WEIGHT", "build_datasets", "classification_loss", "evaluate"]

DATASETS = {        # file format class, per-channel mean and std of the training images, training augmentation
    "mnist": (MNIST, (0.1307,), (0.3081,), lambda: [T.RandomCrop(28, padding=2)]),          # shifts <= 2 px
    "fashion-mnist": (FashionMNIST, (0.2860,), (0.3530,), lambda: [T.RandomCrop(28, padding=2)]),
    "cifar10": (CIFAR10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                lambda: [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]),
    "cifar100": (CIFAR100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                 lambda: [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]),
}
AUX_WEIGHT = 0.3            # GoogLeNet (Szegedy et al. 2015, section 5): auxiliary losses weighted by 0.3


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


def classification_loss(out, y):
    """Cross-entropy of the main logits plus ``AUX_WEIGHT`` x each auxiliary head's (models returning tuples)
    -> (loss, main logits)."""
    if isinstance(out, (tuple, list)):
        main, aux = out[0], out[1:]
        loss = F.cross_entropy(main, y)
        for a in aux:
            loss = loss + AUX_WEIGHT * F.cross_entropy(a, y)
        return loss, main
    return F.cross_entropy(out, y), out


def evaluate(model, loader, tta=None):
    """(mean loss, predicted classes, true classes) over ``loader``, in eval mode without a graph.

    ``tta``: a test-time augmentation that turns a batch into ``tta.ncrops`` crops per image
    (``T.TenCrop(224)``, AlexNet's 10 patches): the softmax outputs of each image's crops are averaged (§4.1),
    the loss is the NLL of that average."""
    model.eval()
    total, preds, targets = 0.0, [], []
    with mc.no_grad():
        for x, y in loader:
            if tta is not None:
                x = mc.tensor(tta(x.data if isinstance(x, mc.Tensor) else x), device=y.device)
            out = model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            if tta is not None:                   # log of the mean softmax: argmax and NLL read it as logits
                logits = mc.log(T.average_crops(F.softmax(logits, dim=1), tta.ncrops))
            total = total + F.cross_entropy(logits, y).data * len(y)       # kept on the device: no sync per batch
            preds.append(logits.data.argmax(axis=1))
            targets.append(y.data)
    xp = backend.get_array_module(preds[0])                                # one copy to the host at the end
    preds, targets = backend.to_cpu(xp.concatenate(preds)), backend.to_cpu(xp.concatenate(targets))
    return float(total) / len(targets), preds, targets


@register
class Classification(Task):
    """One label per image: cross-entropy to minimise, accuracy to report."""
    name = "classification"
    datasets = tuple(DATASETS)
    eval_batch_size = 1000
    curves = (("loss", "loss"), ("acc", "accuracy"))

    def build_datasets(self, cfg):
        return build_datasets(cfg["dataset"], cfg["data"], cfg["limit_train"], cfg["limit_test"],
                              cfg.get("augment", True))

    def batch_loss(self, model, x, y):
        loss, logits = classification_loss(model(x), y)
        return loss, len(y), {"correct": (logits.data.argmax(axis=1) == y.data).sum()}   # on the device: no sync

    def train_metrics(self, sums, seen):
        return {"train_acc": sums.get("correct", 0) / seen}

    def evaluate(self, model, loader):
        loss, preds, targets = evaluate(model, loader)
        return {"test_loss": loss, "test_acc": float((preds == targets).mean())}

    def describe(self, row):
        return f"train acc {100 * row['train_acc']:.2f}%  test acc {100 * row['test_acc']:.2f}%"
