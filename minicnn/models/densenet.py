"""DenseNet-BC (Huang, Liu, van der Maaten & Weinberger 2017), Table 1, with torchvision's keys:
``features.conv0``, ``features.denseblock1.denselayer1.norm1``, ``features.transition1.conv``, ``features.norm5``,
``classifier``.  Inside a dense block every layer sees the concatenation of all earlier feature maps and adds
``growth_rate`` new ones; transitions halve the channels (compression 0.5) and the size."""
from collections import OrderedDict

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn

__all__ = ["DenseNet", "DenseLayer", "DenseBlock", "Transition", "densenet121", "densenet161", "densenet169",
           "densenet201", "densenet264"]


class DenseLayer(nn.Module):
    """Bottleneck composite H_l (§3): BN-ReLU-conv1x1 (bn_size * k) - BN-ReLU-conv3x3 (k).
    A list of maps (N, C_i, H, W) -> (N, growth_rate, H, W)."""
    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features):
        x = mc.concat(features, dim=1) if isinstance(features, list) else features
        y = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return F.dropout(y, self.drop_rate, self.training) if self.drop_rate > 0 else y


class DenseBlock(nn.Module):
    """``num_layers`` dense layers named ``denselayer1`` ...; (N, C, H, W) -> (N, C + num_layers * k, H, W)."""
    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(num_input_features + i * growth_rate,
                                                             growth_rate, bn_size, drop_rate))

    def forward(self, x):
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return mc.concat(features, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compress channels) - 2 x 2 average pool."""
    def __init__(self, num_input_features, num_output_features):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(num_input_features)), ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(num_input_features, num_output_features, 1, bias=False)),
            ("pool", nn.AvgPool2d(2, stride=2))]))


class DenseNet(nn.Module):
    """7 x 7/2 conv + 3 x 3/2 max pool, dense blocks joined by transitions, final BN, ReLU, global average pool,
    linear.  x (N, 3, 224, 224) -> logits (N, num_classes)."""
    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                 drop_rate=0.0, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False)),   # 112 x 112
            ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1))]))                                  # 56 x 56
        c = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, c, bn_size, growth_rate, drop_rate))
            c += num_layers * growth_rate
            if i != len(block_config) - 1:                                                      # 28, 14, 7
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():                                        # as torchvision
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.features(x))                                    # (N, C, 7, 7)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(x.reshape(x.shape[0], -1))


def densenet121(num_classes=1000, **kw):
    """k = 32, blocks (6, 12, 24, 16); 7,978,856 parameters."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, **kw)


def densenet161(num_classes=1000, **kw):
    """k = 48, 96 initial features, blocks (6, 12, 36, 24); 28,681,000 parameters."""
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes=num_classes, **kw)


def densenet169(num_classes=1000, **kw):
    """k = 32, blocks (6, 12, 32, 32); 14,149,480 parameters."""
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, **kw)


def densenet201(num_classes=1000, **kw):
    """k = 32, blocks (6, 12, 48, 32); 20,013,928 parameters."""
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, **kw)


def densenet264(num_classes=1000, **kw):
    """k = 32, blocks (6, 12, 64, 48) (not in torchvision)."""
    return DenseNet(32, (6, 12, 64, 48), 64, num_classes=num_classes, **kw)
