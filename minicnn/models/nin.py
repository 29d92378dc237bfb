"""Network in Network (Lin, Chen & Yan 2014): each "mlpconv" layer is a convolution followed by a small
multilayer perceptron slid over the positions, i.e. two 1 x 1 convolutions (§3.1); the last mlpconv emits one
map per class and global average pooling replaces the fully connected head (§3.2)."""
import minicnn.nn as nn

__all__ = ["NIN", "mlpconv", "nin", "nin_cifar"]


def mlpconv(in_channels, channels, kernel_size, stride=1, padding=0):
    """conv k x k -> ReLU -> conv 1 x 1 -> ReLU -> conv 1 x 1 -> ReLU; ``channels`` = the three widths."""
    c1, c2, c3 = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size, stride=stride, padding=padding), nn.ReLU(inplace=True),
        nn.Conv2d(c1, c2, 1), nn.ReLU(inplace=True),
        nn.Conv2d(c2, c3, 1), nn.ReLU(inplace=True))


class NIN(nn.Module):
    """``features`` (mlpconv blocks, pools, dropout) ending in num_classes maps -> global average -> logits."""
    def __init__(self, features):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))               # (N, num_classes, 1, 1)
        return x.reshape(x.shape[0], -1)


def nin(num_classes=1000, dropout=0.5):
    """The ImageNet model of the authors' Caffe release: four mlpconv layers; input (N, 3, 224, 224)."""
    return NIN(nn.Sequential(
        mlpconv(3, (96, 96, 96), 11, stride=4),                           # 54 x 54
        nn.MaxPool2d(3, stride=2, ceil_mode=True),                        # 27 x 27
        mlpconv(96, (256, 256, 256), 5, padding=2),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),                        # 13 x 13
        mlpconv(256, (384, 384, 384), 3, padding=1),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),                        # 6 x 6
        nn.Dropout(dropout),
        mlpconv(384, (1024, 1024, num_classes), 3, padding=1)))


def nin_cifar(num_classes=10, dropout=0.5):
    """The CIFAR-10 model of §4.2: three mlpconv layers (192-160-96, 192-192-192, 192-192-classes) with dropout
    between them; input (N, 3, 32, 32)."""
    return NIN(nn.Sequential(
        mlpconv(3, (192, 160, 96), 5, padding=2),
        nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Dropout(dropout),   # 16 x 16
        mlpconv(96, (192, 192, 192), 5, padding=2),
        nn.AvgPool2d(3, stride=2, ceil_mode=True), nn.Dropout(dropout),   # 8 x 8
        mlpconv(192, (192, 192, num_classes), 3, padding=1)))
