"""ResNet (He, Zhang, Ren & Sun 2016) for ImageNet, Table 1, with torchvision's keys (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer2.0.downsample.0/1``, ``fc``); ResNeXt (Xie et al. 2017) and Wide ResNet (Zagoruyko &
Komodakis 2016) are the bottleneck network with grouped or wider 3 x 3 convolutions.

Shortcuts are identities, and 1 x 1 projections where the shape changes (option B, §3.3).  Like torchvision
("ResNet v1.5"), a bottleneck block that downsamples puts the stride on its 3 x 3 convolution; the paper put it
on the first 1 x 1, which skips three quarters of the input and costs fewer multiply-adds (ResNet-50: 3.86 vs
4.09 x 10^9).  ``stride_in_1x1=True`` builds the paper's version; the weights are the same shapes either way.
"""
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models._init import he_init_

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnext50_32x4d", "wide_resnet50_2"]


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions plus the shortcut (Fig. 2): y = relu(bn2(conv2(relu(bn1(conv1(x))))) + x)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, stride_in_1x1=False):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock: groups must be 1 and base_width 64, got {groups} and {base_width}")
        self.conv1, self.bn1 = conv3x3(inplanes, planes, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + identity)


class Bottleneck(nn.Module):
    """1 x 1 (reduce to ``width``) -> 3 x 3 (``groups`` groups) -> 1 x 1 (expand to 4 * planes), plus the
    shortcut (Fig. 5 right).  width = planes * base_width / 64 * groups: ResNeXt's cardinality, WRN's widening."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, stride_in_1x1=False):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1, self.bn1 = conv1x1(inplanes, width, s1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, s3, groups), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, planes * self.expansion), nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + identity)


# Table 1: block type and number of blocks in conv2_x .. conv5_x (layer1 .. layer4)
stages = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class ResNet(nn.Module):
    """7 x 7/2 conv, 3 x 3/2 max pool, four stages of blocks (64, 128, 256, 512 planes; stages 2-4 halve the
    size), global average pool, fc.  x (N, 3, 224, 224) -> logits (N, num_classes)."""
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 stride_in_1x1=False):
        super().__init__()
        self.inplanes, self.groups, self.base_width = 64, groups, width_per_group
        self.stride_in_1x1 = stride_in_1x1
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)       # 112 x 112
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)                      # 56 x 56
        self.layer1 = self._make_layer(block, 64, layers[0])                     # 56 x 56
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)          # 28 x 28
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)          # 14 x 14
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)          # 7 x 7
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights(zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1):
        """One stage; its first block changes size and/or width, so its shortcut is a 1 x 1 projection + BN."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        kw = dict(groups=self.groups, base_width=self.base_width, stride_in_1x1=self.stride_in_1x1)
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual):
        """He normal (fan_out) convolutions (§3.4), BatchNorm 1/0; ``zero_init_residual`` zeroes each block's
        last BN scale so every block starts as the identity (Goyal et al. 2017)."""
        he_init_(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.bn3.weight if isinstance(m, Bottleneck) else m.bn2.weight)

    def forward(self, x):                                                        # (N, 3, 224, 224)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))                     # (N, 64, 56, 56)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))                # (N, 512 * expansion, 7, 7)
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def _resnet(depth, num_classes, **kw):
    block, layers = stages[depth]
    return ResNet(block, layers, num_classes, **kw)


def resnet18(num_classes=1000, **kw):
    """11,689,512 parameters; 1.8 x 10^9 multiply-adds at 224 x 224."""
    return _resnet(18, num_classes, **kw)


def resnet34(num_classes=1000, **kw):
    """21,797,672 parameters; 3.6 x 10^9 multiply-adds."""
    return _resnet(34, num_classes, **kw)


def resnet50(num_classes=1000, **kw):
    """25,557,032 parameters; 4.1 x 10^9 multiply-adds (3.8 with ``stride_in_1x1=True``, as in the paper)."""
    return _resnet(50, num_classes, **kw)


def resnet101(num_classes=1000, **kw):
    """44,549,160 parameters; 7.8 x 10^9 multiply-adds (7.6 with ``stride_in_1x1=True``)."""
    return _resnet(101, num_classes, **kw)


def resnet152(num_classes=1000, **kw):
    """60,192,808 parameters; 11.5 x 10^9 multiply-adds (11.3 with ``stride_in_1x1=True``)."""
    return _resnet(152, num_classes, **kw)


def resnext50_32x4d(num_classes=1000, **kw):
    """ResNeXt-50 (32 x 4d), Table 1 of Xie et al.: 32 groups of width 4 in the first stage; 25,028,904
    parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, groups=32, width_per_group=4, **kw)


def wide_resnet50_2(num_classes=1000, **kw):
    """ResNet-50 with the 3 x 3 convolutions twice as wide (WRN-50-2); 68,883,240 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, width_per_group=128, **kw)
