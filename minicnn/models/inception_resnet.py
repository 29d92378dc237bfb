"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke, Alemi 2016,
"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning").

Inception-v4 (Fig. 9): stem (Fig. 3), 4 x Inception-A (Fig. 4), Reduction-A (Fig. 7), 7 x Inception-B (Fig. 5),
Reduction-B (Fig. 8), 3 x Inception-C (Fig. 6).  The Inception-ResNets (Fig. 15) replace the modules by residual
blocks: the branches are concatenated, a linear 1 x 1 convolution (with bias, no BatchNorm) restores the width,
and the result, scaled by a constant between 0.1 and 0.3 (§3.3) so that training stays stable, is added to the
input before the ReLU.  Reduction-A is shared, with Table 1's filter counts (k, l, m, n): 192/224/256/384 for v4,
192/192/256/384 for Inception-ResNet-v1, 256/256/384/384 for Inception-ResNet-v2.

Keys and counts are timm's: ``inception_v4`` (``features.0.conv.weight`` ... ``last_linear``, 42,679,816
parameters) and ``inception_resnet_v2`` (``conv2d_1a`` ... ``mixed_5b``, ``repeat``, ``mixed_6a``, ``repeat_1``,
``mixed_7a``, ``repeat_2``, ``block8``, ``conv2d_7b``, ``classif``; 55,843,464), both from Google's TF-slim
code, whose Inception-ResNet-v2 has the Inception-ResNet-v1 stem, a Mixed_5b module and 10/20/10 blocks instead
of the paper's 5/10/5.  Inception-ResNet-v1 (no timm model) follows the paper exactly (stem Fig. 14, blocks
Figs. 10-13, 5/10/5 blocks), with timm's naming scheme.
"""
import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models.inception import conv

__all__ = ["InceptionV4", "InceptionResNetV1", "InceptionResNetV2", "ReductionA", "Block35", "Block17", "Block8",
           "inception_v4", "inception_resnet_v1", "inception_resnet_v2"]

ROW7, COL7 = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
ROW3, COL3 = dict(kernel_size=(1, 3), padding=(0, 1)), dict(kernel_size=(3, 1), padding=(1, 0))


def seq(*layers):
    return nn.Sequential(*layers)


def avg_pool():
    """3 x 3 average pool, stride 1, padding 1, the border windows averaging only real pixels (TF's 'SAME')."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Branches(nn.Module):
    """Parallel branches ``branch0``, ``branch1``, ... concatenated on channels."""
    def forward(self, x):
        return mc.concat([m(x) for m in self.children()], dim=1)


# ---- Inception-v4 --------------------------------------------------------------------------------------------
class Mixed3a(nn.Module):
    """Stem, 147 -> 73 (Fig. 3): 3x3/2 max pool | 3x3/2 conv 96 -> 64 + 96 = 160 channels."""
    def __init__(self):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = conv(64, 96, 3, stride=2)

    def forward(self, x):
        return mc.concat([self.maxpool(x), self.conv(x)], dim=1)


class Mixed4a(Branches):
    """Stem, 73 -> 71 (Fig. 3): 1x1 64 -> 3x3 96 | 1x1 64 -> 7x1 64 -> 1x7 64 -> 3x3 96; 192 channels."""
    def __init__(self):
        super().__init__()
        self.branch0 = seq(conv(160, 64, 1), conv(64, 96, 3))
        self.branch1 = seq(conv(160, 64, 1), conv(64, 64, **ROW7), conv(64, 64, **COL7), conv(64, 96, 3))


class Mixed5a(nn.Module):
    """Stem, 71 -> 35 (Fig. 3): 3x3/2 conv 192 | 3x3/2 max pool; 384 channels."""
    def __init__(self):
        super().__init__()
        self.conv = conv(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return mc.concat([self.conv(x), self.maxpool(x)], dim=1)


class InceptionA(Branches):
    """35 x 35 (Fig. 4): 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg pool -> 1x1 96; 384."""
    def __init__(self):
        super().__init__()
        self.branch0 = conv(384, 96, 1)
        self.branch1 = seq(conv(384, 64, 1), conv(64, 96, 3, padding=1))
        self.branch2 = seq(conv(384, 64, 1), conv(64, 96, 3, padding=1), conv(96, 96, 3, padding=1))
        self.branch3 = seq(avg_pool(), conv(384, 96, 1))


class ReductionA(Branches):
    """35 -> 17 (Fig. 7): 3x3/2 n | 1x1 k -> 3x3 l -> 3x3/2 m | 3x3/2 max pool; n + m + in_channels out."""
    def __init__(self, in_channels, k, l, m, n):                       # noqa: E741 (the paper's letters)
        super().__init__()
        self.branch0 = conv(in_channels, n, 3, stride=2)
        self.branch1 = seq(conv(in_channels, k, 1), conv(k, l, 3, padding=1), conv(l, m, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)


class InceptionB(Branches):
    """17 x 17 (Fig. 5): 1x1 384 | 1x1 192 -> 1x7 224 -> 7x1 256 | 1x1 192 -> 7x1 192 -> 1x7 224 -> 7x1 224 ->
    1x7 256 | avg pool -> 1x1 128; 1024 channels."""
    def __init__(self):
        super().__init__()
        self.branch0 = conv(1024, 384, 1)
        self.branch1 = seq(conv(1024, 192, 1), conv(192, 224, **ROW7), conv(224, 256, **COL7))
        self.branch2 = seq(conv(1024, 192, 1), conv(192, 192, **COL7), conv(192, 224, **ROW7),
                           conv(224, 224, **COL7), conv(224, 256, **ROW7))
        self.branch3 = seq(avg_pool(), conv(1024, 128, 1))


class ReductionB(Branches):
    """17 -> 8 (Fig. 8): 1x1 192 -> 3x3/2 192 | 1x1 256 -> 1x7 256 -> 7x1 320 -> 3x3/2 320 | max pool; 1536."""
    def __init__(self):
        super().__init__()
        self.branch0 = seq(conv(1024, 192, 1), conv(192, 192, 3, stride=2))
        self.branch1 = seq(conv(1024, 256, 1), conv(256, 256, **ROW7), conv(256, 320, **COL7),
                           conv(320, 320, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)


class InceptionC(nn.Module):
    """8 x 8 (Fig. 6): 1x1 256 | 1x1 384 -> (1x3 256, 3x1 256) | 1x1 384 -> 3x1 448 -> 1x3 512 -> (1x3 256,
    3x1 256) | avg pool -> 1x1 256; 1536 channels."""
    def __init__(self):
        super().__init__()
        self.branch0 = conv(1536, 256, 1)
        self.branch1_0 = conv(1536, 384, 1)
        self.branch1_1a = conv(384, 256, **ROW3)
        self.branch1_1b = conv(384, 256, **COL3)
        self.branch2_0 = conv(1536, 384, 1)
        self.branch2_1 = conv(384, 448, **COL3)
        self.branch2_2 = conv(448, 512, **ROW3)
        self.branch2_3a = conv(512, 256, **ROW3)
        self.branch2_3b = conv(512, 256, **COL3)
        self.branch3 = seq(avg_pool(), conv(1536, 256, 1))

    def forward(self, x):
        b1 = self.branch1_0(x)
        b2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return mc.concat([self.branch0(x), self.branch1_1a(b1), self.branch1_1b(b1), self.branch2_3a(b2),
                          self.branch2_3b(b2), self.branch3(x)], dim=1)


class InceptionV4(nn.Module):
    """Fig. 9.  x (N, 3, 299, 299) -> logits (N, num_classes); ``features`` ends at (N, 1536, 8, 8)."""
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        self.features = nn.Sequential(
            conv(3, 32, 3, stride=2), conv(32, 32, 3), conv(32, 64, 3, padding=1),    # 149, 147, 147
            Mixed3a(), Mixed4a(), Mixed5a(),                                          # 73, 71, 35 (384)
            *[InceptionA() for _ in range(4)], ReductionA(384, 192, 224, 256, 384),   # 17 x 17 x 1024
            *[InceptionB() for _ in range(7)], ReductionB(),                          # 8 x 8 x 1536
            *[InceptionC() for _ in range(3)])
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)                                            # keep 0.8 (Fig. 9)
        self.last_linear = nn.Linear(1536, num_classes)

    def forward(self, x):
        x = self.global_pool(self.features(x))
        return self.last_linear(self.dropout(x.reshape(x.shape[0], -1)))


# ---- Inception-ResNet ----------------------------------------------------------------------------------------
class _Residual(nn.Module):
    """x + scale * conv2d(concat(branches(x))), then ReLU (none for the last block, as TF-slim)."""
    def __init__(self, scale, relu):
        super().__init__()
        self.scale, self.relu = scale, relu

    def forward(self, x):
        branches = [m(x) for name, m in self._modules.items() if name.startswith("branch")]
        y = self.conv2d(mc.concat(branches, dim=1)) * self.scale + x
        return F.relu(y) if self.relu else y


class Block35(_Residual):
    """Inception-ResNet-A, 35 x 35 (Figs. 10, 16): 1x1 a | 1x1 a -> 3x3 a | 1x1 a -> 3x3 b -> 3x3 c, then a
    linear 1x1 back to ``channels``; v1 (a, b, c) = (32, 32, 32), v2 (32, 48, 64)."""
    def __init__(self, channels, a, b, c, scale=0.17, relu=True):
        super().__init__(scale, relu)
        self.branch0 = conv(channels, a, 1)
        self.branch1 = seq(conv(channels, a, 1), conv(a, a, 3, padding=1))
        self.branch2 = seq(conv(channels, a, 1), conv(a, b, 3, padding=1), conv(b, c, 3, padding=1))
        self.conv2d = nn.Conv2d(2 * a + c, channels, 1)


class Block17(_Residual):
    """Inception-ResNet-B, 17 x 17 (Figs. 11, 17): 1x1 a | 1x1 b -> 1x7 c -> 7x1 a, linear 1x1 back;
    v1 (a, b, c) = (128, 128, 128), v2 (192, 128, 160)."""
    def __init__(self, channels, a, b, c, scale=0.10, relu=True):
        super().__init__(scale, relu)
        self.branch0 = conv(channels, a, 1)
        self.branch1 = seq(conv(channels, b, 1), conv(b, c, **ROW7), conv(c, a, **COL7))
        self.conv2d = nn.Conv2d(2 * a, channels, 1)


class Block8(_Residual):
    """Inception-ResNet-C, 8 x 8 (Figs. 13, 19): 1x1 a | 1x1 a -> 1x3 b -> 3x1 c, linear 1x1 back;
    v1 (a, b, c) = (192, 192, 192), v2 (192, 224, 256)."""
    def __init__(self, channels, a, b, c, scale=0.20, relu=True):
        super().__init__(scale, relu)
        self.branch0 = conv(channels, a, 1)
        self.branch1 = seq(conv(channels, a, 1), conv(a, b, **ROW3), conv(b, c, **COL3))
        self.conv2d = nn.Conv2d(a + c, channels, 1)


class Mixed5b(Branches):
    """TF-slim's Inception-ResNet-v2 35 x 35 entry: 1x1 96 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 |
    avg pool -> 1x1 64; 192 -> 320 channels."""
    def __init__(self):
        super().__init__()
        self.branch0 = conv(192, 96, 1)
        self.branch1 = seq(conv(192, 48, 1), conv(48, 64, 5, padding=2))
        self.branch2 = seq(conv(192, 64, 1), conv(64, 96, 3, padding=1), conv(96, 96, 3, padding=1))
        self.branch3 = seq(avg_pool(), conv(192, 64, 1))


class ResReductionB(Branches):
    """Reduction-B of the Inception-ResNets, 17 -> 8 (Figs. 12, 18): 1x1 256 -> 3x3/2 384 | 1x1 256 -> 3x3/2 a |
    1x1 256 -> 3x3 a -> 3x3/2 b | max pool; v1 (a, b) = (256, 256), v2 (288, 320)."""
    def __init__(self, in_channels, a, b):
        super().__init__()
        self.branch0 = seq(conv(in_channels, 256, 1), conv(256, 384, 3, stride=2))
        self.branch1 = seq(conv(in_channels, 256, 1), conv(256, a, 3, stride=2))
        self.branch2 = seq(conv(in_channels, 256, 1), conv(256, a, 3, padding=1), conv(a, b, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)


class _InceptionResNet(nn.Module):
    """Stem (conv2d_1a ... maxpool_3a, conv2d_3b, conv2d_4a, ...), then repeat (A blocks), mixed_6a
    (Reduction-A), repeat_1 (B blocks), mixed_7a (Reduction-B), repeat_2 (C blocks) and block8, the last C block
    without ReLU; global average pool, dropout, ``classif``."""
    def forward(self, x):                                                      # (N, 3, 299, 299)
        for m in self.children():
            if m is self.dropout:
                continue
            if isinstance(m, nn.Linear):
                x = self.dropout(x.reshape(x.shape[0], -1))
            x = m(x)
        return x


class InceptionResNetV1(_InceptionResNet):
    """Fig. 15 with the stem of Fig. 14 and blocks of Figs. 10-13.  x (N, 3, 299, 299) -> (N, num_classes)."""
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        self.conv2d_1a = conv(3, 32, 3, stride=2)                              # 149 x 149
        self.conv2d_2a = conv(32, 32, 3)                                       # 147
        self.conv2d_2b = conv(32, 64, 3, padding=1)                            # 147
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)                            # 73
        self.conv2d_3b = conv(64, 80, 1)                                       # 73
        self.conv2d_4a = conv(80, 192, 3)                                      # 71
        self.conv2d_4b = conv(192, 256, 3, stride=2)                           # 35 x 35 x 256
        self.repeat = seq(*[Block35(256, 32, 32, 32, 0.17) for _ in range(5)])
        self.mixed_6a = ReductionA(256, 192, 192, 256, 384)                    # 17 x 17 x 896
        self.repeat_1 = seq(*[Block17(896, 128, 128, 128, 0.10) for _ in range(10)])
        self.mixed_7a = ResReductionB(896, 256, 256)                           # 8 x 8 x 1792
        self.repeat_2 = seq(*[Block8(1792, 192, 192, 192, 0.20) for _ in range(4)])
        self.block8 = Block8(1792, 192, 192, 192, 1.0, relu=False)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)                                     # keep 0.8 (Fig. 15)
        self.classif = nn.Linear(1792, num_classes)


class InceptionResNetV2(_InceptionResNet):
    """TF-slim's / timm's layout.  x (N, 3, 299, 299) -> (N, num_classes)."""
    def __init__(self, num_classes=1000, dropout=0.2):
        super().__init__()
        self.conv2d_1a = conv(3, 32, 3, stride=2)                              # 149 x 149
        self.conv2d_2a = conv(32, 32, 3)                                       # 147
        self.conv2d_2b = conv(32, 64, 3, padding=1)                            # 147
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)                            # 73
        self.conv2d_3b = conv(64, 80, 1)                                       # 73
        self.conv2d_4a = conv(80, 192, 3)                                      # 71
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)                            # 35
        self.mixed_5b = Mixed5b()                                              # 35 x 35 x 320
        self.repeat = seq(*[Block35(320, 32, 48, 64, 0.17) for _ in range(10)])
        self.mixed_6a = ReductionA(320, 256, 256, 384, 384)                    # 17 x 17 x 1088
        self.repeat_1 = seq(*[Block17(1088, 192, 128, 160, 0.10) for _ in range(20)])
        self.mixed_7a = ResReductionB(1088, 288, 320)                          # 8 x 8 x 2080
        self.repeat_2 = seq(*[Block8(2080, 192, 224, 256, 0.20) for _ in range(9)])
        self.block8 = Block8(2080, 192, 224, 256, 1.0, relu=False)
        self.conv2d_7b = conv(2080, 1536, 1)                                   # 8 x 8 x 1536
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classif = nn.Linear(1536, num_classes)


def inception_v4(num_classes=1000, dropout=0.2):
    """timm's ``inception_v4`` (42,679,816 parameters; 299 x 299 input)."""
    return InceptionV4(num_classes, dropout)


def inception_resnet_v1(num_classes=1000, dropout=0.2):
    """The paper's Inception-ResNet-v1 (299 x 299 input)."""
    return InceptionResNetV1(num_classes, dropout)


def inception_resnet_v2(num_classes=1000, dropout=0.2):
    """timm's ``inception_resnet_v2`` (55,843,464 parameters; 299 x 299 input)."""
    return InceptionResNetV2(num_classes, dropout)
