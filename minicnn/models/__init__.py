"""Model families, one file per family; ``get_model(name, **kwargs)`` finds a factory by its name."""
import inspect

from minicnn.models.lenet import LeNet5, lenet5
from minicnn.models.alexnet import AlexNet, alexnet, alexnet_paper, zfnet
from minicnn.models.vgg import (VGG, vgg11, vgg11_bn, vgg11_lrn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg16_c,
                                vgg19, vgg19_bn)
from minicnn.models.nin import NIN, nin, nin_cifar
from minicnn.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from minicnn.models.resnet import (ResNet, resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d,
                                   wide_resnet50_2)
from minicnn.models.cifar_resnet import CifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110
from minicnn.models.preact_resnet import PreActResNet, preact_resnet18, preact_resnet110, preact_resnet164
from minicnn.models.densenet import DenseNet, densenet121, densenet161, densenet169, densenet201, densenet264
from minicnn.models.mobilenet import MobileNetV1, mobilenet_v1
from minicnn.models.inception import Inception3, InceptionOutputs, inception_v2, inception_v3
from minicnn.models.inception_resnet import (InceptionResNetV1, InceptionResNetV2, InceptionV4, inception_resnet_v1,
                                             inception_resnet_v2, inception_v4)
from minicnn.models.xception import Xception, xception
from minicnn.models.mobilenetv2 import MobileNetV2, mobilenet_v2
from minicnn.models.efficientnet import (EfficientNet, efficientnet_b0, efficientnet_b1, efficientnet_b2,
                                         efficientnet_b3, efficientnet_b4, efficientnet_b5, efficientnet_b6,
                                         efficientnet_b7)
from minicnn.models.darknet import Darknet19, Darknet53, darknet19, darknet53
from minicnn.models.convolutionize import convolutionize
from minicnn.models.yolo import YOLOv1, YOLOv2, YOLOv3, yolo_v1, yolo_v2, yolo_v3
from minicnn.models.rcnn import FastRCNN, FasterRCNN, fast_rcnn, faster_rcnn
from minicnn.models.fcn import FCN, fcn8s, fcn16s, fcn32s
from minicnn.models.unet import UNet, unet
from minicnn.models.embedding import EmbeddingNet, embedding_net
from minicnn.models.detection import (FastRCNNHead, YOLOv2Head, decode_boxes, encode_boxes, fast_rcnn_loss,
                                      yolo_decode, yolo_loss, yolo_postprocess)

__all__ = [
    "get_model", "list_models", "convolutionize",
    "LeNet5", "lenet5",
    "AlexNet", "alexnet", "alexnet_paper", "zfnet",
    "VGG", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
    "vgg19_bn",
    "NIN", "nin", "nin_cifar",
    "GoogLeNet", "GoogLeNetOutputs", "googlenet",
    "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
    "CifarResNet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "PreActResNet", "preact_resnet18", "preact_resnet110", "preact_resnet164",
    "DenseNet", "densenet121", "densenet161", "densenet169", "densenet201", "densenet264",
    "MobileNetV1", "mobilenet_v1",
    "Inception3", "InceptionOutputs", "inception_v2", "inception_v3",
    "InceptionV4", "InceptionResNetV1", "InceptionResNetV2", "inception_v4", "inception_resnet_v1",
    "inception_resnet_v2",
    "Xception", "xception",
    "MobileNetV2", "mobilenet_v2",
    "EfficientNet", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "Darknet19", "Darknet53", "darknet19", "darknet53",
    "FastRCNNHead", "fast_rcnn_loss", "encode_boxes", "decode_boxes",
    "YOLOv2Head", "yolo_decode", "yolo_postprocess", "yolo_loss",
    "YOLOv1", "YOLOv2", "YOLOv3", "yolo_v1", "yolo_v2", "yolo_v3",
    "FastRCNN", "FasterRCNN", "fast_rcnn", "faster_rcnn",
    "FCN", "fcn32s", "fcn16s", "fcn8s", "UNet", "unet", "EmbeddingNet", "embedding_net",
]

_DETECTION = (                 # detection helpers, not model factories
    "fast_rcnn_loss", "encode_boxes", "decode_boxes", "yolo_decode", "yolo_postprocess", "yolo_loss")


def list_models():
    """Names of the model factories exported here: the lowercase functions in ``__all__`` (``lenet5``, ...)."""
    return sorted(n for n in __all__ if n.islower() and inspect.isfunction(globals()[n])
                  and n not in ("get_model", "list_models", "convolutionize") + _DETECTION)


def get_model(name, **kwargs):
    """``get_model("lenet5", num_classes=10)``: call the factory ``name`` (case and '-' insensitive)."""
    key = name.lower().replace("-", "_")
    if key not in list_models():
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return globals()[key](**kwargs)
