"""YOLO v1, v2, v3: the v1 loss against a loop-by-loop reference and gradchecked, the v3 logistic loss
gradchecked, k-means anchors kept as buffers, and each detector overfitting one batch."""
import numpy as np
import pytest

import minicnn as mc
from detector_checks import TINY, overfit, small_batch
from minicnn.models import get_model, yolo_loss
from minicnn.models.yolo import yolo_v1_loss, yolo_v1_targets


def v1_loss_ref(p, targets, S, B, C, size, lc=5.0, ln=0.5):
    """Eq. 3, loop by loop, straight from the paper's description."""
    total, cell = 0.0, size / S
    for n, (gt, lab) in enumerate(targets):
        owner = {}
        for g, c in zip(gt, lab):
            cx, cy = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2
            key = (min(int(cy // cell), S - 1), min(int(cx // cell), S - 1))
            owner.setdefault(key, (g, c))                         # the first object of a cell keeps it
        for i in range(S):
            for j in range(S):
                v = p[n, i, j]
                if (i, j) not in owner:
                    total += ln * sum(v[5 * b + 4] ** 2 for b in range(B))
                    continue
                g, c = owner[(i, j)]
                x, y = (g[0] + g[2]) / 2 / cell - j, (g[1] + g[3]) / 2 / cell - i
                w, h = (g[2] - g[0]) / size, (g[3] - g[1]) / size
                ious = []
                for b in range(B):                                  # IoU in pixels, centre +- half size
                    px, py = (v[5 * b] + j) * cell, (v[5 * b + 1] + i) * cell
                    pw, ph = v[5 * b + 2] ** 2 * size, v[5 * b + 3] ** 2 * size
                    ix = max(0, min(px + pw / 2, g[2]) - max(px - pw / 2, g[0]))
                    iy = max(0, min(py + ph / 2, g[3]) - max(py - ph / 2, g[1]))
                    ious.append(ix * iy / (pw * ph + w * h * size * size - ix * iy))
                r = int(np.argmax(ious))
                for b in range(B):
                    if b != r:
                        total += ln * v[5 * b + 4] ** 2
                q = v[5 * r:5 * r + 5]
                total += lc * ((q[0] - x) ** 2 + (q[1] - y) ** 2 + (q[2] - np.sqrt(w)) ** 2 + (q[3] - np.sqrt(h)) ** 2)
                total += (q[4] - ious[r]) ** 2
                total += sum((v[5 * B + k] - (k == c)) ** 2 for k in range(C))
    return total / len(targets)


def v1_case(seed=0):
    rng = np.random.default_rng(seed)
    S, B, C, size = 3, 2, 4, 48
    p = rng.uniform(0.2, 0.8, (2, S, S, 5 * B + C))
    targets = [(np.array([[4.0, 6, 20, 30], [30, 28, 44, 46], [8, 5, 18, 33]]), np.array([1, 3, 2])),
               (np.zeros((0, 4)), np.zeros(0, np.int64))]
    return p, targets, S, B, C, size


def test_yolo_v1_loss_matches_the_paper_loop_by_loop():
    p, targets, S, B, C, size = v1_case()
    t = yolo_v1_targets(p, targets, S, B, C, size)
    assert t["obj"].sum() == 2 and t["cell"].sum() == 2            # two of three objects: one cell is shared
    got = sum(v.item() for v in yolo_v1_loss(mc.tensor(p, dtype=np.float64), t, B).values())
    assert got == pytest.approx(v1_loss_ref(p, targets, S, B, C, size), rel=1e-10)


def test_yolo_v1_loss_gradcheck():
    p, targets, S, B, C, size = v1_case(1)
    t = yolo_v1_targets(p, targets, S, B, C, size)              # the assignment is fixed: the loss is smooth
    mc.gradcheck(lambda q: sum(yolo_v1_loss(q, t, B).values(), mc.tensor(0.0, dtype=np.float64)), [p])


def test_yolo_v3_logistic_loss_gradcheck_and_ignore_boxes():
    rng = np.random.default_rng(2)
    anchors, stride = np.array([[8.0, 12], [16, 20]]), 8
    targets = [(np.array([[2.0, 3, 12, 17]]), np.array([1]))]
    out = rng.standard_normal((1, 2 * 8, 3, 3))
    mc.gradcheck(lambda o: yolo_loss(o, anchors, stride, targets, logistic=True), [out])
    # with no box of its own, this scale still ignores predictions overlapping another scale's box
    o = mc.tensor(out, dtype=np.float64)
    none = [(np.zeros((0, 4)), np.zeros(0, np.int64))]
    alone = yolo_loss(o, anchors, stride, none, logistic=True).item()
    near = yolo_loss(o, anchors, stride, none, logistic=True, ignore_boxes=[np.array([[0.0, 0, 24, 24]])],
                     ignore_threshold=0.0).item()
    assert near < alone


@pytest.mark.parametrize("name", ["yolo_v2", "yolo_v3"])
def test_kmeans_anchors_are_buffers_restored_from_a_checkpoint(name, tmp_path):
    model = get_model(name, num_classes=10, **TINY[name])
    x, targets = small_batch()
    boxes = np.concatenate([targets[0]["boxes"]] * 6) * np.repeat(np.linspace(0.8, 1.2, 6), 2)[:, None]
    model.fit_anchors(boxes)
    A = model.anchors.shape[0]
    np.testing.assert_allclose(model.anchors.numpy(), mc.functional.kmeans_anchors(boxes, A), rtol=1e-6)
    mc.save({"model": model.state_dict()}, str(tmp_path / "ckpt.npz"))
    fresh = get_model(name, num_classes=10, **TINY[name])
    assert not np.allclose(fresh.anchors.numpy(), model.anchors.numpy())
    fresh.load_state_dict(mc.load(str(tmp_path / "ckpt.npz"))["model"])
    np.testing.assert_array_equal(fresh.anchors.numpy(), model.anchors.numpy())
    a, b = model.eval()(x), fresh.eval()(x)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p["boxes"], q["boxes"])


@pytest.mark.parametrize("name, steps", [("yolo_v1", 300), ("yolo_v2", 50), ("yolo_v3", 40)])
def test_yolo_overfits_one_batch(name, steps):
    overfit(name, steps)
