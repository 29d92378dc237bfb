"""Every detector keeps torchvision's contract: losses in training, detections in eval, empty canvases in both,
clear errors for bad targets, and the same forward on the (simulated) cuda device as on the CPU."""
import numpy as np
import pytest

import minicnn as mc
from detector_checks import NAMES, TINY, small_batch, total
from minicnn.models import get_model

EMPTY = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}


@pytest.mark.parametrize("name", NAMES)
def test_losses_in_training_detections_in_eval(name):
    model = get_model(name, num_classes=10, **TINY[name])
    x, targets = small_batch()
    losses = model(x, targets)
    assert isinstance(losses, dict) and losses and all(k.startswith("loss") for k in losses)
    assert all(v.shape == () and np.isfinite(v.item()) for v in losses.values())
    total(losses).backward()
    assert all(p.grad is not None for p in model.parameters())
    preds = model.eval()(mc.tensor(x))
    assert len(preds) == 2
    for p in preds:
        assert set(p) == {"boxes", "scores", "labels"} and p["boxes"].dtype == np.float32
        K = len(p["scores"])
        assert p["boxes"].shape == (K, 4) and p["labels"].dtype == np.int64 and K <= model.detections_per_img
        assert (p["boxes"] >= 0).all() and (p["boxes"] <= 64).all() and (np.diff(p["scores"]) <= 0).all()
        assert ((p["labels"] >= 0) & (p["labels"] < 10)).all() and (p["scores"] > model.score_thresh).all()


@pytest.mark.parametrize("name", NAMES)
def test_images_without_objects(name):
    model = get_model(name, num_classes=10, **TINY[name])
    x = np.zeros((2, 1, 64, 64), np.float32)
    losses = model(x, [EMPTY, EMPTY])
    loss = total(losses)
    assert np.isfinite(loss.item())
    if name != "fast_rcnn":                                        # its proposals come from ink: none here
        assert loss.item() > 0                                     # "nothing here" is still learned
    loss.backward()
    assert len(model.eval()(x)) == 2


@pytest.mark.parametrize("name", ["yolo_v2", "faster_rcnn"])
def test_bad_targets_get_clear_errors(name):
    model = get_model(name, num_classes=10, **TINY[name])
    x = np.zeros((1, 1, 64, 64), np.float32)
    cls = type(model).__name__
    bad = [({"boxes": np.array([[10.0, 5, 4, 20]]), "labels": np.array([1])},
            rf"{cls}: target 0: box 0 = \[10.0, 5.0, 4.0, 20.0\] needs x2 > x1 and y2 > y1"),
           ({"boxes": np.array([[1.0, 1, 4, 4]]), "labels": np.array([10])},
            rf"{cls}: target 0: labels must be in \[0, 10\), got \[10\]"),
           ({"boxes": np.array([1.0, 1, 4, 4]), "labels": np.array([1])},
            rf"{cls}: target 0: boxes must have shape \(G, 4\), got \(4,\)"),
           ({"boxes": np.array([[1.0, 1, 4, 4]]), "labels": np.array([1, 2])},
            rf"{cls}: target 0: labels must be \(1,\) integers"),
           ({"boxes": np.array([[1.0, 1, 4, 4]])}, rf"{cls}: target 0 must be a dict with 'boxes' and 'labels'")]
    for target, message in bad:
        with pytest.raises(ValueError, match=message):
            model(x, [target])
    with pytest.raises(ValueError, match=rf"{cls}: targets must be a list of 1 dicts \(one per image\), got 2"):
        model(x, [EMPTY, EMPTY])
    with pytest.raises(ValueError, match=rf"{cls}: training mode needs targets"):
        model(x)
    with pytest.raises(ValueError, match=rf"{cls}: images must be \(N, 1, H, W\)"):
        model.eval()(np.zeros((1, 3, 64, 64), np.float32))


@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("name", ["yolo_v2", "faster_rcnn"])
@pytest.mark.skipif(not mc.cuda_available(), reason="needs a GPU, or NUMBA_ENABLE_CUDASIM=1 for the simulator")
def test_forward_on_cuda_equals_cpu(name, device):
    kw = dict(TINY[name], width=2)
    if name == "faster_rcnn":                                      # few boxes: the simulator runs NMS pair by pair
        kw.update(pre_nms_top_n=(40, 40), post_nms_top_n=(12, 12), rois_per_image=8)
    cpu = get_model(name, num_classes=10, **kw)
    gpu = get_model(name, num_classes=10, **kw)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to(device)
    x, targets = small_batch(n=1)
    mc.manual_seed(1)                                              # the same RoI / anchor samples on both
    a = {k: v.item() for k, v in cpu(x, targets).items()}
    mc.manual_seed(1)
    b = {k: v.item() for k, v in gpu(mc.tensor(x).to(device), targets).items()}
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-4), k
    p, q = cpu.eval()(x)[0], gpu.eval()(mc.tensor(x).to(device))[0]
    np.testing.assert_allclose(q["scores"], p["scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(q["boxes"], p["boxes"], rtol=1e-4, atol=1e-3)
