"""Pre-activation ResNets (He, Zhang, Ren & Sun 2016, "Identity mappings in deep residual networks"): every
residual unit computes BN -> ReLU -> conv on its branch and adds a clean identity, so the signal passes from any
unit to any other unchanged (Fig. 4e).  As in the paper's appendix, the first unit takes its activation from the
stem (conv1 -> BN -> ReLU) and an extra BN -> ReLU follows the last addition.  Where a unit changes width or size
its shortcut is a 1 x 1 projection of the pre-activated input."""
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models._init import he_init_

__all__ = ["PreActResNet", "PreActBlock", "PreActBottleneck", "preact_resnet18", "preact_resnet110",
           "preact_resnet164"]


class _PreActUnit(nn.Module):
    """Shared forward: y = branch(a) + shortcut, a = relu(bn1(x)) (or x itself for the first unit)."""
    def _shortcut_and_preact(self, in_planes, out_planes, stride, preact):
        self.bn1 = nn.BatchNorm2d(in_planes) if preact else None
        self.shortcut = None
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False))

    def forward(self, x):
        a = x if self.bn1 is None else F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(a)
        return self.branch(a) + shortcut


class PreActBlock(_PreActUnit):
    """Basic unit: BN-ReLU-conv3x3-BN-ReLU-conv3x3 (the leading BN-ReLU happens in ``forward``)."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, preact=True):
        super().__init__()
        self._shortcut_and_preact(in_planes, planes, stride, preact)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)

    def branch(self, a):
        return self.conv2(F.relu(self.bn2(self.conv1(a))))


class PreActBottleneck(_PreActUnit):
    """Bottleneck unit: BN-ReLU-conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1 (4 * planes)."""
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, preact=True):
        super().__init__()
        self._shortcut_and_preact(in_planes, planes * 4, stride, preact)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)

    def branch(self, a):
        y = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return self.conv3(F.relu(self.bn3(y)))


class PreActResNet(nn.Module):
    """Stem, stages of pre-activation units (``widths`` planes; each stage after the first halves the size),
    final BN-ReLU, global average pool, fc.  ``imagenet_stem``: 7 x 7/2 conv + 3 x 3/2 max pool for
    (N, 3, 224, 224) input; otherwise one 3 x 3 conv for CIFAR's (N, 3, 32, 32)."""
    def __init__(self, block, layers, widths, num_classes, imagenet_stem):
        super().__init__()
        stem_width = 64 if imagenet_stem else 16
        if imagenet_stem:
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet_stem else nn.Identity()
        in_planes, stages = stem_width, []
        for i, (planes, n) in enumerate(zip(widths, layers)):
            units = [block(in_planes, planes, 1 if i == 0 else 2, preact=i != 0)]   # the stem pre-activates
            in_planes = planes * block.expansion
            units += [block(in_planes, planes) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
        self.layers = nn.ModuleList(stages)
        self.bn_final = nn.BatchNorm2d(in_planes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        he_init_(self)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for stage in self.layers:
            x = stage(x)
        x = self.avgpool(F.relu(self.bn_final(x)))
        return self.fc(x.reshape(x.shape[0], -1))


def preact_resnet18(num_classes=1000):
    """ImageNet layout of ResNet-18 (basic units [2, 2, 2, 2], 64-512 planes) with pre-activation units."""
    return PreActResNet(PreActBlock, [2, 2, 2, 2], [64, 128, 256, 512], num_classes, imagenet_stem=True)


def preact_resnet110(num_classes=10):
    """CIFAR, 18 basic units per stage on 16, 32, 64 planes (Table 3: 6.37% error on CIFAR-10); 1.7 M
    parameters."""
    return PreActResNet(PreActBlock, [18, 18, 18], [16, 32, 64], num_classes, imagenet_stem=False)


def preact_resnet164(num_classes=10):
    """CIFAR, 18 bottleneck units per stage (outputs 64, 128, 256; Table 3: 5.46%); 1.7 M parameters."""
    return PreActResNet(PreActBottleneck, [18, 18, 18], [16, 32, 64], num_classes, imagenet_stem=False)
