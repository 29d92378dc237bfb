"""Inception v2 / v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture"): torchvision's keys and
counts for v3 (27,161,264 with the auxiliary classifier, 23,834,568 without), a count computed by hand from the
modules' filter tables, Table 1's grid sizes, 5.7 x 10^9 multiply-adds at 299 x 299, the auxiliary head only in
training, gradients of sampled weights."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
from minicnn.models import InceptionOutputs, inception_v2, inception_v3
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, calibrate_bn, check_weight_grads, n_params


def cbn(cin, cout, kh, kw=None):
    """A conv without bias + BatchNorm (scale and shift)."""
    return kh * (kw or kh) * cin * cout + 2 * cout


def block_a(cin, pf, k5):                          # 1x1 64 | 1x1 48 -> k5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | pf
    return cbn(cin, 64, 1) + cbn(cin, 48, 1) + cbn(48, 64, k5) + cbn(cin, 64, 1) + cbn(64, 96, 3) \
        + cbn(96, 96, 3) + cbn(cin, pf, 1)


def block_c(c7):                                   # 768 in, 1 x 7 / 7 x 1 factorised branches
    return cbn(768, 192, 1) + cbn(768, c7, 1) + cbn(c7, c7, 1, 7) + cbn(c7, 192, 7, 1) + cbn(768, c7, 1) \
        + 3 * cbn(c7, c7, 7, 1) + cbn(c7, 192, 1, 7) + cbn(768, 192, 1)


def block_e(cin):
    return cbn(cin, 320, 1) + cbn(cin, 384, 1) + 2 * cbn(384, 384, 1, 3) + cbn(cin, 448, 1) + cbn(448, 384, 3) \
        + 2 * cbn(384, 384, 1, 3) + cbn(cin, 192, 1)


def hand_count(version, aux):
    if version == "v3":
        stem = cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 80, 1) + cbn(80, 192, 3)
        mixed5 = block_a(192, 32, 5) + block_a(256, 64, 5) + block_a(288, 64, 5)
        mixed6 = sum(block_c(c7) for c7 in (128, 160, 160, 192))
    else:
        stem = cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 80, 3) + cbn(80, 192, 3) \
            + cbn(192, 288, 3)
        mixed5 = 3 * block_a(288, 64, 3)
        mixed6 = sum(block_c(c7) for c7 in (128, 160, 160, 160, 192))
    red_b = cbn(288, 384, 3) + cbn(288, 64, 1) + cbn(64, 96, 3) + cbn(96, 96, 3)
    red_d = cbn(768, 192, 1) + cbn(192, 320, 3) + cbn(768, 192, 1) + cbn(192, 192, 1, 7) + cbn(192, 192, 7, 1) \
        + cbn(192, 192, 3)
    head = 2048 * 1000 + 1000
    auxiliary = cbn(768, 128, 1) + cbn(128, 768, 5) + 768 * 1000 + 1000 if aux else 0
    return stem + mixed5 + red_b + mixed6 + red_d + block_e(1280) + block_e(2048) + head + auxiliary


BRANCHES = {
    "A": ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
          "branch_pool"],
    "B": ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
    "C": ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3"] + [f"branch7x7dbl_{i}" for i in range(1, 6)]
         + ["branch_pool"],
    "D": ["branch3x3_1", "branch3x3_2"] + [f"branch7x7x3_{i}" for i in range(1, 5)],
    "E": ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
          "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"],
}


def torchvision_keys():
    """torchvision/models/inception.py's Inception3.state_dict() keys, in order."""
    convs = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    mixed = [("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
             ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("AuxLogits", None), ("Mixed_7a", "D"),
             ("Mixed_7b", "E"), ("Mixed_7c", "E")]
    for name, kind in mixed:
        convs += [f"AuxLogits.{b}" for b in ("conv0", "conv1")] if kind is None else \
            [f"{name}.{b}" for b in BRANCHES[kind]]
    keys = []
    for c in convs:
        keys += [f"{c}.conv.weight"] + bn_keys(f"{c}.bn")
        if c == "AuxLogits.conv1":
            keys += ["AuxLogits.fc.weight", "AuxLogits.fc.bias"]
    return keys + ["fc.weight", "fc.bias"]


def test_v3_keys_and_counts_equal_torchvision():
    m = inception_v3()
    sd = m.state_dict()
    assert list(sd) == torchvision_keys()
    assert sd["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert sd["Mixed_6b.branch7x7_3.conv.weight"].shape == (192, 128, 7, 1)
    assert sd["Mixed_7b.branch3x3_2b.conv.weight"].shape == (384, 384, 3, 1)
    assert m.Conv2d_1a_3x3.bn.eps == 0.001 and sd["AuxLogits.fc.weight"].shape == (1000, 768)
    assert n_params(m) == hand_count("v3", aux=True) == 27_161_264
    assert n_params(inception_v3(aux_logits=False)) == hand_count("v3", aux=False) == 23_834_568


def test_v2_follows_table1():
    m = inception_v2().eval()
    assert n_params(m) == hand_count("v2", aux=True)
    assert m.state_dict()["Mixed_5b.branch5x5_2.conv.weight"].shape == (64, 48, 3, 3)    # Fig. 5: 3x3, not 5x5
    # Table 1's stem at 299 x 299: 149x149x32, 147x147x32, 147x147x64, 73x73x64, 71x71x80, 35x35x192, 35x35x288
    x, shapes = mc.tensor(np.zeros((1, 3, 299, 299))), []
    with mc.no_grad():
        for key in m.stem:
            x = getattr(m, key)(x)
            shapes.append(x.shape[1:])
    assert shapes == [(32, 149, 149), (32, 147, 147), (64, 147, 147), (64, 73, 73), (80, 71, 71), (192, 35, 35),
                      (288, 35, 35)]
    assert [k for k in m.mixed if k.startswith("Mixed_6")] == ["Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                                              "Mixed_6e", "Mixed_6f"]    # 5 x Fig. 6
    with mc.no_grad():
        assert m(mc.tensor(np.zeros((1, 3, 75, 75)))).shape == (1, 1000)


@pytest.mark.slow
def test_v3_at_299_multiply_adds():
    s = summary(inception_v3(num_classes=10), (3, 299, 299))
    assert abs(s.total_mult_adds / 5.7e9 - 1) < 0.05, s.total_mult_adds          # torchvision: 5.71 GFLOPS
    shapes = {r.name: tuple(r.output_shape) for r in s.rows}
    assert shapes["Mixed_5d.branch_pool.conv"] == (1, 64, 35, 35) and shapes["Mixed_6e.branch_pool.conv"] == \
        (1, 192, 17, 17) and shapes["Mixed_7c.branch_pool.conv"] == (1, 192, 8, 8)
    assert "AuxLogits.fc" not in shapes                                              # eval: no auxiliary head


def test_auxiliary_head_on_the_17x17_grid_in_training_only():
    m = inception_v3(num_classes=10)
    head = m.AuxLogits.eval()
    with mc.no_grad():                                   # Fig. 8: 17 x 17 x 768 -> 5x5/3 pool -> 1x1 -> 5x5 -> fc
        assert head(mc.tensor(np.random.default_rng(0).standard_normal((2, 768, 17, 17)))).shape == (2, 10)
    seen = []                                            # the head reads Mixed_6e's output (17 x 17 at 299 x 299)
    m.AuxLogits = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(768, 10))
    m.AuxLogits.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape))
    x = mc.tensor(np.random.default_rng(1).standard_normal((2, 3, 75, 75)))
    with mc.no_grad():
        out = m(x)                                                                   # training mode
        assert isinstance(out, InceptionOutputs) and out.logits.shape == out.aux_logits.shape == (2, 10)
        assert seen == [(2, 768, 3, 3)]
        assert m.eval()(x).shape == (2, 10) and len(seen) == 1                       # eval: not called


def test_small_input_eval_no_graph_and_transform_input():
    m = inception_v3(num_classes=5, aux_logits=False).eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 75, 75))                     # the smallest input
    assert m(mc.tensor(x)).shape == (2, 5)
    assert_no_graph(m, x)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    plain = m(mc.tensor(x * (std / 0.5)[:, None, None] + ((mean - 0.5) / 0.5)[:, None, None])).numpy()
    m.transform_input = True
    np.testing.assert_allclose(m(mc.tensor(x)).numpy(), plain, rtol=1e-4, atol=1e-5)


def test_weight_gradients():
    """v2 is built from the same modules; one family member is checked."""
    m = inception_v3(num_classes=3, aux_logits=False)
    x = np.random.default_rng(2).standard_normal((2, 3, 75, 75))
    calibrate_bn(m, x)
    check_weight_grads(m, x[:1], ["Conv2d_1a_3x3.conv.weight", "Mixed_6b.branch7x7dbl_3.bn.weight",
                                  "Mixed_7c.branch3x3_2a.conv.weight"], per_param=1)
