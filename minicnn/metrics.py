"""Evaluation measures: accuracy, error rates, confusion matrix, ROC/AUC, IoU, per-class segmentation accuracy.

Inputs may be Tensors or arrays on any device; results are NumPy values.  ``pred`` is either class indices or
scores with the classes on axis 1 (``(N, K)`` logits, ``(N, K, H, W)`` segmentation scores), reduced by argmax.
Confusion matrices follow the usual convention: row = true class, column = predicted class.
"""
import numpy as np

from minicnn.autograd import Tensor
from minicnn.backend import to_cpu
from minicnn.kernels.nms import box_iou_ref

__all__ = ["accuracy", "error_rate", "confusion_matrix", "balanced_error_rate", "roc_curve", "auc",
           "roc_auc_score", "iou", "mean_iou", "segmentation_accuracy", "pixel_accuracy", "average_precision",
           "mean_average_precision"]


def _np(x):
    return to_cpu(x.data if isinstance(x, Tensor) else np.asarray(x) if isinstance(x, (list, tuple)) else x)


def _labels(pred, target):
    """(predicted class indices, true class indices) as int64 arrays of one shape."""
    pred, target = _np(pred), _np(target).astype(np.int64)
    if pred.ndim == target.ndim + 1:                  # scores: argmax over the class axis
        pred = pred.argmax(axis=1)
    if pred.shape != target.shape:
        raise ValueError(f"metrics: predictions {pred.shape} do not match targets {target.shape}")
    return pred.astype(np.int64), target


def accuracy(pred, target):
    """Fraction of predictions equal to the target."""
    pred, target = _labels(pred, target)
    return float((pred == target).mean()) if target.size else float("nan")


def error_rate(pred, target):
    """``1 - accuracy``: fraction of wrong predictions."""
    return 1.0 - accuracy(pred, target)


def confusion_matrix(pred, target, num_classes=None):
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``; int64 ``(K, K)``."""
    pred, target = _labels(pred, target)
    K = num_classes or int(max(pred.max(initial=-1), target.max(initial=-1)) + 1)
    if target.size and (min(pred.min(), target.min()) < 0 or max(pred.max(), target.max()) >= K):
        raise ValueError(f"confusion_matrix: labels outside 0..{K - 1}")
    return np.bincount(target.ravel() * K + pred.ravel(), minlength=K * K).reshape(K, K)


def balanced_error_rate(pred, target, num_classes=None):
    """Mean over the classes present in ``target`` of that class's error rate (misses / its samples).
    For two classes: ``(FP / (FP + TN) + FN / (FN + TP)) / 2``; unlike the error rate it is not fooled by a
    classifier that always answers the majority class."""
    C = confusion_matrix(pred, target, num_classes)
    support = C.sum(axis=1)
    present = support > 0
    return float((1 - np.diag(C)[present] / support[present]).mean())


def roc_curve(scores, target):
    """ROC of a two-class problem: ``(fpr, tpr, thresholds)``, thresholds decreasing, from ``(0, 0)`` (threshold
    ``inf``) to ``(1, 1)``; predicting positive where ``score >= threshold``.  ``target`` in {0, 1}."""
    target, scores = _np(target).ravel().astype(np.int64), _np(scores).ravel().astype(np.float64)
    if target.shape != scores.shape or not np.isin(target, (0, 1)).all():
        raise ValueError(f"roc_curve: expected targets in {{0, 1}} and one score each, got {target.shape} "
                         f"targets and {scores.shape} scores")
    P, N = int(target.sum()), int(target.size - target.sum())
    if P == 0 or N == 0:
        raise ValueError(f"roc_curve: needs both classes, got {P} positives and {N} negatives")
    order = np.argsort(-scores, kind="stable")
    scores, target = scores[order], target[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]    # last sample of each group of equal scores
    tp = np.cumsum(target)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / N], np.r_[0.0, tp / P], np.r_[np.inf, scores[last]]


def auc(x, y):
    """Area under the curve through the points ``(x, y)`` (x monotone), by the trapezoidal rule."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def roc_auc_score(scores, target):
    """Area under the ROC curve: the probability that a random positive scores above a random negative."""
    fpr, tpr, _ = roc_curve(scores, target)
    return auc(fpr, tpr)


def iou(pred, target, num_classes=None):
    """Intersection over union per class, ``TP / (TP + FP + FN)``, for label maps (segmentation) or labels;
    float64 ``(K,)``, ``nan`` for a class absent from both."""
    C = confusion_matrix(pred, target, num_classes).astype(np.float64)
    tp = np.diag(C)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (C.sum(axis=0) + C.sum(axis=1) - tp)


def mean_iou(pred, target, num_classes=None):
    """Mean of ``iou`` over the classes that occur in the prediction or the target."""
    return float(np.nanmean(iou(pred, target, num_classes)))


