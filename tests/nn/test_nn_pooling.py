"""Pooling, resampling and RoI layers: PyTorch's defaults, attributes and repr; forward equals the functional op;
no parameters or state; gradients flow through a Sequential."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
import minicnn.nn as nn
from helpers import DEVICES, distinct_values


@pytest.mark.parametrize("module, text", [
    (nn.MaxPool2d(2), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"),
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)"),
    (nn.AvgPool2d((2, 3)), "AvgPool2d(kernel_size=(2, 3), stride=(2, 3), padding=0)"),
    (nn.AdaptiveAvgPool2d((None, 7)), "AdaptiveAvgPool2d(output_size=(None, 7))"),
    (nn.AdaptiveMaxPool2d(1), "AdaptiveMaxPool2d(output_size=1)"),
    (nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0, mode='nearest')"),
    (nn.Upsample(size=(4, 6)), "Upsample(size=(4, 6), mode='nearest')"),
    (nn.PixelShuffle(2), "PixelShuffle(upscale_factor=2)"),
    (nn.PixelUnshuffle(2), "PixelUnshuffle(downscale_factor=2)"),
    (nn.RoIPool((7, 7), 0.0625), "RoIPool(output_size=(7, 7), spatial_scale=0.0625)"),
])
def test_repr_and_no_state(module, text):
    assert repr(module) == text
    assert list(module.parameters()) == [] and module.state_dict() == {}


@pytest.mark.parametrize("device", DEVICES)
def test_layers_equal_functional_ops(device):
    x = mc.tensor(distinct_values((2, 4, 6, 6), seed=1), device=device)
    cases = [
        (nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True), F.max_pool2d(x, 3, 2, 1, 1, True)),
        (nn.AvgPool2d(3, 2, 1, True, False, None), F.avg_pool2d(x, 3, 2, 1, True, False)),
        (nn.AvgPool2d(2, divisor_override=3), F.avg_pool2d(x, 2, divisor_override=3)),
        (nn.AdaptiveAvgPool2d((2, 3)), F.adaptive_avg_pool2d(x, (2, 3))),
        (nn.AdaptiveMaxPool2d(4), F.adaptive_max_pool2d(x, 4)),
        (nn.Upsample(scale_factor=2), F.interpolate(x, scale_factor=2)),
        (nn.PixelUnshuffle(2), F.pixel_unshuffle(x, 2)),
        (nn.PixelShuffle(2), F.pixel_shuffle(x, 2)),
    ]
    for module, expected in cases:
        np.testing.assert_array_equal(module(x).numpy(), expected.numpy(), err_msg=repr(module))
    rois = np.array([[0, 0, 0, 11, 11], [1, 2, 2, 8, 6]])
    np.testing.assert_array_equal(nn.RoIPool(3, 0.5)(x, rois).numpy(), F.roi_pool(x, rois, 3, 0.5).numpy())


def test_return_indices_layers():
    x = mc.tensor(distinct_values((1, 2, 4, 4), seed=2))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert y.shape == idx.shape == (1, 2, 2, 2) and idx.dtype == np.int64
    y, idx = nn.AdaptiveMaxPool2d(1, return_indices=True)(x)
    assert idx.numpy().ravel().tolist() == x.numpy().reshape(2, -1).argmax(axis=1).tolist()


def test_gradients_flow_through_a_pooling_stack():
    model = nn.Sequential(nn.MaxPool2d(2), nn.Upsample(scale_factor=2), nn.AvgPool2d(3, 1, 1),
                          nn.PixelUnshuffle(2), nn.AdaptiveAvgPool2d(1))
    x = distinct_values((2, 1, 4, 4), seed=3)
    assert model(mc.tensor(x)).shape == (2, 4, 1, 1)
    mc.gradcheck(lambda t: model(t), [x])


def test_stride_defaults_to_kernel_size_and_bad_arguments_fail_at_call():
    assert nn.MaxPool2d((2, 3)).stride == (2, 3) and nn.AvgPool2d(3, stride=1).stride == 1
    with pytest.raises(ValueError, match="max_pool2d: kernel_size \\(5, 5\\) exceeds input 4x4"):
        nn.MaxPool2d(5)(mc.tensor(np.zeros((1, 1, 4, 4))))
