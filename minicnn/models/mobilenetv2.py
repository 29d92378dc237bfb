"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"), Table 2.

The building block (Table 1, Fig. 3b) is an *inverted* residual: a 1 x 1 convolution expands k channels by the
factor t, a 3 x 3 depthwise convolution filters each of the tk channels, and a 1 x 1 convolution projects back to
k' channels with no non-linearity after it (the linear bottleneck, §3.2: ReLU on a thin representation destroys
information).  Expansion and depthwise layers use ReLU6; a block adds its input when stride is 1 and k = k'.

Keys and count are torchvision's ``mobilenet_v2``: ``features.0.0.weight`` (conv), ``features.0.1`` (BatchNorm),
``features.1.conv.0.0.weight`` ... ``features.18``, ``classifier.1.weight``; 3,504,872 parameters, 300 M
multiply-adds at 224 x 224 (Table 3: 3.4 M, 300 M).
"""
import minicnn.nn as nn

__all__ = ["MobileNetV2", "InvertedResidual", "ConvBNActivation", "make_divisible", "mobilenet_v2"]


def make_divisible(v, divisor=8, min_value=None):
    """Round v to the nearest multiple of divisor (at least min_value, default divisor), never below 0.9 v: the
    channel rounding of the TensorFlow models, kept so that thinned widths stay hardware-friendly."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNActivation(nn.Sequential):
    """k x k conv (no bias, 'same' padding) -> BatchNorm -> activation (none if ``activation`` is None):
    torchvision's ``Conv2dNormActivation``, keys ``0.weight`` and ``1.*``."""
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, activation=nn.ReLU6,
                 norm_layer=nn.BatchNorm2d):
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                            bias=False), norm_layer(out_channels)]
        super().__init__(*layers + ([activation()] if activation is not None else []))


class InvertedResidual(nn.Module):
    """Table 1: 1x1 expand to t k (ReLU6; skipped when t = 1) -> 3x3/s depthwise (ReLU6) -> 1x1 project to k'
    (linear) -> BatchNorm, plus the input when s = 1 and k = k'.  (N, k, H, W) -> (N, k', H / s, W / s)."""
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvBNActivation(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [ConvBNActivation(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# Table 2 after the first conv: expansion t, output channels c, repeats n, stride s of the first repeat
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1)]


class MobileNetV2(nn.Module):
    """x (N, 3, 224, 224) -> logits (N, num_classes).  ``width_mult`` scales every layer but the last conv
    (1280 channels, only ever widened: §6.1); channels are rounded by ``make_divisible``."""
    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2, round_nearest=8):
        super().__init__()
        c = make_divisible(32 * width_mult, round_nearest)
        last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        layers = [ConvBNActivation(3, c, stride=2)]                               # 112 x 112
        for t, out, n, s in SETTINGS:                                             # ... 7 x 7 x 320
            out = make_divisible(out * width_mult, round_nearest)
            for i in range(n):
                layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        layers.append(ConvBNActivation(c, last, 1))                               # 7 x 7 x 1280
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():                 # torchvision's: He (fan_out) convs, BN 1 / 0, fc N(0, 0.01)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))                                        # (N, 1280, 1, 1)
        return self.classifier(x.reshape(x.shape[0], -1))


def mobilenet_v2(num_classes=1000, width_mult=1.0, dropout=0.2):
    """torchvision's MobileNetV2 (any input size; Table 2 is for 224 x 224)."""
    return MobileNetV2(num_classes, width_mult, dropout)
