"""Object detection on MNISTDetection: the detector's summed loss dict, mAP@0.5 and mAP@0.5:0.95, and
``detections.png`` (test images with predicted and true boxes) after every epoch."""
import os

import numpy as np

import minicnn as mc
from minicnn import backend
from minicnn.data import MNISTDetection, detection_collate
from minicnn.metrics import mean_average_precision
from minicnn.serialization import atomic_write
from minicnn.tasks import Task, register

__all__ = ["Detection", "predict", "draw_detections", "ANCHOR_FIT_IMAGES"]

ANCHOR_FIT_IMAGES = 2000        # training images whose boxes the k-means anchors are fitted to
PICTURE_IMAGES = 8              # test images in detections.png
PICTURE_SCORE = 0.3             # boxes drawn from this score up


def predict(model, loader):
    """(predictions, targets) over ``loader``: the detector's eval output and the true targets, per image."""
    model.eval()
    preds, targets = [], []
    with mc.no_grad():
        for x, y in loader:
            preds.extend(model(x))
            targets.extend(y)
    return preds, targets


def draw_detections(path, images, predictions, targets=None, score=PICTURE_SCORE, columns=4):
    """A PNG grid of (1, H, W) images with each prediction's box, label and score (scores >= ``score``) and, if
    given, the true boxes dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    n = len(images)
    rows = (n + columns - 1) // columns
    fig = Figure(figsize=(2.6 * min(n, columns), 2.6 * rows))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, min(n, columns))).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(np.asarray(images[k])[0], cmap="gray", vmin=0, vmax=1)
        if targets is not None:
            for b in np.asarray(targets[k]["boxes"]).reshape(-1, 4):
                ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                                       edgecolor="deepskyblue", linestyle="--", linewidth=1))
        p = predictions[k]
        for b, s, c in zip(np.asarray(p["boxes"]), np.asarray(p["scores"]), np.asarray(p["labels"])):
            if s < score:
                continue
            ax.add_patch(Rectangle((b[0] - 0.5, b[1] - 0.5), b[2] - b[0], b[3] - b[1], fill=False,
                                   edgecolor="lime", linewidth=1.2))
            ax.text(b[0], b[1] - 1, f"{c} {s:.2f}", color="yellow", fontsize=7, va="bottom")
    fig.suptitle("predicted (green: label score), true (blue, dashed)", fontsize=9)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


@register
class Detection(Task):
    """Boxes and labels per image (torchvision's detection contract); the detector computes its own losses."""
    name = "detection"
    datasets = ("mnist-detection",)
    eval_batch_size = 50
    curves = (("loss", "loss"), ("map50", "mAP@0.5"), ("map", "mAP@0.5:0.95"))
    collate = staticmethod(detection_collate)

    def build_datasets(self, cfg):
        train = MNISTDetection(cfg["data"], train=True, size=cfg["limit_train"] or None, seed=cfg.get("data_seed", 0))
        test = MNISTDetection(cfg["data"], train=False, size=cfg["limit_test"] or None, seed=cfg.get("data_seed", 0))
        return train, test, len(MNISTDetection.classes)

    def setup(self, model, train_set):
        """Fit the model's anchors (YOLO v2, v3) to the boxes of the first training images."""
        if hasattr(model, "fit_anchors"):
            n = min(len(train_set), ANCHOR_FIT_IMAGES)
            model.fit_anchors(np.concatenate([train_set[i][1]["boxes"] for i in range(n)]))

    def batch_loss(self, model, images, targets):
        losses = model(images, targets)
        total = None
        for v in losses.values():
            total = v if total is None else total + v
        return total, len(targets), {}

    def evaluate(self, model, loader):
        preds, targets = predict(model, loader)
        r = mean_average_precision(preds, targets, num_classes=len(MNISTDetection.classes))
        return {"test_map50": r["map"], "test_map": r["map_50_95"]}

    def describe(self, row):
        return f"test mAP@0.5 {row['test_map50']:.4f}  mAP@0.5:0.95 {row['test_map']:.4f}"

    def picture(self, model, test_set, out, device):
        n = min(PICTURE_IMAGES, len(test_set))
        images, targets = detection_collate([test_set[i] for i in range(n)])
        model.eval()
        with mc.no_grad():
            preds = model(mc.Tensor._make(backend.to_device(images, device), device))
        draw_detections(os.path.join(out, "detections.png"), images, preds, targets)
