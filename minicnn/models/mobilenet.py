"""MobileNet v1 (Howard et al. 2017), Table 1: a 3 x 3 convolution, then 13 depthwise separable convolutions,
each a 3 x 3 depthwise conv (``groups = channels``, one filter per channel) and a 1 x 1 pointwise conv, both
followed by BatchNorm and ReLU; global average pool and fc.  The width multiplier alpha thins every layer (§3.3).
Keys: ``features.0.conv/bn``, ``features.1.depthwise``, ``features.1.bn1``, ``features.1.pointwise``,
``features.1.bn2`` ... ``fc`` (torchvision has no MobileNet v1)."""
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models._init import he_init_

__all__ = ["MobileNetV1", "ConvBNReLU", "DepthwiseSeparable", "mobilenet_v1"]


class ConvBNReLU(nn.Module):
    """Standard 3 x 3 conv -> BN -> ReLU (the first layer)."""
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """Fig. 3 right: depthwise 3 x 3 (stride s) -> BN -> ReLU -> pointwise 1 x 1 -> BN -> ReLU.
    (N, C_in, H, W) -> (N, C_out, H / s, W / s); cost 9 C_in HW/s^2 + C_in C_out HW/s^2 multiply-adds (Eq. 5)."""
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels,
                                   bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


# Table 1 after the first conv: (output channels, stride) of each depthwise separable layer
layers = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """x (N, 3, 224, 224) -> logits (N, num_classes); 1.0-224: 4.2 M parameters, 569 M multiply-adds."""
    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.0):
        super().__init__()
        width = lambda c: max(8, int(c * width_mult))                      # noqa: E731
        blocks, c = [ConvBNReLU(3, width(32), 2)], width(32)                # 112 x 112
        for out, stride in layers:                                          # ... 7 x 7
            blocks.append(DepthwiseSeparable(c, width(out), stride))
            c = width(out)
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        he_init_(self)

    def forward(self, x):
        x = self.avgpool(self.features(x))                                  # (N, 1024 alpha, 1, 1)
        return self.fc(self.dropout(x.reshape(x.shape[0], -1)))


def mobilenet_v1(num_classes=1000, width_mult=1.0, dropout=0.0):
    """MobileNet alpha-224 (any input size works; the resolution multiplier is just a smaller input)."""
    return MobileNetV1(num_classes, width_mult, dropout)