def pixel_accuracy(pred, target, ignore_index=None):
    """Fraction of pixels labelled correctly (Long et al. 2015, §5: sum_i n_ii / sum_i t_i), leaving out pixels
    whose target is ``ignore_index``; ``pred`` label maps (N, H, W) or scores (N, K, H, W)."""
    pred, target = _labels(pred, target)
    keep = target != ignore_index if ignore_index is not None else np.ones(target.shape, bool)
    return float((pred[keep] == target[keep]).mean()) if keep.any() else float("nan")


def segmentation_accuracy(pred, target, num_classes=None):
    """Per-class accuracy ``n / (n + e)``: of the ``n + e`` pixels of class ``i``, ``n`` were labelled ``i`` and
    ``e`` something else; float64 ``(K,)``, ``nan`` for a class with no pixels."""
    C = confusion_matrix(pred, target, num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(C) / C.sum(axis=1)


# ---- detection ------------------------------------------------------------------------------------------------
def _det_arrays(d, keys):
    out = []
    for k in keys:
        v = _np(d[k])
        out.append(np.asarray(v, np.float64).reshape(-1, 4) if k == "boxes" else np.asarray(v).reshape(-1))
    return out


def average_precision(recall, precision):
    """VOC's all-point interpolated AP (Everingham et al. 2010, from VOC2010 on): the area under the precision
    envelope p(r) = max over r' >= r of precision(r'), with recall and precision in detection order."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]            # the envelope, right to left
    step = np.flatnonzero(mrec[1:] != mrec[:-1])              # where recall changes
    return float(((mrec[step + 1] - mrec[step]) * mpre[step + 1]).sum())


def mean_average_precision(predictions, targets, iou_threshold=0.5, num_classes=None):
    """Detection quality, VOC style: per class, every image's detections ranked by score; a detection is a
    true positive when its best-overlapping ground truth box of that class (IoU >= ``iou_threshold``) has not
    been claimed by a higher-scoring one, else a false positive; AP = ``average_precision`` of the
    precision-recall curve; mAP = the mean over the classes that occur in ``targets``.

    predictions: one ``{"boxes" (K, 4), "scores" (K,), "labels" (K,)}`` per image (a detector's eval output);
    targets: one ``{"boxes" (G, 4), "labels" (G,)}`` per image.  Returns ``{"map": mAP at iou_threshold,
    "ap": (num_classes,) AP per class (NaN for a class without ground truth), "map_50_95": the COCO-style mean
    of the mAP over IoU thresholds 0.50, 0.55, ..., 0.95}`` (COCO averages these thresholds; its AP samples
    precision at 101 recalls where this integrates all points)."""
    if len(predictions) != len(targets):
        raise ValueError(f"mean_average_precision: {len(predictions)} predictions for {len(targets)} targets")
    preds = [_det_arrays(p, ("boxes", "scores", "labels")) for p in predictions]
    gts = [_det_arrays(t, ("boxes", "labels")) for t in targets]
    if num_classes is None:
        num_classes = 1 + int(max([l.max(initial=-1) for _, l in gts] + [l.max(initial=-1) for *_, l in preds]))
    ious = [box_iou_ref(p[0], g[0]) for p, g in zip(preds, gts)]    # (K, G) per image, all classes
    n_gt = np.array([sum(int((g[1] == c).sum()) for g in gts) for c in range(num_classes)])
    ranked = []                                          # per class: its detections (image, index), best first
    for c in range(num_classes):
        dets = [(s, n, k) for n, (_, sc, lab) in enumerate(preds) for k, s in enumerate(sc) if lab[k] == c]
        ranked.append([(n, k) for _, n, k in sorted(dets, key=lambda d: -d[0])])  # stable: ties keep order

    def ap_per_class(thr):
        ap = np.full(num_classes, np.nan)
        for c in np.flatnonzero(n_gt):
            claimed = [np.zeros(len(g[1]), bool) for g in gts]
            tp = np.zeros(len(ranked[c]))
            for i, (n, k) in enumerate(ranked[c]):
                mine = np.flatnonzero(gts[n][1] == c)
                if mine.size == 0:
                    continue
                j = mine[np.argmax(ious[n][k, mine])]         # the best-overlapping box of the class
                if ious[n][k, j] >= thr and not claimed[n][j]:
                    tp[i], claimed[n][j] = 1, True
            ctp = np.cumsum(tp)
            ap[c] = average_precision(ctp / n_gt[c], ctp / np.arange(1, len(tp) + 1)) if len(tp) else 0.0
        return ap

    mean = lambda ap: float(np.nanmean(ap)) if n_gt.any() else float("nan")
    ap = ap_per_class(iou_threshold)
    coco = [ap if np.isclose(t, iou_threshold) else ap_per_class(t) for t in np.linspace(0.5, 0.95, 10)]
    return {"map": mean(ap), "ap": ap, "map_50_95": float(np.mean([mean(a) for a in coco]))}
