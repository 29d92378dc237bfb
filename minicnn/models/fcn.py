"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): a classifier backbone with its fully connected layers
as convolutions (fc6, fc7; see ``convolutionize``), a 1 x 1 ``score_fr`` layer giving coarse class scores at stride
32, and transposed convolutions ("deconvolution", §3.3) initialised to bilinear interpolation that upsample them to
the input's size. FCN-32s upsamples score_fr 32x at once; FCN-16s first adds 1 x 1 scores from pool4 (stride 16),
FCN-8s also from pool3 (stride 8): the skip architecture of §4.2 (Fig. 3).

As in the paper the intermediate 2x upsamplings are learned from their bilinear start and the final one is fixed to
bilinear interpolation (``freeze_upsampling="final"``; True freezes all, False none), and the skip score layers
start at zero, so at the start the skips add nothing to the coarse prediction. Instead of the paper's padding of 100
and crops (for arbitrary input sizes), each transposed convolution pads by half its stride, so sizes divisible by 32
come out exactly aligned.

Backbones: ``"small"`` (default), a VGG-style network sized for 64 x 64 MNISTSegmentation images (two 3 x 3
convolutions per stage, 16-32-64-128-128 channels, each followed by BatchNorm as in torchvision's ``vgg16_bn``; 2 x
2 pool5, a 3 x 3 fc6 of 256, 1 x 1 fc7); ``"vgg16"``, the paper's: torchvision's ``vgg16`` features (keys
``features.N`` as torchvision, so converted weights load) and fc6 a 7 x 7 convolution with 4096 filters (padded by
3), fc7 1 x 1, which take ``vgg16``'s classifier.0 / classifier.3 weights reshaped (``load_vgg16_classifier``).
"""
import numpy as np

from minicnn import functional as F
from minicnn import nn
from minicnn.models._input import IMAGENET_STATS, MNIST_SEGMENTATION_STATS, Normalize
from minicnn.models.vgg import cfgs, make_layers

__all__ = ["FCN", "bilinear_kernel", "fcn32s", "fcn16s", "fcn8s", "load_vgg16_classifier"]

SMALL = [16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"]   # 5 pools: stride 32


def bilinear_kernel(channels, kernel_size):
    """(channels, channels, k, k) weights of a transposed convolution that upsamples each channel by bilinear
    interpolation (factor (k + 1) // 2; channel c feeds only channel c): the FCN authors' ``upsample_filt``."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.arange(kernel_size)
    filt = 1 - np.abs(og - center) / factor
    w = np.zeros((channels, channels, kernel_size, kernel_size), np.float32)
    w[np.arange(channels), np.arange(channels)] = np.outer(filt, filt)
    return w


def _upsample(channels, factor, frozen):
    """Transposed convolution upsampling by ``factor`` (kernel 2 * factor, padding factor / 2), bilinear."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    up.weight.data = bilinear_kernel(channels, 2 * factor)
    up.weight.requires_grad = not frozen
    return up


class FCN(nn.Module):
    """x (N, C, H, W) in [0, 1], H and W divisible by 32 -> logits (N, num_classes, H, W).  ``stride`` 32, 16 or
    8 (FCN-32s, -16s, -8s)."""
    def __init__(self, stride=8, num_classes=11, in_channels=1, backbone="small", freeze_upsampling="final",
                 dropout=0.5):
        super().__init__()
        if stride not in (32, 16, 8):
            raise ValueError(f"FCN: stride must be 32, 16 or 8, got {stride}")
        if backbone not in ("small", "vgg16"):
            raise ValueError(f"FCN: backbone must be 'small' or 'vgg16', got {backbone!r}")
        cfg, fc, k6 = (SMALL, 256, 3) if backbone == "small" else (cfgs["D"], 4096, 7)
        self.stride = stride
        mean, std = MNIST_SEGMENTATION_STATS if in_channels == 1 else IMAGENET_STATS
        self.normalize = Normalize(mean * in_channels if len(mean) != in_channels else mean,
                                   std * in_channels if len(std) != in_channels else std)
        self.features = make_layers(cfg, batch_norm=backbone == "small")
        if in_channels != 3:                              # make_layers builds for RGB; give conv1 our channels
            self.features._modules["0"] = nn.Conv2d(in_channels, cfg[0], 3, padding=1)
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        self.pool3, self.pool4 = pools[2], pools[3]       # indices in features of the stride-8 and -16 pools
        c3, c4, c5 = (_channels_before(self.features, p) for p in pools[2:5])
        self.fc6 = nn.Conv2d(c5, fc, k6, padding=k6 // 2)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.score_fr = nn.Conv2d(fc, num_classes, 1)
        freeze_all, freeze_final = freeze_upsampling is True, freeze_upsampling in (True, "final")
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(c4, num_classes, 1)
            self.upscore2 = _upsample(num_classes, 2, freeze_all)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(c3, num_classes, 1)
            self.upscore_pool4 = _upsample(num_classes, 2, freeze_all)
        self.upscore = _upsample(num_classes, stride, freeze_final)
        self._init_weights()

    def _init_weights(self):
        """He normal for the backbone and fc6/fc7, score_fr N(0, 0.01), the skip scores zero (§4.2: "initialized
        to zero"), zero biases; the upsamplings keep their bilinear weights."""
        for m in list(self.features.modules()) + [self.fc6, self.fc7]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.score_fr.weight, 0.0, 0.01)
        nn.init.zeros_(self.score_fr.bias)
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)

    def forward(self, x):
        H, W = x.shape[-2:]
        if H % 32 or W % 32:
            raise ValueError(f"FCN: input {H}x{W} must be divisible by 32")
        x = self.normalize(x)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.pool3:
                pool3 = x                                  # (N, c3, H / 8, W / 8)
            elif i == self.pool4:
                pool4 = x                                  # (N, c4, H / 16, W / 16)
        x = self.drop6(F.relu(self.fc6(x)))
        x = self.drop7(F.relu(self.fc7(x)))
        score = self.score_fr(x)                           # (N, K, H / 32, W / 32)
        if self.stride <= 16:
            score = self.upscore2(score) + self.score_pool4(pool4)          # stride 16
        if self.stride == 8:
            score = self.upscore_pool4(score) + self.score_pool3(pool3)     # stride 8
        return self.upscore(score)                         # (N, K, H, W)


