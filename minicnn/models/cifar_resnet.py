"""ResNets for CIFAR-10 (He et al. 2016, §4.2): 6n + 2 layers, a 3 x 3 conv then three stages of n basic blocks
with 16, 32, 64 filters on 32, 16, 8 pixel maps, global average pooling and a 10-way fc.  Shortcuts are
parameter-free (option A): identities, and where a stage halves the size, the input subsampled by 2 and padded
with zero channels."""
import minicnn.functional as F
import minicnn.nn as nn
from minicnn.models._init import he_init_

__all__ = ["CifarResNet", "CifarBasicBlock", "LambdaShortcut", "resnet20", "resnet32", "resnet44", "resnet56",
           "resnet110"]


class LambdaShortcut(nn.Module):
    """Option A: x (N, C, H, W) -> (N, C + 2 * pad, H / 2, W / 2), every second pixel, zeros added on both sides
    of the channel axis."""
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self):
        return f"pad={self.pad}"


class CifarBasicBlock(nn.Module):
    """Two 3 x 3 conv + BN layers and the option-A shortcut: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x))."""
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNormReLU2d(planes)                      # bn1 and the relu after it, in one pass
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNormReLU2d(planes)                      # bn2, the shortcut's sum and the relu
        changes = stride != 1 or in_planes != planes
        self.shortcut = LambdaShortcut((planes - in_planes) // 2) if changes else nn.Identity()

    def forward(self, x):
        y = self.bn1(self.conv1(x))                                # relu(bn1(conv1(x)))
        return self.bn2(self.conv2(y), residual=self.shortcut(x))  # relu(bn2(conv2(y)) + shortcut(x))


class CifarResNet(nn.Module):
    """x (N, 3, 32, 32) -> logits (N, num_classes); ``n`` blocks per stage, 6n + 2 weight layers."""
    def __init__(self, n, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNormReLU2d(16)                          # bn1 and its relu, in one pass
        self.layer1 = self._make_layer(16, 16, n, 1)                # 32 x 32
        self.layer2 = self._make_layer(16, 32, n, 2)                # 16 x 16
        self.layer3 = self._make_layer(32, 64, n, 2)                # 8 x 8
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        he_init_(self)                                                   # He init (§3.4)

    @staticmethod
    def _make_layer(in_planes, planes, n, stride):
        return nn.Sequential(CifarBasicBlock(in_planes, planes, stride),
                             *[CifarBasicBlock(planes, planes) for _ in range(n - 1)])

    def forward(self, x):                                           # (N, 3, 32, 32)
        x = self.bn1(self.conv1(x))                                 # relu(bn1(conv1(x))): (N, 16, 32, 32)
        x = self.layer3(self.layer2(self.layer1(x)))                # (N, 64, 8, 8)
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def resnet20(num_classes=10):
    """n = 3; 0.27 M parameters (269,722)."""
    return CifarResNet(3, num_classes)


def resnet32(num_classes=10):
    """n = 5; 0.46 M parameters."""
    return CifarResNet(5, num_classes)


def resnet44(num_classes=10):
    """n = 7; 0.66 M parameters."""
    return CifarResNet(7, num_classes)


def resnet56(num_classes=10):
    """n = 9; 0.85 M parameters."""
    return CifarResNet(9, num_classes)


def resnet110(num_classes=10):
    """n = 18; 1.7 M parameters."""
    return CifarResNet(18, num_classes)
