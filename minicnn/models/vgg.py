"""VGG (Simonyan & Zisserman 2015), configurations A to E of Table 1, with torchvision's layout and keys:
``features.N`` (conv, [BatchNorm], ReLU, ..., max pool) -> ``avgpool`` (7 x 7) -> ``classifier.0/3/6``."""
import minicnn.nn as nn

__all__ = ["VGG", "cfgs", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# Table 1: a number is a 3 x 3 conv with that many channels, (C, 1) a 1 x 1 conv, "M" a 2 x 2 max pool,
# "LRN" local response normalisation (configuration A-LRN only).
cfgs = {
    "A":     [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B":     [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C":     [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
              512, 512, (512, 1), "M"],
    "D":     [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E":     [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False):
    """The ``features`` Sequential of one configuration; 3 x 3 convs keep the size (padding 1), pools halve it."""
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        elif v == "LRN":                                 # Krizhevsky's parameters, PyTorch's alpha convention
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        else:
            out_channels, k = v if isinstance(v, tuple) else (v, 3)
            layers.append(nn.Conv2d(in_channels, out_channels, k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            in_channels = out_channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (N, 512, 7, 7) at 224 x 224 -> 4096 -> 4096 -> num_classes, dropout after the first two
    fully connected layers.  x (N, 3, 224, 224) -> logits (N, num_classes)."""
    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))      # identity at 224 x 224
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes))
        self._init_weights()

    def _init_weights(self):
        """As torchvision: He (fan_out) for convs, N(0, 0.01) for linear layers, zero biases.  (The paper
        trained A from N(0, 0.01) and seeded deeper nets with A's layers, §3.1.)"""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))               # (N, 512, 7, 7)
        return self.classifier(x.reshape(x.shape[0], -1))


def _vgg(cfg, batch_norm, num_classes, dropout):
    return VGG(make_layers(cfgs[cfg], batch_norm), num_classes, dropout)


def vgg11(num_classes=1000, dropout=0.5):
    """Configuration A, 11 weight layers; 132,863,336 parameters."""
    return _vgg("A", False, num_classes, dropout)


def vgg11_lrn(num_classes=1000, dropout=0.5):
    """Configuration A-LRN: A with local response normalisation after the first conv (no gain, §4.1)."""
    return _vgg("A-LRN", False, num_classes, dropout)


def vgg13(num_classes=1000, dropout=0.5):
    """Configuration B, 13 weight layers."""
    return _vgg("B", False, num_classes, dropout)


def vgg16_c(num_classes=1000, dropout=0.5):
    """Configuration C: 16 weight layers, the third conv of the last three stages 1 x 1."""
    return _vgg("C", False, num_classes, dropout)


def vgg16(num_classes=1000, dropout=0.5):
    """Configuration D, 16 weight layers; 138,357,544 parameters, about 15.5 x 10^9 multiply-adds."""
    return _vgg("D", False, num_classes, dropout)


def vgg19(num_classes=1000, dropout=0.5):
    """Configuration E, 19 weight layers; 143,667,240 parameters."""
    return _vgg("E", False, num_classes, dropout)


def vgg11_bn(num_classes=1000, dropout=0.5):
    """Configuration A with BatchNorm after every conv (torchvision's ``vgg11_bn``)."""
    return _vgg("A", True, num_classes, dropout)


def vgg13_bn(num_classes=1000, dropout=0.5):
    return _vgg("B", True, num_classes, dropout)


def vgg16_bn(num_classes=1000, dropout=0.5):
    return _vgg("D", True, num_classes, dropout)


def vgg19_bn(num_classes=1000, dropout=0.5):
    return _vgg("E", True, num_classes, dropout)
