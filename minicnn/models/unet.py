"""U-Net (Ronneberger, Fischer & Brox 2015): a contracting path of 3 x 3 convolutions and 2 x 2 max pools that
doubles the channels at each of ``depth`` levels, an expanding path of 2 x 2 up-convolutions (transposed, stride
2) that halve them, each followed by concatenation with the contracting path's map of the same size (the skip)
and two 3 x 3 convolutions, then a 1 x 1 convolution to the class scores.

Differences from the paper, as in most reimplementations: the 3 x 3 convolutions pad by 1, so the output has the
input's size and no cropping is needed (the paper's were unpadded: 572 -> 388); and BatchNorm after each
convolution (``batch_norm=True``; Ioffe & Szegedy 2015, not in the paper), which makes small U-Nets train in
minutes.  ``base_channels=64, depth=4`` is the paper's width and depth (a 572 x 572 tile would need unpadded
convolutions to match its sizes).  Height and width must be divisible by 2^depth.
"""
import minicnn as mc
from minicnn import nn
from minicnn.models._input import MNIST_SEGMENTATION_STATS, Normalize

__all__ = ["UNet", "DoubleConv", "unet"]


class DoubleConv(nn.Sequential):
    """(3 x 3 conv, [BatchNorm], ReLU) twice; the size is kept."""
    def __init__(self, in_channels, out_channels, batch_norm=True):
        layers = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(nn.Module):
    """x (N, in_channels, H, W) in [0, 1] -> logits (N, num_classes, H, W).  ``down.i`` are the contracting
    blocks (``base_channels * 2^i`` channels, i = 0..depth; the last is the bottom), ``up.i`` the up-convolutions
    and ``decoder.i`` the blocks after each concatenation, ``head`` the 1 x 1 classifier."""
    def __init__(self, in_channels=1, num_classes=11, base_channels=16, depth=3, batch_norm=True,
                 mean=None, std=None):
        super().__init__()
        if depth < 1:
            raise ValueError(f"unet: depth must be >= 1, got {depth}")
        if mean is None:
            mean, std = MNIST_SEGMENTATION_STATS if in_channels == 1 else ((0.5,) * in_channels, (0.5,) * in_channels)
        self.depth = depth
        self.normalize = Normalize(mean, std)
        widths = [base_channels * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0], batch_norm)] +
                                  [DoubleConv(widths[i - 1], widths[i], batch_norm) for i in range(1, depth + 1)])
        self.pool = nn.MaxPool2d(2, 2)
        # expanding path, from the bottom up: up.0 takes the bottom map (widths[depth]) to widths[depth - 1]
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2)
                                 for i in range(depth, 0, -1)])
        self.decoder = nn.ModuleList([DoubleConv(2 * widths[i - 1], widths[i - 1], batch_norm)
                                      for i in range(depth, 0, -1)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self._init_weights()

    def _init_weights(self):
        """He normal (fan_in; He et al. 2015 — the paper draws N(0, sqrt(2 / N)) too, §3) for the convolutions,
        zero biases, BatchNorm 1 and 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        H, W = x.shape[-2:]
        if H % 2 ** self.depth or W % 2 ** self.depth:
            raise ValueError(f"unet: input {H}x{W} must be divisible by 2^depth = {2 ** self.depth}")
        x = self.normalize(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))       # (N, base * 2^i, H / 2^i, W / 2^i)
            skips.append(x)
        x = skips.pop()                                    # the bottom of the U
        for up, block in zip(self.up, self.decoder):
            x = block(mc.concat([skips.pop(), up(x)], dim=1))   # skip first, then the upsampled map
        return self.head(x)


def unet(in_channels=1, num_classes=11, base_channels=16, depth=3, batch_norm=True):
    """U-Net for MNISTSegmentation by default (1 channel, 11 classes, 3 levels for 64 x 64 images: 482,619
    parameters); ``base_channels=64, depth=4`` is the paper's width and depth."""
    return UNet(in_channels, num_classes, base_channels, depth, batch_norm)
