"""The YOLO detectors, sized for 96 x 96 MNISTDetection canvases: YOLO v1 (Redmon et al. 2016), v2 (Redmon &
Farhadi 2017, YOLO9000) and v3 (Redmon & Farhadi 2018).  Torchvision's contract (``Detector``): training mode
returns a dict of losses, eval mode a list of detections; images in [0, 1], normalised inside the model.
Anchors (v2, v3) are buffers, so a checkpoint carries the k-means clusters it was trained with."""
import numpy as np

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn import backend
from minicnn.models.darknet import ConvBNLeaky, DarknetResidual, _init
from minicnn.models.detection import Detector, YOLOv2Head, yolo_decode, yolo_loss

__all__ = ["YOLOv1", "YOLOv2", "YOLOv3", "yolo_v1", "yolo_v2", "yolo_v3", "yolo_v1_targets", "yolo_v1_loss"]

# ink (width, height) of digits 14-40 px tall: a start for v2 / v3 until ``fit_anchors`` sets k-means clusters
DEFAULT_ANCHORS = [[6, 16], [12, 18], [16, 24], [8, 32], [22, 32], [18, 38], [28, 38], [12, 40], [34, 42]]


def _stack(spec, c):
    """Layers from a table: an int is a 3 x 3 ConvBNLeaky, (C, 1) a 1 x 1 one, "M" a 2 x 2 max pool."""
    layers = []
    for v in spec:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        else:
            out, k = v if isinstance(v, tuple) else (v, 3)
            layers.append(ConvBNLeaky(c, out, k))
            c = out
    return nn.Sequential(*layers), c


