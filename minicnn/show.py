"""Pictures of what a network sees (Zeiler & Fergus 2014; Simonyan, Vedaldi & Zisserman 2014; Selvaraju et al.
2017): ``python -m minicnn show MODEL CKPT [IMAGE] [--out DIR] [--layers NAME ...] [--target CLASS]`` writes

    filters.png       the first convolution's filters, one tile per filter (input channels averaged if not 1 or 3)
    features.png      feature maps of the chosen layers (default: every Conv2d up to 3 of them) for the image
    saliency.png      |d score / d input| (max over channels): which pixels move the class score most
    gradcam.png       Grad-CAM on the last Conv2d (or --gradcam-layer): ReLU(sum_k alpha_k A_k), alpha_k the mean
                      over positions of d score / d A_k, upsampled to the image and laid over it

The score is the logit of ``--target`` (default: the predicted class); for models with per-pixel outputs
(N, K, H, W) its mean over the pixels.  IMAGE defaults to the first test image of the checkpoint's dataset; a
PNG is read in grey or RGB as the model takes, resized to the dataset's size and normalised as in training.
"""
import argparse
import os
import sys

import numpy as np

import minicnn as mc
from minicnn import nn

__all__ = ["first_conv", "conv_layers", "activations", "saliency", "grad_cam", "main"]


def first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def conv_layers(model):
    """(name, module) of every Conv2d, in order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _score(out, target):
    out = out[0] if isinstance(out, (tuple, list)) else out
    if target is None:
        target = int(np.asarray(out.numpy().reshape(out.shape[0], out.shape[1], -1).mean(-1)).argmax(1)[0])
    s = out[:, target]
    return (s.mean() if s.ndim > 1 else s.sum()), target


def activations(model, x, names):
    """{name: (C, H, W) array} of the named modules' outputs for one image x (1, C, H, W)."""
    mods, got = dict(model.named_modules()), {}
    handles = [mods[n].register_forward_hook(lambda m, a, o, n=n: got.__setitem__(n, o.numpy()[0])) for n in names]
    try:
        with mc.no_grad():
            model.eval()(mc.tensor(x))
    finally:
        for h in handles:
            h.remove()
    return got


def saliency(model, x, target=None):
    """(|d score / d x| max over channels (H, W), target class) for x (1, C, H, W) (Simonyan et al. 2014, §3)."""
    model.eval()
    t = mc.tensor(x, requires_grad=True)
    score, target = _score(model(t), target)
    score.backward()
    return np.abs(t.grad.numpy()[0]).max(0), target


def grad_cam(model, x, layer=None, target=None):
    """(Grad-CAM map (H, W) in [0, 1] at the image's size, target class, layer name) (Selvaraju et al. 2017,
    eqs. 1-2).  The layer's output is swapped for a leaf copy by a forward hook, so its gradient is kept."""
    model.eval()
    name = layer or conv_layers(model)[-1][0]
    module, held = dict(model.named_modules())[name], {}

    def hook(m, args, out):
        held["A"] = mc.tensor(out.numpy(), requires_grad=True)
        return held["A"]
    h = module.register_forward_hook(hook)
    try:
        score, target = _score(model(mc.tensor(x)), target)
        score.backward()
    finally:
        h.remove()
    A, g = held["A"].numpy()[0], held["A"].grad.numpy()[0]              # (K, h, w)
    cam = np.maximum((g.mean(axis=(1, 2))[:, None, None] * A).sum(0), 0)
    H, W = x.shape[2:]
    cam = cam[(np.arange(H) * cam.shape[0]) // H][:, (np.arange(W) * cam.shape[1]) // W]   # nearest upsampling
    return cam / cam.max() if cam.max() > 0 else cam, target, name


def _grid(tiles, path, title, cmap="gray", columns=8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = len(tiles)
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(1.2 * cols, 1.2 * rows + 0.4))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < n:
            t = tiles[k]
            t = (t - t.min()) / (t.max() - t.min() + 1e-12)
            ax.imshow(t if t.ndim == 2 else t.transpose(1, 2, 0), cmap=cmap)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, format="png", dpi=90)


