"""Inception-v4 and Inception-ResNet-v1/v2 (Szegedy et al. 2016): timm's keys and counts (inception_v4
42,679,816; inception_resnet_v2 55,843,464), Inception-ResNet-v1's count by hand from Figs. 10-14, Table 1's
(k, l, m, n) in Reduction-A, scaled residuals, 12.3 / 13.2 x 10^9 multiply-adds at 299 x 299, gradients."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.models import inception_resnet_v1, inception_resnet_v2, inception_v4
from minicnn.models.inception_resnet import Block35
from minicnn.summary import summary
from model_checks import assert_no_graph, calibrate_bn, check_weight_grads, n_params


def cbn(cin, cout, kh, kw=None):
    return kh * (kw or kh) * cin * cout + 2 * cout


def lin(cin, cout):                                   # the residual blocks' 1x1 convolution, with a bias
    return cin * cout + cout


def irv1_count():
    """Figs. 14 (stem), 10 (A), 7 with (k, l, m, n) = (192, 192, 256, 384), 11 (B), 12, 13 (C); fc 1792 -> 1000."""
    stem = cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 80, 1) + cbn(80, 192, 3) + cbn(192, 256, 3)
    a = cbn(256, 32, 1) + cbn(256, 32, 1) + cbn(32, 32, 3) + cbn(256, 32, 1) + 2 * cbn(32, 32, 3) + lin(96, 256)
    red_a = cbn(256, 384, 3) + cbn(256, 192, 1) + cbn(192, 192, 3) + cbn(192, 256, 3)
    b = cbn(896, 128, 1) + cbn(896, 128, 1) + cbn(128, 128, 1, 7) + cbn(128, 128, 7, 1) + lin(256, 896)
    red_b = 3 * cbn(896, 256, 1) + cbn(256, 384, 3) + cbn(256, 256, 3) + cbn(256, 256, 3) + cbn(256, 256, 3)
    c = cbn(1792, 192, 1) + cbn(1792, 192, 1) + cbn(192, 192, 1, 3) + cbn(192, 192, 3, 1) + lin(384, 1792)
    return stem + 5 * a + red_a + 10 * b + red_b + 5 * c + lin(1792, 1000)


def test_inception_v4_keys_and_count_equal_timm():
    m = inception_v4()
    sd = m.state_dict()
    keys = list(sd)
    assert keys[:2] == ["features.0.conv.weight", "features.0.bn.weight"] and keys[-2:] == [
        "last_linear.weight", "last_linear.bias"]
    assert sd["features.3.conv.conv.weight"].shape == (96, 64, 3, 3)                  # Mixed3a
    assert sd["features.4.branch1.1.conv.weight"].shape == (64, 64, 1, 7)             # Mixed4a
    assert sd["features.6.branch3.1.conv.weight"].shape == (96, 384, 1, 1)            # Inception-A
    # Reduction-A, (k, l, m, n) = (192, 224, 256, 384)
    assert [sd[f"features.10.{b}.conv.weight"].shape[0] for b in ("branch1.0", "branch1.1", "branch1.2",
                                                                   "branch0")] == [192, 224, 256, 384]
    assert sd["features.17.branch2.4.conv.weight"].shape == (256, 224, 1, 7)          # the 7th Inception-B
    assert sd["features.21.branch2_3b.conv.weight"].shape == (256, 512, 3, 1)         # the 3rd Inception-C
    assert "features.22.branch0.conv.weight" not in sd
    assert n_params(m) == 42_679_816


def test_inception_resnet_v2_keys_and_count_equal_timm():
    m = inception_resnet_v2()
    sd = m.state_dict()
    assert [k for k in sd if k.endswith("conv2d.weight")][::10] == [
        "repeat.0.conv2d.weight", "repeat_1.0.conv2d.weight", "repeat_1.10.conv2d.weight",
        "repeat_2.0.conv2d.weight"]
    assert sd["repeat_2.8.conv2d.bias"].shape == (2080,) and "repeat_2.9.conv2d.weight" not in sd
    assert [sd[f"mixed_6a.{b}.conv.weight"].shape[0] for b in ("branch1.0", "branch1.1", "branch1.2",
                                                                "branch0")] == [256, 256, 384, 384]
    assert sd["conv2d_7b.conv.weight"].shape == (1536, 2080, 1, 1) and sd["classif.weight"].shape == (1000, 1536)
    assert m.block8.scale == 1.0 and not m.block8.relu and m.repeat[0].scale == 0.17
    assert n_params(m) == 55_843_464


def test_inception_resnet_v1_count_by_hand():
    m = inception_resnet_v1()
    assert n_params(m) == irv1_count()
    assert [m.mixed_6a.branch1[i].conv.out_channels for i in range(3)] + [m.mixed_6a.branch0.conv.out_channels] \
        == [192, 192, 256, 384]


def test_residual_block_is_scaled_sum_then_relu():
    mc.manual_seed(1)
    blk = Block35(16, 4, 4, 4, scale=0.25).eval().double()
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 16, 5, 5)), dtype=np.float64)
    with mc.no_grad():
        branches = mc.concat([blk.branch0(x), blk.branch1(x), blk.branch2(x)], dim=1)
        expected = np.maximum(blk.conv2d(branches).numpy() * 0.25 + x.numpy(), 0)
        np.testing.assert_allclose(blk(x).numpy(), expected, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("factory, published", [(inception_v4, 12.3e9), (inception_resnet_v2, 13.2e9)])
def test_multiply_adds_at_299(factory, published):
    """timm's figures: 12.3 and 13.2 GMACs at 299 x 299; the grid goes 35 -> 17 -> 8."""
    s = summary(factory(), (3, 299, 299))
    assert abs(s.total_mult_adds / published - 1) < 0.05, s.total_mult_adds
    assert s.rows[-1].output_shape == (1, 1000)
    assert any(tuple(r.output_shape)[1:] == (1536, 8, 8) for r in s.rows)


@pytest.mark.parametrize("factory", [inception_v4, inception_resnet_v1, inception_resnet_v2])
def test_small_input_and_no_graph(factory):
    m = factory(num_classes=4).eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 75, 75))
    assert m(mc.tensor(x)).shape == (1, 4)
    assert_no_graph(m, x)


def test_weight_gradients():
    """Inception-ResNet-v1: the stem, a scaled residual block, the last block without ReLU (Inception-v4 is built
    from the same convolutions, pools and concatenations)."""
    m = inception_resnet_v1(num_classes=3)
    names = ["conv2d_4b.conv.weight", "repeat_1.3.conv2d.weight", "block8.branch1.2.bn.bias"]
    x = np.random.default_rng(2).standard_normal((4, 3, 75, 75))        # the last BatchNorms see 4 values
    calibrate_bn(m, x)
    check_weight_grads(m, x[:1], names, per_param=1)