# ---- YOLO v1 -------------------------------------------------------------------------------------------------
def _cell_iou(a, b):
    """IoU of (..., 4) boxes a and b given as (cx, cy, w, h), elementwise."""
    ax1, ay1, ax2, ay2 = a[..., 0] - a[..., 2] / 2, a[..., 1] - a[..., 3] / 2, a[..., 0] + a[..., 2] / 2, \
        a[..., 1] + a[..., 3] / 2
    bx1, by1, bx2, by2 = b[..., 0] - b[..., 2] / 2, b[..., 1] - b[..., 3] / 2, b[..., 0] + b[..., 2] / 2, \
        b[..., 1] + b[..., 3] / 2
    inter = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None) * \
        np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def yolo_v1_targets(pred, targets, S, B, C, image_size):
    """YOLO v1's assignment (§2.2) from the predictions (N, S, S, 5B + C) array (per cell: B x (x, y, sqrt w,
    sqrt h, confidence), then C class scores; x, y the centre's offset in the cell, w, h relative to the image):
    an object belongs to the cell holding its centre (the first object of a cell keeps it) and, in it, to the
    predictor whose box has the highest IoU with it ("responsible"); its confidence target is that IoU.
    -> dict of arrays: obj (N, S, S, B), box (N, S, S, B, 4), conf (N, S, S, B), cell (N, S, S), cls (N, S, S, C)."""
    N = pred.shape[0]
    p = np.asarray(pred, np.float64)[..., :5 * B].reshape(N, S, S, B, 5)
    t = {"obj": np.zeros((N, S, S, B)), "box": np.zeros((N, S, S, B, 4)), "conf": np.zeros((N, S, S, B)),
         "cell": np.zeros((N, S, S)), "cls": np.zeros((N, S, S, C))}
    cell = image_size / S
    for n, (gt, lab) in enumerate(targets):
        for (x1, y1, x2, y2), c in zip(gt, lab):
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            j, i = min(int(cx // cell), S - 1), min(int(cy // cell), S - 1)
            if t["cell"][n, i, j]:
                continue
            want = np.array([cx / cell - j, cy / cell - i, np.sqrt(w / image_size), np.sqrt(h / image_size)])
            guess = p[n, i, j, :, :4]
            iou = _cell_iou(np.column_stack([guess[:, :2], guess[:, 2:4] ** 2 * S]),
                            np.broadcast_to(np.r_[want[:2], want[2:] ** 2 * S], (B, 4)))   # in cell units
            r = int(iou.argmax())
            t["obj"][n, i, j, r], t["box"][n, i, j, r], t["conf"][n, i, j, r] = 1, want, iou[r]
            t["cell"][n, i, j], t["cls"][n, i, j, c] = 1, 1
    return t


def yolo_v1_loss(pred, t, B, lambda_coord=5.0, lambda_noobj=0.5):
    """Eq. 3 of the paper, summed over cells and predictors and averaged over the N images:
    lambda_coord sum_obj [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
    + sum_obj (C - C^)^2 + lambda_noobj sum_noobj C^2 + sum_cells-with-objects sum_c (p(c) - p^(c))^2.
    pred Tensor (N, S, S, 5B + C); t from ``yolo_v1_targets``.  -> dict of the four terms."""
    N, S = pred.shape[0], pred.shape[1]
    dtype = pred.dtype
    boxes = pred[..., :5 * B].reshape(N, S, S, B, 5)
    obj = t["obj"].astype(dtype)
    coord = ((boxes[..., :4] - t["box"].astype(dtype)) ** 2 * obj[..., None]).sum()
    conf = boxes[..., 4]
    return {"loss_box": lambda_coord * coord / N,
            "loss_obj": (((conf - t["conf"].astype(dtype)) ** 2) * obj).sum() / N,
            "loss_noobj": lambda_noobj * ((conf ** 2) * (1 - obj)).sum() / N,
            "loss_class": (((pred[..., 5 * B:] - t["cls"].astype(dtype)) ** 2)
                           * t["cell"].astype(dtype)[..., None]).sum() / N}


class YOLOv1(Detector):
    """S x S grid, B boxes per cell, C classes (§2): a convolutional backbone (leaky ReLU, 1 x 1 reductions
    between 3 x 3 convs; BN added, which v1 lacked) to (N, 128, S, S), then fully connected layers to
    S x S x (5B + C) with linear outputs.  Box: centre offset in its cell, square roots of width and height
    relative to the image; score = confidence x class score (§2, eq. 1)."""
    cfg = [16, "M", 32, "M", (16, 1), 64, "M", (32, 1), 128, "M", (64, 1), 128]   # 96 px -> 6 x 6

    def __init__(self, num_classes=10, S=6, B=2, image_size=96, lambda_coord=5.0, lambda_noobj=0.5, hidden=512):
        super().__init__(num_classes)
        self.S, self.B, self.image_size = S, B, image_size
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.features, c = _stack(self.cfg, 1)
        self.fc1 = nn.Linear(c * S * S, hidden)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, S * S * (5 * B + num_classes))
        _init(self)

    def head(self, x):
        f = self.features(x)
        if f.shape[2:] != (self.S, self.S):
            raise ValueError(f"YOLOv1: images must be {self.image_size} x {self.image_size}, got {x.shape[2:]}")
        h = self.dropout(F.leaky_relu(self.fc1(f.reshape(f.shape[0], -1)), 0.1))
        return self.fc2(h).reshape(x.shape[0], self.S, self.S, 5 * self.B + self.num_classes)

    def losses(self, x, targets):
        pred = self.head(x)
        t = yolo_v1_targets(backend.to_cpu(pred.data), targets, self.S, self.B, self.num_classes, self.image_size)
        return yolo_v1_loss(pred, t, self.B, self.lambda_coord, self.lambda_noobj)

    def detect(self, x):
        p = np.asarray(backend.to_cpu(self.head(x).data), np.float64)
        N, S, B, cell = p.shape[0], self.S, self.B, self.image_size / self.S
        box = p[..., :5 * B].reshape(N, S, S, B, 5)
        cy, cx = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
        xc, yc = (box[..., 0] + cx[..., None]) * cell, (box[..., 1] + cy[..., None]) * cell
        w, h = box[..., 2] ** 2 * self.image_size, box[..., 3] ** 2 * self.image_size
        boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1).reshape(N, -1, 4)
        cls = np.clip(p[..., 5 * B:], 0, None)                                     # (N, S, S, C)
        labels = np.broadcast_to(cls.argmax(-1)[..., None], (N, S, S, B)).reshape(N, -1)
        scores = (np.clip(box[..., 4], 0, None) * cls.max(-1)[..., None]).reshape(N, -1)
        return [self.finish(boxes[n], scores[n], labels[n], x.shape[2:]) for n in range(N)]


def _prior(conv, A, C, p=0.01):
    """Small weights, and objectness biases at logit(p): at the start every prediction says "no object" with
    probability 1 - p (the prior of RetinaNet, Lin et al. 2017, §4.1), so the many empty cells do not swamp
    the first steps."""
    nn.init.normal_(conv.weight, std=0.01)
    bias = np.zeros(A * (5 + C), np.float32)
    bias[4::5 + C] = np.log(p / (1 - p))
    conv.bias.data[...] = backend.to_device(bias, conv.bias.device)


