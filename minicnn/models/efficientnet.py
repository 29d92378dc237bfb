"""EfficientNet-B0 ... B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks").

B0 (Table 1) is a stack of MBConv blocks: MobileNetV2's inverted residual with a k x k depthwise convolution,
squeeze-and-excitation on the expanded channels (squeezed to a quarter of the block's *input* width), SiLU
("Swish") activations, and stochastic depth on the residual branch (the drop probability growing linearly with
depth up to ``stochastic_depth_prob``).  Compound scaling (§3.3, eq. 3) grows depth by alpha^phi, width by
beta^phi and resolution by gamma^phi with alpha = 1.2, beta = 1.1, gamma = 1.15; the released B1-B7 round these to
the (width, depth, resolution, dropout) of ``SCALING`` below.  Widths are rounded to multiples of 8, depths up.

Keys and counts are torchvision's: ``features.0.0.weight``, ``features.1.0.block.0.0.weight`` (depthwise),
``features.1.0.block.1.fc1.weight`` (SE), ... ``features.8``, ``classifier.1.weight``; B0 5,288,548 parameters,
B7 66,347,960.
"""
import math

import minicnn.nn as nn
from minicnn.models.mobilenetv2 import ConvBNActivation, make_divisible

__all__ = ["EfficientNet", "MBConv", "SCALING", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
           "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"]

# Table 1 (B0), stages 2-8: expand ratio, kernel, stride, input channels, output channels, layers
STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

# width multiplier, depth multiplier, input resolution, dropout before the classifier
SCALING = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
           "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
           "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}


class MBConv(nn.Module):
    """1x1 expand (SiLU; none when the ratio is 1) -> k x k/s depthwise (SiLU) -> squeeze-excitation -> 1x1
    project (linear), plus the input (after stochastic depth) when s = 1 and in = out."""
    def __init__(self, in_channels, out_channels, expand_ratio, kernel_size, stride, sd_prob,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden = make_divisible(in_channels * expand_ratio)
        cba = lambda *a, **k: ConvBNActivation(*a, **k, norm_layer=norm_layer)        # noqa: E731
        layers = [cba(in_channels, hidden, 1, activation=nn.SiLU)] if hidden != in_channels else []
        layers += [cba(hidden, hidden, kernel_size, stride, groups=hidden, activation=nn.SiLU),
                   nn.SqueezeExcitation(hidden, max(1, in_channels // 4), activation=nn.SiLU),
                   cba(hidden, out_channels, 1, activation=None)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(sd_prob, "row")
        self.out_channels = out_channels

    def forward(self, x):
        y = self.block(x)
        return x + self.stochastic_depth(y) if self.use_res_connect else y


class EfficientNet(nn.Module):
    """x (N, 3, R, R) -> logits (N, num_classes), R the resolution of ``SCALING``."""
    def __init__(self, width_mult=1.0, depth_mult=1.0, dropout=0.2, num_classes=1000, stochastic_depth_prob=0.2,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        width = lambda c: make_divisible(c * width_mult)                              # noqa: E731
        depth = lambda n: int(math.ceil(n * depth_mult))                             # noqa: E731
        total, done = sum(depth(s[5]) for s in STAGES), 0
        layers = [ConvBNActivation(3, width(32), 3, 2, activation=nn.SiLU, norm_layer=norm_layer)]
        for t, k, s, cin, cout, n in STAGES:
            stage = []
            for i in range(depth(n)):
                stage.append(MBConv(width(cin) if i == 0 else width(cout), width(cout), t, k, s if i == 0 else 1,
                                    stochastic_depth_prob * done / total, norm_layer))
                done += 1
            layers.append(nn.Sequential(*stage))
        last = 4 * width(320)                                                         # 1280 for B0
        layers.append(ConvBNActivation(width(320), last, 1, activation=nn.SiLU, norm_layer=norm_layer))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():     # torchvision's: He (fan_out) convs, BN 1 / 0, fc U(+-1/sqrt(out_features))
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


def _efficientnet(name, num_classes, stochastic_depth_prob, dropout):
    w, d, _, p = SCALING[name]
    # torchvision gives B5-B7 (ported from TensorFlow) BatchNorm eps 1e-3, momentum 0.01
    norm = nn.BatchNorm2d if name < "b5" else (lambda c: nn.BatchNorm2d(c, eps=1e-3, momentum=0.01))
    return EfficientNet(w, d, p if dropout is None else dropout, num_classes, stochastic_depth_prob, norm)


def efficientnet_b0(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B0 (224 x 224): 5.3 M parameters, 0.39 x 10^9 multiply-adds (Table 2)."""
    return _efficientnet("b0", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b1(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B1 (240 x 240)."""
    return _efficientnet("b1", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b2(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B2 (260 x 260)."""
    return _efficientnet("b2", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b3(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B3 (300 x 300)."""
    return _efficientnet("b3", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b4(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B4 (380 x 380)."""
    return _efficientnet("b4", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b5(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B5 (456 x 456)."""
    return _efficientnet("b5", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b6(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B6 (528 x 528)."""
    return _efficientnet("b6", num_classes, stochastic_depth_prob, dropout)


def efficientnet_b7(num_classes=1000, stochastic_depth_prob=0.2, dropout=None):
    """EfficientNet-B7 (600 x 600): 66 M parameters, 37 x 10^9 multiply-adds (Table 2)."""
    return _efficientnet("b7", num_classes, stochastic_depth_prob, dropout)