def _overlay(path, image, heat, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    img = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    img = (img - img.min()) / (img.max() - img.min() + 1e-12)
    fig = Figure(figsize=(7, 2.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    axes[0].imshow(img, cmap="gray")
    axes[1].imshow(heat, cmap="jet")
    axes[2].imshow(img, cmap="gray")
    axes[2].imshow(heat, cmap="jet", alpha=0.5)
    for ax, t in zip(axes, ("image", title, "overlay")):
        ax.set_title(t, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)


def _image(args, cfg, task, in_channels):
    """(1, C, H, W) float32 as the model takes it, and a caption."""
    _, test, _ = task.build_datasets(dict(cfg, limit_train=1, limit_test=1))
    x0 = test.get_batch(np.array([0]))[0] if hasattr(test, "get_batch") else np.asarray(test[0][0])[None]
    if args.image is None:
        return np.asarray(x0, np.float32), "first test image"
    from minicnn.style import read_image
    x = read_image(args.image, tuple(x0.shape[2:]), channels=in_channels)[None]
    mean_std = getattr(task, "normalization", lambda cfg: None)(cfg)
    if mean_std is None and task.name == "classification":
        from minicnn.tasks.classification import DATASETS
        mean_std = DATASETS[cfg["dataset"]][1:3]
    if mean_std is not None:
        m, s = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in mean_std)
        x = (x - m) / s
    return x.astype(np.float32), os.path.basename(args.image)


def main(argv=None):
    from minicnn import train as T
    from minicnn.tasks import task_for
    p = argparse.ArgumentParser(prog="python -m minicnn show", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("image", nargs="?", help="a PNG (default: the first test image)")
    p.add_argument("--out", default=None, help="folder for the PNGs (default: the checkpoint's folder)")
    p.add_argument("--layers", nargs="*", help="modules whose feature maps to draw (names as in state_dict)")
    p.add_argument("--gradcam-layer", help="module for Grad-CAM (default: the last Conv2d)")
    p.add_argument("--target", type=int, help="class whose score is explained (default: the predicted one)")
    p.add_argument("--dataset", help="dataset of the model (default: the checkpoint's)")
    args = p.parse_args(argv)
    state = mc.load(args.checkpoint)
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    cfg = dict(T.config_for(args.model), **{k: v for k, v in saved.items() if k in ("dataset", "data")})
    if args.dataset:
        cfg["dataset"] = args.dataset
    task = task_for(cfg["dataset"], args.model.lower())
    _, _, num_classes = task.build_datasets(dict(cfg, limit_train=1, limit_test=1))
    model = T.build_model(args.model, num_classes)
    model.load_state_dict(state["model"] if isinstance(state.get("model"), dict) else state)
    model.eval()
    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    os.makedirs(out, exist_ok=True)
    conv = first_conv(model)
    x, caption = _image(args, cfg, task, conv.in_channels)

    w = conv.weight.numpy()
    tiles = [f if f.shape[0] == 3 else f.mean(0) for f in w]
    _grid(tiles, os.path.join(out, "filters.png"), f"first convolution: {w.shape[0]} filters {w.shape[2]}x{w.shape[3]}")
    names = args.layers or [n for n, _ in conv_layers(model)][:3]
    acts = activations(model, x, names)
    tiles = [a for n in names for a in acts[n][:16]]
    _grid(tiles, os.path.join(out, "features.png"), f"feature maps (first 16 channels) of {', '.join(names)}")
    written = ["filters.png", "features.png"]
    if task.name != "embedding":
        sal, target = saliency(model, x, args.target)
        _overlay(os.path.join(out, "saliency.png"), x[0], sal, f"saliency, class {target}")
        cam, target, layer = grad_cam(model, x, args.gradcam_layer, args.target)
        _overlay(os.path.join(out, "gradcam.png"), x[0], cam, f"Grad-CAM ({layer}), class {target}")
        written += ["saliency.png", "gradcam.png"]
    print(f"{args.model} on {caption}: wrote {', '.join(os.path.join(out, f) for f in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