# ---- YOLO v2 -------------------------------------------------------------------------------------------------
class YOLOv2(Detector):
    """Darknet-19-style backbone (3 x 3 convs with 1 x 1 reductions, BN, leaky ReLU, max pools) to stride 16, a
    3 x 3 conv, the passthrough layer (§2, "Fine-Grained Features": the stride-8 map, reduced by a 1 x 1 conv,
    turned into 4x the channels at half the resolution by ``pixel_unshuffle`` and concatenated), another 3 x 3
    conv and the detection layer (``YOLOv2Head``): per cell and anchor sigmoid offsets b = sigmoid(t) + c,
    sizes p exp(t), objectness and a softmax over classes.  ``anchors`` (A, 2) pixels: a buffer, set to the
    k-means dimension clusters of the training boxes by ``fit_anchors``."""
    stride = 16

    def __init__(self, num_classes=10, num_anchors=5, anchors=None, width=8):
        super().__init__(num_classes)
        c = width
        self.stage1, c8 = _stack([c, "M", 2 * c, "M", 4 * c, (2 * c, 1), 4 * c, "M", 8 * c, (4 * c, 1), 8 * c], 1)
        self.stage2, c16 = _stack(["M", 16 * c, (8 * c, 1), 16 * c], c8)
        self.conv1 = ConvBNLeaky(c16, 16 * c, 3)
        self.reduce = ConvBNLeaky(c8, 2 * c, 1)                       # passthrough: 2c x 4 channels after reorg
        self.conv2 = ConvBNLeaky(16 * c + 8 * c, 16 * c, 3)
        self.head = YOLOv2Head(16 * c, num_anchors, num_classes)
        self.register_buffer("anchors", np.asarray(anchors if anchors is not None else
                                                   DEFAULT_ANCHORS[::2][:num_anchors], np.float32))
        _init(self)
        _prior(self.head.conv, num_anchors, num_classes)

    def fit_anchors(self, boxes):
        """Set ``anchors`` to YOLOv2's dimension clusters of ``boxes`` (k-means, distance 1 - IoU)."""
        k = F.kmeans_anchors(boxes, self.anchors.shape[0]).astype(np.float32)
        self.anchors.data[...] = backend.to_device(k, self.anchors.device)

    def output(self, x):
        f8 = self.stage1(x)                                           # (N, 8c, H/8, W/8)
        f16 = self.conv1(self.stage2(f8))                             # (N, 16c, H/16, W/16)
        fine = F.pixel_unshuffle(self.reduce(f8), 2)                  # (N, 8c, H/16, W/16)
        return self.head(self.conv2(mc.cat([fine, f16], 1)))         # (N, A (5 + C), H/16, W/16)

    def losses(self, x, targets):
        return {"loss_yolo": yolo_loss(self.output(x), self._anchors(), self.stride, targets)}

    def _anchors(self):
        return np.asarray(backend.to_cpu(self.anchors.data), np.float64)

    def detect(self, x):
        boxes, obj, probs = yolo_decode(self.output(x), self._anchors(), self.stride)
        return [self.finish(b, o * p.max(1), p.argmax(1), x.shape[2:]) for b, o, p in zip(boxes, obj, probs)]


