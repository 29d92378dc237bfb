"""GoogLeNet (Szegedy et al. 2015, "Going deeper with convolutions"): Inception v1 modules with 1 x 1 dimension
reductions (Fig. 2b, Table 1) and two auxiliary classifiers on 4a and 4d that only run in training (§5).

``googlenet()`` is the paper's network (convolutions with biases, LRN, 5 x 5 branches, auxiliary heads after a
5 x 5 / 3 average pool).  ``googlenet(batch_norm=True)`` is torchvision's variant, with its keys and counts:
BatchNorm after every convolution, no LRN, 3 x 3 convolutions in the "5 x 5" branch.  In training mode the
model returns ``GoogLeNetOutputs(logits, aux1, aux2)``; the loss is ``CE(logits) + 0.3 * (CE(aux1) + CE(aux2))``.
"""
from collections import namedtuple

import numpy as np

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "BasicConv2d", "googlenet"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux1", "aux2"])


class BasicConv2d(nn.Module):
    """conv -> [BatchNorm (eps 0.001, conv without bias)] -> ReLU; keys ``conv.*`` and ``bn.*``."""
    def __init__(self, in_channels, out_channels, batch_norm=False, **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else None

    def forward(self, x):
        x = self.conv(x)
        return F.relu(x if self.bn is None else self.bn(x))


class Inception(nn.Module):
    """Four parallel branches concatenated on channels (Fig. 2b): 1 x 1; 1 x 1 -> 3 x 3; 1 x 1 -> 5 x 5;
    3 x 3 max pool -> 1 x 1.  x (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, batch_norm=False,
                 k5=5):
        super().__init__()
        conv = lambda cin, cout, k: BasicConv2d(cin, cout, batch_norm, kernel_size=k, padding=k // 2)  # noqa: E731
        self.branch1 = conv(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, k5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv(in_channels, pool_proj, 1))

    def forward(self, x):
        return mc.concat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (§5): average pool to 4 x 4 -> 1 x 1 conv, 128 -> fc 1024 + ReLU -> dropout 0.7 ->
    fc num_classes.  x (N, in_channels, 14, 14) -> logits (N, num_classes)."""
    def __init__(self, in_channels, num_classes, batch_norm=False, dropout=0.7):
        super().__init__()
        # the paper pools 5 x 5 with stride 3 (14 -> 4); torchvision pools adaptively to 4 x 4
        self.pool = nn.AdaptiveAvgPool2d((4, 4)) if batch_norm else nn.AvgPool2d(5, stride=3)
        self.conv = BasicConv2d(in_channels, 128, batch_norm, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.conv(self.pool(x))                               # (N, 128, 4, 4)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))           # (N, 1024)
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """Table 1, 22 layers deep.  x (N, 3, 224, 224) -> logits (N, num_classes), or GoogLeNetOutputs in training
    with ``aux_logits``.  ``transform_input`` re-normalises ImageNet-normalised input the way torchvision's
    converted weights expect."""
    def __init__(self, num_classes=1000, aux_logits=True, batch_norm=False, transform_input=False,
                 dropout=None, dropout_aux=0.7):
        super().__init__()
        bn, self.transform_input = batch_norm, transform_input
        lrn = (lambda: nn.Identity()) if bn else (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0))
        inception = lambda *ch: Inception(*ch, batch_norm=bn, k5=3 if bn else 5)  # noqa: E731
        self.conv1 = BasicConv2d(3, 64, bn, kernel_size=7, stride=2, padding=3)        # 112 x 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                      # 56 x 56
        self.lrn1 = lrn()
        self.conv2 = BasicConv2d(64, 64, bn, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, bn, kernel_size=3, padding=1)
        self.lrn2 = lrn()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                      # 28 x 28
        #                              in   1x1 3x3red 3x3 5x5red 5x5 pool
        self.inception3a = inception(192,  64,  96, 128, 16,  32,  32)
        self.inception3b = inception(256, 128, 128, 192, 32,  96,  64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                      # 14 x 14
        self.inception4a = inception(480, 192,  96, 208, 16,  48,  64)
        self.inception4b = inception(512, 160, 112, 224, 24,  64,  64)
        self.inception4c = inception(512, 128, 128, 256, 24,  64,  64)
        self.inception4d = inception(512, 112, 144, 288, 32,  64,  64)
        self.inception4e = inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2 if bn else 3, stride=2, ceil_mode=True)         # 7 x 7
        self.inception5a = inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes, bn, dropout_aux) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, bn, dropout_aux) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout((0.2 if bn else 0.4) if dropout is None else dropout)
        self.fc = nn.Linear(1024, num_classes)
        self._init_weights(bn)

    def _init_weights(self, bn):
        """torchvision: truncated N(0, 0.01) everywhere (BatchNorm rescales); the paper's Caffe model: Xavier
        weights and biases 0.2 for the convolutions."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if bn or isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
                else:
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        # ImageNet-normalised -> (x - 0.5) / 0.5 per channel, the input torchvision's weights were trained on
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        scale, shift = (std / 0.5).reshape(1, 3, 1, 1), ((mean - 0.5) / 0.5).reshape(1, 3, 1, 1)
        return x * scale.astype(x.dtype) + shift.astype(x.dtype)

    def forward(self, x):                                                    # (N, 3, 224, 224)
        if self.transform_input:
            x = self._transform_input(x)
        x = self.lrn1(self.maxpool1(self.conv1(x)))                          # (N, 64, 56, 56)
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))              # (N, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))             # (N, 480, 14, 14)
        x = self.inception4a(x)                                              # (N, 512, 14, 14)
        aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))          # (N, 528, 14, 14)
        aux2 = self.aux2(x) if aux else None
        x = self.maxpool4(self.inception4e(x))                               # (N, 832, 7, 7)
        x = self.avgpool(self.inception5b(self.inception5a(x)))              # (N, 1024, 1, 1)
        x = self.fc(self.dropout(x.reshape(x.shape[0], -1)))                 # (N, num_classes)
        return GoogLeNetOutputs(x, aux1, aux2) if aux else x


def googlenet(num_classes=1000, aux_logits=True, batch_norm=False, transform_input=False, dropout=None):
    """The paper's GoogLeNet, or with ``batch_norm=True`` torchvision's (13,004,888 parameters with the
    auxiliary classifiers, 6,624,904 without)."""
    return GoogLeNet(num_classes, aux_logits, batch_norm, transform_input, dropout)
