"""The weight initialisation that the ResNet family and MobileNet share (torchvision's scheme)."""
from minicnn import nn


def he_init_(model):
    """Every Conv2d He-normal with fan_out (He et al. 2015, §2.2), its bias (if any) 0; every BatchNorm2d scale 1,
    shift 0.  In place; returns ``model``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
