"""Inception v2 and v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision").

The factorisations of §3: a 5 x 5 convolution as two 3 x 3 (Fig. 5), an n x n one as 1 x n then n x 1 (Fig. 6,
n = 7 on the 17 x 17 grid), the widened 8 x 8 modules with 1 x 3 / 3 x 1 pairs side by side (Fig. 7), and grid
reductions that run a stride-2 convolution and a stride-2 pool in parallel and concatenate them (Fig. 10).

``inception_v3()`` is torchvision's ``inception_v3``: same keys (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch5x5_1.bn.running_mean``, ``AuxLogits.fc.weight``, ...) and counts (27,161,264 parameters with the
auxiliary classifier, 23,834,568 without), every convolution followed by BatchNorm (eps 0.001) and ReLU.
``inception_v2()`` is Table 1 read literally with the same module widths: the stem's seven layers
(3x3/2 32, 3x3 32, padded 3x3 64, pool, 3x3 80, 3x3/2 192, 3x3 288), 3 x Fig. 5 modules whose "5 x 5" branch is a
3 x 3 (288 channels at 35 x 35), 5 x Fig. 6 (768 at 17 x 17), 2 x Fig. 7 (2048 at 8 x 8).
"""
from collections import namedtuple

import numpy as np

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models.googlenet import BasicConv2d

__all__ = ["Inception3", "InceptionOutputs", "InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE",
           "InceptionAux", "inception_v2", "inception_v3"]

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


def conv(cin, cout, kernel_size, stride=1, padding=0):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU, keys ``conv.*`` and ``bn.*``."""
    return BasicConv2d(cin, cout, True, kernel_size=kernel_size, stride=stride, padding=padding)


def cat(*branches):
    return mc.concat(list(branches), dim=1)


class InceptionA(nn.Module):
    """35 x 35 module (Fig. 5): 1x1 64 | 1x1 48 -> k5 x k5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg pool -> 1x1
    pool_features.  torchvision keeps a 5 x 5 (k5=5, from Google's released model); the paper's Fig. 5 has 3 x 3."""
    def __init__(self, in_channels, pool_features, k5=5):
        super().__init__()
        self.branch1x1 = conv(in_channels, 64, 1)
        self.branch5x5_1 = conv(in_channels, 48, 1)
        self.branch5x5_2 = conv(48, 64, k5, padding=k5 // 2)
        self.branch3x3dbl_1 = conv(in_channels, 64, 1)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, padding=1)
        self.branch_pool = conv(in_channels, pool_features, 1)

    def forward(self, x):                                    # -> 64 + 64 + 96 + pool_features channels
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return cat(self.branch1x1(x), b5, b3, bp)


class InceptionB(nn.Module):
    """35 -> 17 grid reduction (Fig. 10): 3x3/2 384 | 1x1 64 -> 3x3 96 -> 3x3/2 96 | max pool 3x3/2."""
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = conv(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = conv(in_channels, 64, 1)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, stride=2)

    def forward(self, x):                                    # -> 384 + 96 + in_channels
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return cat(self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2))


class InceptionC(nn.Module):
    """17 x 17 module (Fig. 6, n = 7): 1x1 192 | 1x1 c7 -> 1x7 -> 7x1 192 | 1x1 c7 -> 7x1 -> 1x7 -> 7x1 -> 1x7 192
    | avg pool -> 1x1 192.  768 channels in and out."""
    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = conv(in_channels, 192, 1)
        self.branch7x7_1 = conv(in_channels, c7, 1)
        self.branch7x7_2 = conv(c7, c7, **row)
        self.branch7x7_3 = conv(c7, 192, **col)
        self.branch7x7dbl_1 = conv(in_channels, c7, 1)
        self.branch7x7dbl_2 = conv(c7, c7, **col)
        self.branch7x7dbl_3 = conv(c7, c7, **row)
        self.branch7x7dbl_4 = conv(c7, c7, **col)
        self.branch7x7dbl_5 = conv(c7, 192, **row)
        self.branch_pool = conv(in_channels, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5):
            d = m(d)
        return cat(self.branch1x1(x), b7, d, self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1)))


class InceptionD(nn.Module):
    """17 -> 8 grid reduction: 1x1 192 -> 3x3/2 320 | 1x1 192 -> 1x7 -> 7x1 -> 3x3/2 192 | max pool 3x3/2."""
    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = conv(in_channels, 192, 1)
        self.branch3x3_2 = conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = conv(in_channels, 192, 1)
        self.branch7x7x3_2 = conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv(192, 192, 3, stride=2)

    def forward(self, x):                                    # -> 320 + 192 + in_channels
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return cat(self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2))


class InceptionE(nn.Module):
    """8 x 8 module with expanded filter banks (Fig. 7): 1x1 320 | 1x1 384 -> (1x3 384, 3x1 384) | 1x1 448 ->
    3x3 384 -> (1x3 384, 3x1 384) | avg pool -> 1x1 192.  2048 channels out."""
    def __init__(self, in_channels):
        super().__init__()
        row, col = dict(kernel_size=(1, 3), padding=(0, 1)), dict(kernel_size=(3, 1), padding=(1, 0))
        self.branch1x1 = conv(in_channels, 320, 1)
        self.branch3x3_1 = conv(in_channels, 384, 1)
        self.branch3x3_2a = conv(384, 384, **row)
        self.branch3x3_2b = conv(384, 384, **col)
        self.branch3x3dbl_1 = conv(in_channels, 448, 1)
        self.branch3x3dbl_2 = conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = conv(384, 384, **row)
        self.branch3x3dbl_3b = conv(384, 384, **col)
        self.branch_pool = conv(in_channels, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return cat(self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3), self.branch3x3dbl_3a(d),
                   self.branch3x3dbl_3b(d), self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1)))


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17 x 17 grid (§4, Fig. 8): 5x5/3 avg pool -> 1x1 128 -> 5x5 768 (BatchNorm
    after both) -> global pool -> fc.  x (N, 768, 17, 17) -> (N, num_classes)."""
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv0 = conv(in_channels, 128, 1)
        self.conv1 = conv(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))          # (N, 768, 1, 1) at 17 x 17
        return self.fc(F.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], -1))