# ---- YOLO v3 -------------------------------------------------------------------------------------------------
class YOLOv3(Detector):
    """Darknet-53-style residual backbone (stride-2 3 x 3 convs and residual blocks) giving stride 8, 16 and 32
    maps; predictions at the three scales (§2.3), the coarser map's features upsampled by 2 and concatenated
    with the finer one; 3 anchors per scale (the 9 k-means clusters by increasing size, the smallest at stride
    8); logistic objectness and one logistic output per class (§2.2).  A box is the responsibility of the
    anchor, among all 9, whose shape fits it best."""
    strides = (8, 16, 32)

    def __init__(self, num_classes=10, anchors=None, width=8, blocks=(1, 1, 2, 2, 1)):
        super().__init__(num_classes)
        c = width
        self.conv1 = ConvBNLeaky(1, c, 3)
        for i, n in enumerate(blocks):
            self.add_module(f"layer{i + 1}", nn.Sequential(ConvBNLeaky(c * 2 ** i, c * 2 ** (i + 1), 3, stride=2),
                                                           *[DarknetResidual(c * 2 ** (i + 1)) for _ in range(n)]))
        c3, c4, c5 = 8 * c, 16 * c, 32 * c                            # channels at stride 8, 16, 32
        D = 3 * (5 + num_classes)
        self.top5 = nn.Sequential(ConvBNLeaky(c5, c4, 1), ConvBNLeaky(c4, c5, 3))
        self.out5 = nn.Conv2d(c5, D, 1)
        self.lat5 = ConvBNLeaky(c5, c3, 1)
        self.top4 = nn.Sequential(ConvBNLeaky(c4 + c3, c3, 1), ConvBNLeaky(c3, c4, 3))
        self.out4 = nn.Conv2d(c4, D, 1)
        self.lat4 = ConvBNLeaky(c4, c3 // 2, 1)
        self.top3 = nn.Sequential(ConvBNLeaky(c3 + c3 // 2, c3 // 2, 1), ConvBNLeaky(c3 // 2, c3, 3))
        self.out3 = nn.Conv2d(c3, D, 1)
        self.register_buffer("anchors", np.asarray(anchors if anchors is not None else DEFAULT_ANCHORS, np.float32))
        _init(self)
        for out in (self.out3, self.out4, self.out5):
            _prior(out, 3, num_classes)

    def fit_anchors(self, boxes):
        """Set the 9 ``anchors`` to the k-means clusters (distance 1 - IoU) of ``boxes``, by increasing area."""
        self.anchors.data[...] = backend.to_device(F.kmeans_anchors(boxes, 9).astype(np.float32), self.anchors.device)

    def outputs(self, x):
        """x -> [(N, 3 (5 + C), H/8, W/8), (..., H/16, W/16), (..., H/32, W/32)]."""
        x = self.layer2(self.layer1(self.conv1(x)))
        c3 = self.layer3(x)
        c4 = self.layer4(c3)
        c5 = self.layer5(c4)
        p5 = self.top5(c5)
        p4 = self.top4(mc.cat([F.interpolate(self.lat5(p5), scale_factor=2), c4], 1))
        p3 = self.top3(mc.cat([F.interpolate(self.lat4(p4), scale_factor=2), c3], 1))
        return [self.out3(p3), self.out4(p4), self.out5(p5)]

    def _anchors(self):
        return np.asarray(backend.to_cpu(self.anchors.data), np.float64).reshape(3, 3, 2)

    def losses(self, x, targets):
        anchors = self._anchors()
        flat = anchors.reshape(9, 2)
        per_scale = [[] for _ in self.strides]
        for gt, lab in targets:
            wh = gt[:, 2:] - gt[:, :2]
            inter = np.minimum(wh[:, None, 0], flat[None, :, 0]) * np.minimum(wh[:, None, 1], flat[None, :, 1])
            best = (inter / (wh.prod(1)[:, None] + flat.prod(1)[None] - inter)).argmax(1) // 3 if len(gt) else \
                np.zeros(0, int)
            for s in range(3):
                per_scale[s].append((gt[best == s], lab[best == s]))
        everything = [gt for gt, _ in targets]
        loss = None
        for s, (out, stride) in enumerate(zip(self.outputs(x), self.strides)):
            term = yolo_loss(out, anchors[s], stride, per_scale[s], ignore_threshold=0.5, logistic=True,
                             ignore_boxes=everything)
            loss = term if loss is None else loss + term
        return {"loss_yolo": loss}

    def detect(self, x):
        anchors, parts = self._anchors(), []
        for s, (out, stride) in enumerate(zip(self.outputs(x), self.strides)):
            parts.append(yolo_decode(out, anchors[s], stride, logistic=True))
        boxes, obj, probs = (np.concatenate([p[k] for p in parts], axis=1) for k in range(3))
        return [self.finish(b, o * p.max(1), p.argmax(1), x.shape[2:]) for b, o, p in zip(boxes, obj, probs)]


def yolo_v1(num_classes=10, **kwargs):
    """YOLO v1 for 96 x 96 images: a 6 x 6 grid, 2 boxes per cell."""
    return YOLOv1(num_classes, **kwargs)


def yolo_v2(num_classes=10, **kwargs):
    """YOLO v2 for MNISTDetection: stride 16 (6 x 6 cells at 96 px), 5 anchors, passthrough from stride 8."""
    return YOLOv2(num_classes, **kwargs)


def yolo_v3(num_classes=10, **kwargs):
    """YOLO v3 for MNISTDetection: predictions at strides 8, 16, 32 with 3 of 9 anchors each."""
    return YOLOv3(num_classes, **kwargs)