def _channels_before(features, index):
    return [m for m in list(features)[:index] if isinstance(m, nn.Conv2d)][-1].out_channels


def load_vgg16_classifier(fcn, vgg_state):
    """Copy a ``vgg16`` state dict's features and fully connected layers into an FCN with ``backbone="vgg16"``:
    classifier.0 (4096, 25088) -> fc6 (4096, 512, 7, 7), classifier.3 -> fc7 (4096, 4096, 1, 1) (§3.1)."""
    state = fcn.state_dict()
    for k, v in vgg_state.items():
        if k.startswith("features."):
            state[k] = v
    state["fc6.weight"] = np.asarray(vgg_state["classifier.0.weight"]).reshape(state["fc6.weight"].shape)
    state["fc6.bias"] = vgg_state["classifier.0.bias"]
    state["fc7.weight"] = np.asarray(vgg_state["classifier.3.weight"]).reshape(state["fc7.weight"].shape)
    state["fc7.bias"] = vgg_state["classifier.3.bias"]
    fcn.load_state_dict(state)
    return fcn


def fcn32s(num_classes=11, in_channels=1, backbone="small", freeze_upsampling="final"):
    """FCN-32s: score_fr upsampled 32x."""
    return FCN(32, num_classes, in_channels, backbone, freeze_upsampling)


def fcn16s(num_classes=11, in_channels=1, backbone="small", freeze_upsampling="final"):
    """FCN-16s: + pool4 scores, then 16x."""
    return FCN(16, num_classes, in_channels, backbone, freeze_upsampling)


def fcn8s(num_classes=11, in_channels=1, backbone="small", freeze_upsampling="final"):
    """FCN-8s: + pool4 and pool3 scores, then 8x."""
    return FCN(8, num_classes, in_channels, backbone, freeze_upsampling)
