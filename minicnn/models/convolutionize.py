"""``convolutionize(layers, input_size)``: a classifier made of convolutions followed by fully connected layers,
rewritten as a fully convolutional network (Long, Shelhamer & Darrell 2015, §3.1; Sermanet et al. 2014, OverFeat).

A Linear layer that reads a C x H x W map is a convolution with an H x W kernel and ``out_features`` filters; a
Linear layer after it is a 1 x 1 convolution.  Slid over a larger input, the network then produces a map of
predictions, one per crop of the original input size, the crops ``stride`` pixels apart (the product of the
strides before the first Linear).  Linear weights are copied into new convolutions; the other layers are shared.
"""
import numpy as np

import minicnn.nn as nn

__all__ = ["convolutionize"]


def convolutionize(layers, input_size):
    """``layers``: a Sequential or list of modules applied in order to (N, *input_size), e.g.
    ``[*alexnet.features, alexnet.avgpool, nn.Flatten(), *alexnet.classifier]``.  Returns an ``nn.Sequential``
    in which Flatten is gone, each Linear is a new Conv2d holding a copy of its weights, an AdaptiveAvgPool2d is
    the fixed pooling it performs at ``input_size``, and every other layer is the same module (shared).

    For input (N, C, H + s*i, W + s*j) the result gives (N, out, i + 1, j + 1), position (i, j) equal to
    ``layers`` run on the crop at (s*i, s*j), s = the result's ``stride`` attribute.  Exactly so when the layers
    before the first Linear do not pad; with padding, positions whose window reaches a crop's border see the
    neighbouring pixels instead of the crop's zero padding (what a fully convolutional network computes)."""
    import minicnn as mc
    C, H, W = input_size
    x = mc.tensor(np.zeros((1, C, H, W)))                   # traces the map's shape through the layers
    out, flat, stride = [], False, 1
    with mc.no_grad():
        for i, m in enumerate(layers):
            if isinstance(m, nn.Flatten):                   # the map stays a map
                flat = True
                continue
            if isinstance(m, nn.Linear):
                m = _linear_as_conv(m, x.shape, i)
                flat = True
            elif flat and not isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Dropout, nn.Identity)):
                raise ValueError(f"convolutionize: layer {i} ({type(m).__name__}) follows a flattened map; only "
                                 f"Linear layers, activations and dropout can (they act on each position alike)")
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                m = _fixed_pool(m, x.shape, i)
            if not flat:
                stride *= _stride(m)
            out.append(m)
            x = m(x)
    seq = nn.Sequential(*out)
    seq.stride = stride
    return seq


def _linear_as_conv(m, shape, i):
    """Linear (out, C*H*W) reading an (N, C, H, W) map -> Conv2d(C, out, (H, W)), the weights reshaped in
    Flatten's (C, H, W) order; after the first Linear the map is (N, out, 1, 1) and the next one is 1 x 1."""
    _, C, H, W = shape
    if C * H * W != m.in_features:
        raise ValueError(f"convolutionize: layer {i} is Linear({m.in_features}, {m.out_features}) but its input "
                         f"is {C}x{H}x{W} = {C * H * W} values")
    conv = nn.Conv2d(C, m.out_features, (H, W), bias=m.bias is not None)
    conv.weight.data = m.weight.data.reshape(m.out_features, C, H, W).copy()
    if m.bias is not None:
        conv.bias.data = m.bias.data.copy()
    return conv.to(m.weight.device).train(m.training)


def _fixed_pool(m, shape, i):
    """AdaptiveAvgPool2d at ``shape`` -> the AvgPool2d (or Identity) that does the same there and slides over a
    larger input instead of squeezing it."""
    H, W = shape[2:]
    oh, ow = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size, m.output_size)
    oh, ow = oh or H, ow or W
    if H % oh or W % ow:
        raise ValueError(f"convolutionize: layer {i} pools {H}x{W} adaptively to {oh}x{ow}, which is not a "
                         f"fixed pooling (sizes must divide)")
    if (oh, ow) == (H, W):
        return nn.Identity()
    return nn.AvgPool2d((H // oh, W // ow), stride=(H // oh, W // ow))


def _stride(m):
    """How far one output position moves the input window."""
    s = getattr(m, "stride", 1)
    if s is None:                                   # pools default stride = kernel_size
        s = m.kernel_size
    s = s if isinstance(s, (tuple, list)) else (s, s)
    if s[0] != s[1]:
        raise ValueError(f"convolutionize: unequal strides {s} in {type(m).__name__} are not supported")
    return int(s[0])
