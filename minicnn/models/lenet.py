"""LeNet-5 (LeCun, Bottou, Bengio, Haffner: "Gradient-based learning applied to document recognition", 1998)."""
import minicnn.functional as F
import minicnn.nn as nn

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeCun et al. (1998) with ReLU and max pooling; input (N, 1, 28, 28)."""
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)

    def forward(self, x):                                   # (N, 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)          # (N, 6, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)          # (N, 16, 4, 4)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))     # (N, 120)
        return self.fc3(F.relu(self.fc2(x)))                # (N, num_classes)


def lenet5(num_classes=10):
    """LeNet-5 for 1 x 28 x 28 images (MNIST, Fashion-MNIST): 44 426 parameters with 10 classes."""
    return LeNet5(num_classes)
