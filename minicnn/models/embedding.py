"""``embedding_net``: a small convolutional network mapping an image to a D-dimensional embedding, trained so that
distances between embeddings say whether two images show the same thing (Siamese networks: Bromley et al. 1993,
Chopra, Hadsell & LeCun 2005; the triplet loss: Schroff, Kalenichenko & Philbin 2015, FaceNet).

Three blocks of (3 x 3 conv, BatchNorm, ReLU, 2 x 2 max pool) with 32, 64 and 128 channels, global average
pooling, then a linear layer to ``embedding_dim``; like FaceNet (§3) the embedding is scaled to unit length
(``normalize=True``), so distances lie in [0, 2] and one margin suits every run.
"""
from minicnn import nn
from minicnn.models._input import MNIST_STATS, Normalize

__all__ = ["EmbeddingNet", "embedding_net"]


class EmbeddingNet(nn.Module):
    """x (N, in_channels, H, W) in [0, 1] -> (N, embedding_dim); any H, W >= 8."""
    def __init__(self, embedding_dim=32, in_channels=1, widths=(32, 64, 128), normalize=True, mean=None, std=None):
        super().__init__()
        if mean is None:
            mean, std = MNIST_STATS if in_channels == 1 else ((0.5,) * in_channels, (0.5,) * in_channels)
        self.normalize = Normalize(mean, std)
        layers, c = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, 2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, embedding_dim)
        self.unit = normalize
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(self.normalize(x)))          # (N, C, 1, 1)
        x = self.fc(x.reshape(x.shape[0], -1))                      # (N, D)
        if self.unit:
            x = x / (((x * x).sum(axis=1, keepdims=True) + 1e-12) ** 0.5)
        return x


def embedding_net(embedding_dim=32, in_channels=1, normalize=True, num_classes=None):
    """EmbeddingNet with D = ``embedding_dim`` (``num_classes`` is accepted and ignored, so the training loop can
    build every model alike)."""
    return EmbeddingNet(embedding_dim, in_channels, normalize=normalize)
