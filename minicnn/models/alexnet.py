"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), torchvision's single-column variant, and ZFNet (Zeiler &
Fergus 2013).  All three share one layout, ``features`` -> ``avgpool`` (6 x 6) -> ``classifier``, so the keys read
like torchvision's: ``features.0.weight`` ... ``classifier.6.bias``."""
import minicnn.nn as nn

__all__ = ["AlexNet", "alexnet", "alexnet_paper", "zfnet"]


def _lrn():
    # The paper's b = a / (k + alpha * sum a^2)^beta with n=5, k=2, alpha=1e-4, beta=0.75 (§3.3).  PyTorch's
    # LocalResponseNorm divides alpha by the window size, so alpha = 5 * 1e-4 here gives the paper's formula.
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    """Convolutional ``features`` ending in 256 x 6 x 6, then three fully connected layers with dropout (§4.2)
    before the first two.  x (N, 3, H, W) -> logits (N, num_classes)."""
    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))      # identity at the native input size
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))               # (N, 256, 6, 6)
        return self.classifier(x.reshape(x.shape[0], -1))


def _init_paper(model, bias_one):
    """§5: weights ~ N(0, 0.01); biases 1 in the layers numbered in ``bias_one`` (so ReLUs start active), else 0."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for i, m in enumerate(layers):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.constant_(m.bias, 1.0 if i in bias_one else 0.0)
    return model


def alexnet(num_classes=1000, dropout=0.5):
    """torchvision's AlexNet (64-192-384-256-256, from Krizhevsky 2014); input (N, 3, 224, 224); 61,100,840
    parameters.  PyTorch's default initialisation, as torchvision."""
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),         # 55 x 55
        nn.MaxPool2d(3, stride=2),                                                 # 27 x 27
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),                                                 # 13 x 13
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2))                                                 # 6 x 6
    return AlexNet(features, num_classes, dropout)


def alexnet_paper(num_classes=1000, dropout=0.5):
    """The 2012 network (Fig. 2): 96-256-384-384-256 filters, LRN after conv1 and conv2, overlapping pooling;
    the two-GPU split is ``groups=2`` in conv2, conv4 and conv5 (conv3 and the fully connected layers see both
    halves).  Input (N, 3, 227, 227): the 224 in the paper does not give its 55 x 55."""
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), _lrn(),           # 55 x 55
        nn.MaxPool2d(3, stride=2),                                                 # 27 x 27
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), _lrn(),
        nn.MaxPool2d(3, stride=2),                                                 # 13 x 13
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2))                                                 # 6 x 6
    return _init_paper(AlexNet(features, num_classes, dropout), bias_one={1, 3, 4, 5, 6})


def zfnet(num_classes=1000, dropout=0.5):
    """Zeiler & Fergus (2013), Fig. 3: AlexNet with a 7 x 7 stride-2 first layer (96 filters) and a stride-2
    conv2, which keep more of the image's detail; input (N, 3, 224, 224).  Pooling rounds up, as in their Caffe
    setup, which gives the figure's 55, 13 and 6."""
    features = nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True),          # 110 x 110
        nn.MaxPool2d(3, stride=2, ceil_mode=True), _lrn(),                         # 55 x 55
        nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True),                    # 26 x 26
        nn.MaxPool2d(3, stride=2, ceil_mode=True), _lrn(),                         # 13 x 13
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2))                                                 # 6 x 6
    return _init_paper(AlexNet(features, num_classes, dropout), bias_one=set())
