"""The two blocks torchvision keeps in ``torchvision.ops`` and EfficientNet/MobileNetV3 build on:
squeeze-and-excitation (Hu et al. 2018) and stochastic depth (Huang et al. 2016)."""
from minicnn import functional as F
from minicnn.nn.activation import ReLU, Sigmoid
from minicnn.nn.conv import Conv2d
from minicnn.nn.module import Module
from minicnn.nn.pooling import AdaptiveAvgPool2d

__all__ = ["SqueezeExcitation", "StochasticDepth"]


class SqueezeExcitation(Module):
    """x * scale_activation(fc2(activation(fc1(mean over H, W of x)))), fc1/fc2 being 1 x 1 convolutions with
    biases: ``input_channels -> squeeze_channels -> input_channels`` (Hu et al. 2018, Fig. 2).  x (N, C, H, W)
    -> (N, C, H, W), each channel rescaled by a gate in (0, 1).  Keys ``fc1.*``, ``fc2.*`` as torchvision's."""
    def __init__(self, input_channels, squeeze_channels, activation=ReLU, scale_activation=Sigmoid):
        super().__init__()
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = Conv2d(squeeze_channels, input_channels, 1)
        self.activation, self.scale_activation = activation(), scale_activation()

    def forward(self, input):
        scale = self.fc2(self.activation(self.fc1(self.avgpool(input))))     # (N, C, 1, 1)
        return self.scale_activation(scale) * input


class StochasticDepth(Module):
    """``F.stochastic_depth(input, p, mode, self.training)``: drops a residual branch per sample ("row") or for
    the whole batch ("batch") with probability p in training; the identity in eval."""
    def __init__(self, p, mode):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"StochasticDepth: drop probability p has to be between 0 and 1, got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"StochasticDepth: mode has to be either 'batch' or 'row', got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, input):
        return F.stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
