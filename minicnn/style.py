"""Neural style transfer (Gatys, Ecker & Bethge 2016): optimise an image so that its features match a content
image's on one layer and its Gram matrices match a style image's on several.

    content cost  J_c = 1/2 sum (F_l(x) - F_l(c))^2                                  (eq. 1, one layer l)
    style cost    J_s = sum_l w_l E_l,  E_l = 1 / (4 C_l^2 M_l^2) sum (G_l(x) - G_l(s))^2       (eqs. 4-5)
    total         J = alpha J_c + beta J_s,  G_l = F_l F_l^T (C_l channels, M_l = H_l W_l positions)

``python -m minicnn style CONTENT.png STYLE.png --out OUT.png [--steps N] [--weights CKPT] [--net vgg19]``.
With ``--weights`` (a ``vgg16``/``vgg19`` state dict converted from torchvision, see
``examples/convert_torch_weights.py``) the features are the paper's (VGG-19: content conv4_2, style conv1_1 ...
conv5_1).  Without ImageNet weights (none can be downloaded here) the default ``--net random`` uses a small
VGG-style network with random He-initialised weights: random multi-scale convolutional features are known to
capture texture (Ustyuzhaninov et al. 2017; He, Wang & Hopcroft 2016), so the result takes the style image's
colours and local texture, while objects and strokes of the style are not reproduced as a trained VGG would.
The image is optimised on its pixels (clipped to [0, 1]) with Adam or, as in the paper, L-BFGS (``optim.LBFGS``).
"""
import argparse
import sys

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim
from minicnn.models._input import IMAGENET_STATS, Normalize
from minicnn.models.vgg import cfgs

__all__ = ["StyleFeatures", "style_features", "content_cost", "style_cost", "transfer", "read_image",
           "write_image", "main"]

RANDOM_CFG = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256]          # conv1_1 ... conv4_2, random weights
PAPER_LAYERS = dict(content="conv4_2", style=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"))
RANDOM_LAYERS = dict(content="conv4_2", style=("conv1_1", "conv2_1", "conv3_1", "conv4_1"))


class StyleFeatures(nn.Module):
    """A VGG-style ``features`` Sequential (keys ``features.N`` as torchvision's) that returns the activations
    (after ReLU) of the named layers convB_I (block B, convolution I).  Input (N, 3, H, W) in [0, 1]."""
    def __init__(self, cfg, layers):
        super().__init__()
        self.normalize = Normalize(*IMAGENET_STATS)
        mods, names, c, block, i = [], {}, 3, 1, 0
        for v in cfg:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
                block, i = block + 1, 0
                continue
            i += 1
            mods += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            names[len(mods) - 1] = f"conv{block}_{i}"                  # the ReLU after convB_I
            c = v
        last = max(k for k, n in names.items() if n in layers)
        self.features = nn.Sequential(*mods[:last + 1])
        self.names = {k: n for k, n in names.items() if k <= last}
        self.layers = tuple(layers)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        out, x = {}, self.normalize(x)
        for k, layer in enumerate(self.features):
            x = layer(x)
            if self.names.get(k) in self.layers:
                out[self.names[k]] = x
        return out


def style_features(net="random", weights=None):
    """The feature network: ``"random"`` (RANDOM_CFG, random weights) or ``"vgg16"`` / ``"vgg19"`` (weights from
    the state-dict file ``weights``, keys ``features.N.weight`` as torchvision's), with its default layers."""
    if net == "random":
        model, layers = StyleFeatures(RANDOM_CFG, [RANDOM_LAYERS["content"], *RANDOM_LAYERS["style"]]), RANDOM_LAYERS
    elif net in ("vgg16", "vgg19"):
        model = StyleFeatures(cfgs["D" if net == "vgg16" else "E"], [PAPER_LAYERS["content"], *PAPER_LAYERS["style"]])
        layers = PAPER_LAYERS
    else:
        raise ValueError(f"style: net must be 'random', 'vgg16' or 'vgg19', got {net!r}")
    if weights is not None:
        state = mc.load(weights)
        state = state["model"] if isinstance(state.get("model"), dict) else state
        mine = model.state_dict()
        missing = [k for k in mine if k not in state]
        if missing:
            raise ValueError(f"style: {weights} lacks {missing[:3]}... (expected a {net} state dict with "
                             f"torchvision's features.N keys)")
        model.load_state_dict({k: state[k] for k in mine})
    elif net != "random":
        print(f"warning: {net} without --weights has random weights", file=sys.stderr)
    model.eval()
    for p in model.parameters():
        p.requires_grad = False
    return model, layers


def content_cost(a, b):
    """1/2 sum (a - b)^2 over one layer's activations (Gatys et al. eq. 1)."""
    d = a - b
    return (d * d).sum() * 0.5


def style_cost(feats, targets, weights):
    """sum_l w_l / 4 sum (Ĝ_l(x) - Ĝ_l(s))^2 with Ĝ = G / (C M) (normalised Gram), which is eq. 4's
    E_l = 1 / (4 C^2 M^2) sum (G - A)^2."""
    total = None
    for name, w in weights.items():
        d = F.gram_matrix(feats[name]) - targets[name]
        term = (d * d).sum() * (0.25 * w)
        total = term if total is None else total + term
    return total


def transfer(content, style, net="random", weights=None, steps=200, lr=None, alpha=1.0, beta=1e4,
             style_weights=None, init="content", log=None, seed=0, optimizer="adam"):
    """Images (3, H, W) float in [0, 1] -> (result (3, H, W), list of total costs per step).  ``init``
    'content' starts from the content image, 'noise' from uniform noise.  ``optimizer`` 'adam' (lr default 0.02)
    or 'lbfgs' (as Gatys et al.; lr default 1, one L-BFGS iteration and one evaluation per step)."""
    mc.manual_seed(seed)
    model, layers = style_features(net, weights)
    sw = style_weights or {name: 1.0 / len(layers["style"]) for name in layers["style"]}
    with mc.no_grad():
        c_feat = model(mc.tensor(content[None]))[layers["content"]]
        s_all = model(mc.tensor(style[None]))
        s_gram = {n: F.gram_matrix(s_all[n]) for n in sw}
    start = content if init == "content" else np.random.default_rng(seed).random(content.shape)
    x = mc.tensor(start[None].astype(np.float32), requires_grad=True)
    if optimizer == "adam":
        opt = optim.Adam([x], lr=0.02 if lr is None else lr)
    elif optimizer == "lbfgs":
        opt = optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=1, history_size=20)
    else:
        raise ValueError(f"style transfer: optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")

    def closure():
        feats = model(x)
        loss = alpha * content_cost(feats[layers["content"]], c_feat) + beta * style_cost(feats, s_gram, sw)
        opt.zero_grad()
        loss.backward()
        return loss
    history = []
    for step in range(steps):
        history.append(opt.step(closure).item())                  # the cost before this step's update
        x.data[...] = np.clip(x.data, 0, 1)
        if log and (step % 20 == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps}  cost {history[-1]:.4g}")
    return x.numpy()[0], history