# the stem before the first 35 x 35 module: (key, out channels, kernel, stride, padding); "pool" = max 3x3/2
STEMS = {
    "v3": [("Conv2d_1a_3x3", 32, 3, 2, 0), ("Conv2d_2a_3x3", 32, 3, 1, 0), ("Conv2d_2b_3x3", 64, 3, 1, 1),
           ("maxpool1",), ("Conv2d_3b_1x1", 80, 1, 1, 0), ("Conv2d_4a_3x3", 192, 3, 1, 0), ("maxpool2",)],
    "v2": [("Conv2d_1a_3x3", 32, 3, 2, 0), ("Conv2d_2a_3x3", 32, 3, 1, 0), ("Conv2d_2b_3x3", 64, 3, 1, 1),
           ("maxpool1",), ("Conv2d_3b_3x3", 80, 3, 1, 0), ("Conv2d_4a_3x3", 192, 3, 2, 0),
           ("Conv2d_4b_3x3", 288, 3, 1, 1)],
}
# the 35 x 35 modules' pool_features, the 17 x 17 modules' channels_7x7
WIDTHS = {"v3": ([32, 64, 64], [128, 160, 160, 192]), "v2": ([64, 64, 64], [128, 160, 160, 160, 192])}


class Inception3(nn.Module):
    """x (N, 3, 299, 299) -> logits (N, num_classes), or InceptionOutputs(logits, aux_logits) in training with
    ``aux_logits``.  ``transform_input`` re-normalises ImageNet-normalised input to (x - 0.5) / 0.5, what
    torchvision's converted weights expect."""
    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False, dropout=0.5, version="v3"):
        super().__init__()
        self.transform_input, self.version = transform_input, version
        c, self.stem = 3, []
        for key, *spec in STEMS[version]:                     # 299 -> 149 -> 147 -> 147 -> 73 -> 71 -> 35
            if spec:
                setattr(self, key, conv(c, spec[0], *spec[1:]))
                c = spec[0]
            else:
                setattr(self, key, nn.MaxPool2d(3, stride=2))
            self.stem.append(key)
        pools, c7s = WIDTHS[version]
        self.mixed = []
        for i, pf in enumerate(pools):                        # 35 x 35: 64 + 64 + 96 + pf channels
            self._add(f"Mixed_5{'bcd'[i]}", InceptionA(c, pf, k5=5 if version == "v3" else 3))
            c = 224 + pf
        self._add("Mixed_6a", InceptionB(c))                  # 17 x 17, 384 + 96 + c = 768
        for i, c7 in enumerate(c7s):
            self._add(f"Mixed_6{'bcdef'[i]}", InceptionC(768, c7))
        self.aux_after = self.mixed[-1]
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self._add("Mixed_7a", InceptionD(768))                # 8 x 8, 320 + 192 + 768 = 1280
        self._add("Mixed_7b", InceptionE(1280))               # 2048
        self._add("Mixed_7c", InceptionE(2048))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        self._init_weights()

    def _add(self, key, module):
        setattr(self, key, module)
        self.mixed.append(key)

    def _init_weights(self):
        """torchvision's: truncated normal (within 2 std) of std 0.1 for convolutions and fc, 0.01 for the
        auxiliary 5 x 5 conv, 0.001 for the auxiliary fc; BatchNorm scale 1, shift 0."""
        special = {}
        if self.AuxLogits is not None:
            special = {id(self.AuxLogits.conv1.conv): 0.01, id(self.AuxLogits.fc): 0.001}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=special.get(id(m), 0.1), a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        scale, shift = (std / 0.5).reshape(1, 3, 1, 1), ((mean - 0.5) / 0.5).reshape(1, 3, 1, 1)
        return x * scale.astype(x.dtype) + shift.astype(x.dtype)

    def forward(self, x):                                     # (N, 3, 299, 299)
        if self.transform_input:
            x = self._transform_input(x)
        for key in self.stem:                                 # (N, 192 or 288, 35, 35)
            x = getattr(self, key)(x)
        aux = None
        for key in self.mixed:                                # 35 x 35 -> 17 x 17 -> (N, 2048, 8, 8)
            x = getattr(self, key)(x)
            if key == self.aux_after and self.training and self.AuxLogits is not None:
                aux = self.AuxLogits(x)
        x = self.avgpool(x)                                   # (N, 2048, 1, 1)
        x = self.fc(self.dropout(x.reshape(x.shape[0], -1)))
        return InceptionOutputs(x, aux) if aux is not None else x


def inception_v3(num_classes=1000, aux_logits=True, transform_input=False, dropout=0.5):
    """torchvision's Inception-v3 (299 x 299 input, 5.7 x 10^9 multiply-adds)."""
    return Inception3(num_classes, aux_logits, transform_input, dropout, version="v3")


def inception_v2(num_classes=1000, aux_logits=True, transform_input=False, dropout=0.5):
    """Table 1's Inception-v2 (299 x 299 input): v3's modules with Fig. 5's 3 x 3 for the 5 x 5, a 288-channel
    stem, five 17 x 17 modules; the auxiliary classifier on the last 17 x 17 one."""
    return Inception3(num_classes, aux_logits, transform_input, dropout, version="v2")
