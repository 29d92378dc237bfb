"""``summary(model, input_size)``: a table of a model's layers (name, output shape, parameters, multiply-adds)
with totals, and ``python -m minicnn summary MODEL``.

It runs one forward pass on a batch of one (zeros, under ``no_grad`` and in eval mode, restored afterwards) and
records each leaf module's output through a forward hook.  Multiply-adds are counted the way the papers count
them: those of convolutions (output elements x in_channels / groups x KH x KW; a depthwise conv is one filter
per channel), transposed convolutions and linear layers, biases excluded.  BatchNorm, pooling, activations and
additions count as 0.  All figures are per image.
"""
import argparse
from collections import namedtuple

import numpy as np

__all__ = ["summary", "ModelSummary", "LayerInfo", "mult_adds", "main"]

LayerInfo = namedtuple("LayerInfo", ["name", "type", "output_shape", "params", "mult_adds"])

# the input each factory was designed for, (C, H, W); everything else takes (3, 224, 224)
NATIVE_INPUT = {"lenet5": (1, 28, 28), "alexnet_paper": (3, 227, 227), "nin_cifar": (3, 32, 32),
                "darknet53": (3, 256, 256), "resnet20": (3, 32, 32), "resnet32": (3, 32, 32),
                "resnet44": (3, 32, 32), "resnet56": (3, 32, 32), "resnet110": (3, 32, 32),
                "preact_resnet110": (3, 32, 32), "preact_resnet164": (3, 32, 32),
                "inception_v2": (3, 299, 299), "inception_v3": (3, 299, 299), "inception_v4": (3, 299, 299),
                "inception_resnet_v1": (3, 299, 299), "inception_resnet_v2": (3, 299, 299),
                "xception": (3, 299, 299), "efficientnet_b1": (3, 240, 240), "efficientnet_b2": (3, 260, 260),
                "efficientnet_b3": (3, 300, 300), "efficientnet_b4": (3, 380, 380),
                "efficientnet_b5": (3, 456, 456), "efficientnet_b6": (3, 528, 528),
                "efficientnet_b7": (3, 600, 600)}


def mult_adds(module, inputs, output):
    """Multiply-adds of one call of a leaf module (0 for layers without a weight product)."""
    from minicnn import nn
    if isinstance(module, nn.Conv2d):
        KH, KW = module.weight.shape[2:]
        return int(np.prod(output.shape)) * (module.in_channels // module.groups) * KH * KW
    transposed = getattr(nn, "ConvTranspose2d", None)
    if transposed is not None and isinstance(module, transposed):
        KH, KW = module.weight.shape[2:]                     # every input pixel scatters a KH x KW patch
        return int(np.prod(inputs[0].shape)) * (module.out_channels // module.groups) * KH * KW
    if isinstance(module, nn.Linear):
        return int(np.prod(output.shape)) * module.in_features
    return 0


class ModelSummary:
    """The result of ``summary``: ``rows`` (LayerInfo per leaf call, in execution order), ``total_params``,
    ``trainable_params``, ``total_mult_adds``; ``str()`` gives the table."""
    def __init__(self, model, input_size, rows):
        params = list(model.parameters())
        self.input_size, self.rows = tuple(input_size), rows
        self.total_params = sum(p.numel() for p in params)
        self.trainable_params = sum(p.numel() for p in params if p.requires_grad)
        self.total_mult_adds = sum(r.mult_adds for r in rows)
        self.model_name = type(model).__name__

    def __str__(self):
        width = max([len(f"{r.name} ({r.type})") for r in self.rows] + [20]) + 2
        rule = "=" * (width + 58)
        lines = [rule, f"{'Layer (type)':<{width}}{'Output shape':<26}{'Param #':>14}{'Mult-adds':>18}", rule]
        for r in self.rows:
            lines.append(f"{r.name + ' (' + r.type + ')':<{width}}{_shape(r.output_shape):<26}"
                         f"{r.params:>14,}{r.mult_adds:>18,}")
        frozen = self.total_params - self.trainable_params
        lines += [rule,
                  f"{self.model_name}, input {_shape(self.input_size)} (per image)",
                  f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Non-trainable params: {frozen:,}",
                  f"Total mult-adds: {self.total_mult_adds:,} ({_si(self.total_mult_adds)})",
                  "(mult-adds of conv and linear layers only; BatchNorm, pooling and activations count as 0)",
                  rule]
        return "\n".join(lines)

    __repr__ = __str__


def summary(model, input_size, dtype=np.float32, device="cpu"):
    """Table of ``model``'s leaf layers for one input of shape ``input_size`` (no batch dimension, e.g.
    (3, 224, 224)); returns a ModelSummary (``print`` it).  Parameters of layers the forward never calls (the
    auxiliary heads of GoogLeNet in eval mode) are in the totals but not in the rows."""
    import minicnn as mc
    input_size = tuple(int(s) for s in input_size)
    if not input_size or min(input_size) < 1:
        raise ValueError(f"summary: input_size must be positive sizes without the batch, got {input_size}")
    rows, seen, handles = [], set(), []

    def hook(module, inputs, output):
        name = names[id(module)]
        own = 0 if id(module) in seen else sum(p.numel() for p in module.parameters(recurse=False))
        seen.add(id(module))
        shape = [o.shape for o in output] if isinstance(output, (tuple, list)) else output.shape
        rows.append(LayerInfo(name, type(module).__name__, shape, own, mult_adds(module, inputs, output)))

    names = {id(m): n or type(m).__name__ for n, m in model.named_modules()}
    for m in model.modules():
        if not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(hook))
    modes = [(m, m.training) for m in model.modules()]
    x = mc.tensor(np.zeros((1,) + input_size), dtype=dtype, device=device)
    try:
        model.eval()
        with mc.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:                               # each module's own mode, as it was
            object.__setattr__(m, "training", mode)
    return ModelSummary(model, input_size, rows)


def _shape(s):
    if isinstance(s, list):
        return ", ".join(_shape(t) for t in s)
    return "[" + ", ".join(str(d) for d in s) + "]"


def _si(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def main(argv=None):
    """``python -m minicnn summary MODEL [--input-size C H W] [--num-classes K]``: print the table."""
    from minicnn import models
    p = argparse.ArgumentParser(prog="python -m minicnn summary", description=main.__doc__)
    p.add_argument("model", help="one of: " + ", ".join(models.list_models()))
    p.add_argument("--input-size", type=int, nargs="+", default=None,
                   help="C H W of one input (default: the model's native size, e.g. 3 224 224)")
    p.add_argument("--num-classes", type=int, default=None)
    args = p.parse_args(argv)
    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    try:
        model = models.get_model(args.model, **kwargs)
    except ValueError as e:
        p.error(str(e))
    size = args.input_size or NATIVE_INPUT.get(args.model.lower().replace("-", "_"), (3, 224, 224))
    print(summary(model, size))
    return 0
