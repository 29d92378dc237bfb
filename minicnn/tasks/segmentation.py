"""Semantic segmentation on MNISTSegmentation: per-pixel cross-entropy, pixel accuracy and mean IoU over the
11 classes, and ``segmentation.png`` (input / truth / prediction for a few test images) after every epoch."""
import os

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import backend
from minicnn.data import MNISTSegmentation
from minicnn.metrics import confusion_matrix
from minicnn.serialization import atomic_write
from minicnn.tasks import Task, register

__all__ = ["Segmentation", "TRAIN_SIZE", "TEST_SIZE", "predict", "draw_segmentation", "label_colors"]

TRAIN_SIZE = 10_000             # training images per epoch (limit_train overrides)
TEST_SIZE = 1_000               # test images (limit_test overrides)
PICTURE_IMAGES = 6


def predict(model, loader, num_classes):
    """(mean loss, confusion matrix (K, K)) over ``loader`` in eval mode without a graph."""
    model.eval()
    total, seen, C = 0.0, 0, np.zeros((num_classes, num_classes), np.int64)
    with mc.no_grad():
        for x, y in loader:
            logits = model(x)
            total += F.cross_entropy(logits, y).item() * len(y)
            seen += len(y)
            C += confusion_matrix(backend.to_cpu(logits.data.argmax(axis=1)), backend.to_cpu(y.data), num_classes)
    return total / max(seen, 1), C


def scores(C):
    """(pixel accuracy, mean IoU over the classes present in truth or prediction) of a confusion matrix."""
    tp = np.diag(C).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (C.sum(0) + C.sum(1) - tp)
    return float(tp.sum() / max(C.sum(), 1)), float(np.nanmean(iou))


def label_colors(num_classes):
    """(K, 3) RGB in [0, 1]: black for the background, tab10/tab20 colours for the others."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if num_classes <= 11 else "tab20"]
    return np.vstack([[0, 0, 0]] + [cmap(i % cmap.N)[:3] for i in range(num_classes - 1)])


def draw_segmentation(path, images, truth, pred, num_classes):
    """A PNG with one column per image: the input (grey), the true label map, the predicted one (colours by
    class; a legend names them)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    colors = label_colors(num_classes)
    n = len(images)
    fig = Figure(figsize=(1.9 * n + 1.6, 5.8))
    FigureCanvasAgg(fig)
    axes = np.asarray(fig.subplots(3, n)).reshape(3, n)
    for k in range(n):
        axes[0, k].imshow(np.asarray(images[k])[0], cmap="gray", vmin=0, vmax=1)
        axes[1, k].imshow(colors[truth[k]])
        axes[2, k].imshow(colors[pred[k]])
        for r in range(3):
            axes[r, k].set_xticks([])
            axes[r, k].set_yticks([])
    for r, name in enumerate(("input", "truth", "prediction")):
        axes[r, 0].set_ylabel(name)
    names = ["bg"] + [str(d) for d in range(num_classes - 1)]
    fig.legend(handles=[Patch(color=colors[i], label=names[i]) for i in range(num_classes)], loc="center right",
               fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.2 / (1.9 * n + 1.6), 1))
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=90)


@register
class Segmentation(Task):
    """A class per pixel: (N, K, H, W) logits against (N, H, W) label maps."""
    name = "segmentation"
    datasets = ("mnist-segmentation",)
    eval_batch_size = 100
    curves = (("loss", "loss"), ("pixel_acc", "pixel accuracy"), ("miou", "mean IoU"))

    def build_datasets(self, cfg):
        seed = cfg.get("data_seed", 0)
        train = MNISTSegmentation(cfg["data"], train=True, size=cfg["limit_train"] or TRAIN_SIZE, seed=seed)
        test = MNISTSegmentation(cfg["data"], train=False, size=cfg["limit_test"] or TEST_SIZE, seed=seed)
        return train, test, len(MNISTSegmentation.classes)

    def batch_loss(self, model, x, y):
        logits = model(x)
        correct = int((logits.data.argmax(axis=1) == y.data).sum())
        return F.cross_entropy(logits, y), len(y), {"correct": correct, "pixels": int(np.prod(y.shape))}

    def train_metrics(self, sums, seen):
        return {"train_pixel_acc": sums.get("correct", 0) / max(sums.get("pixels", 0), 1)}

    def evaluate(self, model, loader):
        loss, C = predict(model, loader, len(MNISTSegmentation.classes))
        pixel_acc, miou = scores(C)
        return {"test_loss": loss, "test_pixel_acc": pixel_acc, "test_miou": miou}

    def describe(self, row):
        return (f"train pixel acc {100 * row['train_pixel_acc']:.2f}%  test pixel acc "
                f"{100 * row['test_pixel_acc']:.2f}%  test mIoU {row['test_miou']:.4f}")

    def picture(self, model, test_set, out, device):
        n = min(PICTURE_IMAGES, len(test_set))
        x, y = test_set.get_batch(np.arange(n))
        model.eval()
        with mc.no_grad():
            logits = model(mc.Tensor._make(backend.to_device(x, device), device))
        pred = backend.to_cpu(logits.data.argmax(axis=1))
        draw_segmentation(os.path.join(out, "segmentation.png"), x, y, pred, len(MNISTSegmentation.classes))
