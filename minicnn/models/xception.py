"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions"), Fig. 5: the entry
flow (two convolutions, three residual blocks halving the grid), the middle flow (eight identical residual blocks
of three separable convolutions at 19 x 19 x 728) and the exit flow.  A separable convolution is a 3 x 3
depthwise conv (one filter per channel) followed by a 1 x 1 pointwise conv, with no non-linearity in between
(§4.7); every one is followed by BatchNorm.  Each block adds a shortcut: the identity, or a strided 1 x 1 conv
with BatchNorm where the width or the grid changes.

Keys and count are timm's ``legacy_xception`` (``conv1``, ``bn1``, ``block1.skip``, ``block1.skipbn``,
``block1.rep.0.conv1`` (depthwise), ``block1.rep.0.pointwise``, ``block1.rep.1`` (BatchNorm), ... ``fc``):
22,855,952 parameters, 22,910,480 counting BatchNorm's running means and variances as Keras does.
"""
import minicnn.functional as F
import minicnn.nn as nn

__all__ = ["Xception", "SeparableConv2d", "Block", "xception"]


class SeparableConv2d(nn.Module):
    """Depthwise k x k (``conv1``, groups = in_channels) then pointwise 1 x 1 (``pointwise``), no biases.
    Costs (k^2 + out_channels) in_channels HW multiply-adds instead of k^2 in_channels out_channels HW."""
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels,
                               bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """``reps`` x (ReLU -> separable 3 x 3 -> BatchNorm), then a 3x3/``stride`` max pool if stride > 1, plus the
    shortcut.  ``grow_first``: the first separable conv widens (in -> out), else the last one does;
    ``start_with_relu=False`` drops the first ReLU (block1 follows a ReLU already)."""
    def __init__(self, in_channels, out_channels, reps, stride=1, start_with_relu=True, grow_first=True):
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_channels)
        else:
            self.skip = self.skipbn = None
        rep = []
        for i in range(reps):
            if grow_first:
                cin, cout = (in_channels if i == 0 else out_channels), out_channels
            else:
                cin, cout = in_channels, (in_channels if i < reps - 1 else out_channels)
            rep += [nn.ReLU(), SeparableConv2d(cin, cout), nn.BatchNorm2d(cout)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x):
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(nn.Module):
    """Fig. 5.  x (N, 3, 299, 299) -> logits (N, num_classes)."""
    def __init__(self, num_classes=1000, dropout=0.0):
        super().__init__()
        # entry flow
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, stride=2, bias=False), nn.BatchNorm2d(32)      # 149 x 149
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64)              # 147
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)                               # 74
        self.block2 = Block(128, 256, 2, 2)                                                     # 37
        self.block3 = Block(256, 728, 2, 2)                                                     # 19
        # middle flow: 8 x (3 separable convolutions + identity)
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1))
        # exit flow
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)                                 # 10 x 10
        self.conv3, self.bn3 = SeparableConv2d(1024, 1536), nn.BatchNorm2d(1536)
        self.conv4, self.bn4 = SeparableConv2d(1536, 2048), nn.BatchNorm2d(2048)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():                          # timm's init: He (fan_out) convs, BatchNorm 1 / 0
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):                                                   # (N, 3, 299, 299)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))                                 # (N, 64, 147, 147)
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)                               # (N, 1024, 10, 10)
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.relu(self.bn4(self.conv4(x)))                                 # (N, 2048, 10, 10)
        x = self.global_pool(x).reshape(x.shape[0], -1)
        return self.fc(self.dropout(x))


def xception(num_classes=1000, dropout=0.0):
    """Xception as timm's ``legacy_xception`` (299 x 299 input)."""
    return Xception(num_classes, dropout)
