"""Darknet backbones of the YOLO detectors: Darknet-19 (Redmon & Farhadi 2017, YOLO9000 Table 6) and Darknet-53
(Redmon & Farhadi 2018, YOLOv3 Table 1).  Every convolution is conv (no bias) -> BatchNorm -> leaky ReLU (slope
0.1); keys ``features.N.conv/bn`` (Darknet-19) and ``conv1``, ``layer1.0.conv/bn``, ``layer1.1.conv1.conv`` ...
(Darknet-53)."""
import minicnn.functional as F
import minicnn.nn as nn

__all__ = ["ConvBNLeaky", "Darknet19", "Darknet53", "DarknetResidual", "darknet19", "darknet53"]


class ConvBNLeaky(nn.Module):
    """k x k conv (padding k // 2) -> BN -> leaky ReLU 0.1."""
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), 0.1)


def _init(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.1, mode="fan_out", nonlinearity="leaky_relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


# Table 6: a number is a 3 x 3 conv, (C, 1) a 1 x 1 conv, "M" a 2 x 2 max pool
darknet19_cfg = [32, "M", 64, "M", 128, (64, 1), 128, "M", 256, (128, 1), 256, "M",
                 512, (256, 1), 512, (256, 1), 512, "M", 1024, (512, 1), 1024, (512, 1), 1024]


class Darknet19(nn.Module):
    """19 convolutions and 5 max pools (``features``: (N, 3, 224, 224) -> (N, 1024, 7, 7)), then a 1 x 1 conv to
    num_classes maps and global average pooling.  x -> logits (N, num_classes)."""
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, c = [], 3
        for v in darknet19_cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                out, k = v if isinstance(v, tuple) else (v, 3)
                layers.append(ConvBNLeaky(c, out, k))
                c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(1024, num_classes, 1)                   # linear activation, with bias
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        _init(self)

    def forward(self, x):
        x = self.avgpool(self.classifier(self.features(x)))               # (N, num_classes, 1, 1)
        return x.reshape(x.shape[0], -1)


class DarknetResidual(nn.Module):
    """1 x 1 conv to half the channels, 3 x 3 conv back, plus the input (no activation after the sum)."""
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvBNLeaky(channels, channels // 2, 1)
        self.conv2 = ConvBNLeaky(channels // 2, channels, 3)

    def forward(self, x):
        return x + self.conv2(self.conv1(x))


class Darknet53(nn.Module):
    """Table 1: a 3 x 3 conv, then five stages, each a stride-2 3 x 3 conv and 1, 2, 8, 8, 4 residual blocks
    (64 ... 1024 channels); global average pool and fc.  x (N, 3, 256, 256) -> logits (N, num_classes).
    ``forward_features`` returns the stride-8, 16 and 32 maps that YOLOv3 predicts from."""
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = ConvBNLeaky(3, 32, 3)
        c = 32
        for i, n in enumerate([1, 2, 8, 8, 4]):
            self.add_module(f"layer{i + 1}", nn.Sequential(ConvBNLeaky(c, 2 * c, 3, stride=2),
                                                           *[DarknetResidual(2 * c) for _ in range(n)]))
            c *= 2
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)
        _init(self)

    def forward_features(self, x):
        """x (N, 3, H, W) -> [(N, 256, H/8, W/8), (N, 512, H/16, W/16), (N, 1024, H/32, W/32)]."""
        x = self.layer2(self.layer1(self.conv1(x)))
        c3 = self.layer3(x)
        c4 = self.layer4(c3)
        return [c3, c4, self.layer5(c4)]

    def forward(self, x):
        x = self.avgpool(self.forward_features(x)[-1])                    # (N, 1024, 1, 1)
        return self.fc(x.reshape(x.shape[0], -1))


def darknet19(num_classes=1000):
    """Darknet-19; input 224 x 224 (5.58 x 10^9 operations, i.e. 2.79 x 10^9 multiply-adds)."""
    return Darknet19(num_classes)


def darknet53(num_classes=1000):
    """Darknet-53; input 256 x 256 (18.7 x 10^9 operations, i.e. about 9.3 x 10^9 multiply-adds)."""
    return Darknet53(num_classes)