def read_image(path, size=None, channels=3):
    """A PNG/JPEG as float32 (channels, H, W) in [0, 1]; ``size`` (H, W) or an int (the longer side) resizes
    (bilinear, via Pillow, which matplotlib already requires)."""
    from PIL import Image
    img = Image.open(path).convert("RGB" if channels == 3 else "L")
    if size is not None:
        if isinstance(size, int):
            scale = size / max(img.size)
            size = (max(1, round(img.size[1] * scale)), max(1, round(img.size[0] * scale)))
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    a = np.asarray(img, np.float32) / 255
    return a.transpose(2, 0, 1) if a.ndim == 3 else a[None]


def write_image(path, x):
    """(C, H, W) in [0, 1] -> PNG."""
    from PIL import Image
    a = (np.clip(np.asarray(x), 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)).save(path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn style", description="neural style transfer (Gatys et al.)")
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--size", type=int, default=128, help="longer side of the content image, pixels (default 128)")
    p.add_argument("--net", choices=["random", "vgg16", "vgg19"], default=None,
                   help="feature network (default: random; vgg19 when --weights is given)")
    p.add_argument("--weights", metavar="CKPT", help="a converted vgg16/vgg19 state dict (.npz)")
    p.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    p.add_argument("--lr", type=float, default=None, help="default 0.02 for adam, 1 for lbfgs")
    p.add_argument("--style-weight", type=float, default=1e4, help="beta (alpha, the content weight, is 1)")
    p.add_argument("--init", choices=["content", "noise"], default="content")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    net = args.net or ("vgg19" if args.weights else "random")
    content = read_image(args.content, args.size)
    style = read_image(args.style, tuple(content.shape[1:]))
    out, history = transfer(content, style, net, args.weights, args.steps, args.lr, beta=args.style_weight,
                            init=args.init, log=print, seed=args.seed, optimizer=args.optimizer)
    write_image(args.out, out)
    print(f"wrote {args.out}: cost {history[0]:.4g} -> {history[-1]:.4g} in {len(history)} steps ({net} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
