"""GoogLeNet: the paper's (Szegedy et al. 2015, Table 1) and torchvision's BatchNorm variant (keys, counts);
auxiliary classifiers only in training; 1.5 x 10^9 multiply-adds at 224 x 224."""
import numpy as np

import minicnn as mc
from minicnn.models import GoogLeNetOutputs, googlenet
from minicnn.summary import summary
from model_checks import assert_no_graph, bn_keys, check_weight_grads, n_params

# Table 1: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
TABLE1 = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
          "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
          "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
          "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
          "5b": (832, 384, 192, 384, 48, 128, 128)}


def conv(cin, cout, k, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def paper_count(aux):
    """Every convolution of Table 1 with its bias, the 1000-way fc, and 2 x (conv 128 + fc 1024 + fc 1000)."""
    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3) + 1024 * 1000 + 1000
    for cin, a, br, b, cr, c, d in TABLE1.values():
        total += conv(cin, a, 1) + conv(cin, br, 1) + conv(br, b, 3) + conv(cin, cr, 1) + conv(cr, c, 5) \
            + conv(cin, d, 1)
    if aux:
        total += sum(conv(cin, 128, 1) + 2048 * 1024 + 1024 + 1024 * 1000 + 1000 for cin in (512, 528))
    return total


def torchvision_keys():
    keys = []
    for name in ("conv1", "conv2", "conv3"):
        keys += [f"{name}.conv.weight"] + bn_keys(f"{name}.bn")
    for block in TABLE1:
        for branch in ("branch1", "branch2.0", "branch2.1", "branch3.0", "branch3.1", "branch4.1"):
            p = f"inception{block}.{branch}"
            keys += [f"{p}.conv.weight"] + bn_keys(f"{p}.bn")
    for aux in ("aux1", "aux2"):
        keys += [f"{aux}.conv.conv.weight"] + bn_keys(f"{aux}.conv.bn")
        keys += [f"{aux}.fc1.weight", f"{aux}.fc1.bias", f"{aux}.fc2.weight", f"{aux}.fc2.bias"]
    return keys + ["fc.weight", "fc.bias"]


def test_torchvision_variant_keys_and_counts():
    m = googlenet(batch_norm=True)
    sd = m.state_dict()
    assert list(sd) == torchvision_keys()
    assert sd["inception3a.branch3.1.conv.weight"].shape == (32, 16, 3, 3)    # torchvision's 3x3 "5x5" branch
    assert sd["aux1.fc1.weight"].shape == (1024, 2048) and sd["conv1.bn.running_var"].shape == (64,)
    assert n_params(m) == 13_004_888
    assert n_params(googlenet(batch_norm=True, aux_logits=False)) == 6_624_904


def test_paper_counts_and_5x5_branches():
    m = googlenet()
    assert m.state_dict()["inception4e.branch3.1.conv.weight"].shape == (128, 32, 5, 5)
    assert n_params(m) == paper_count(aux=True) == 13_378_280
    assert n_params(googlenet(aux_logits=False)) == paper_count(aux=False) == 6_998_552   # "about 7 M"


def test_paper_model_at_224_follows_table1():
    s = summary(googlenet(), (3, 224, 224))
    shapes = {r.name: tuple(r.output_shape) for r in s.rows}
    assert shapes["conv1.conv"] == (1, 64, 112, 112) and shapes["maxpool1"] == (1, 64, 56, 56)
    assert shapes["maxpool2"] == (1, 192, 28, 28) and shapes["maxpool3"] == (1, 480, 14, 14)
    assert shapes["maxpool4"] == (1, 832, 7, 7) and shapes["avgpool"] == (1, 1024, 1, 1)
    assert "aux1.fc1" not in shapes                          # eval mode: no auxiliary classifiers
    assert 1.5e9 <= s.total_mult_adds <= 1.6e9               # §5: "1.5 billion multiply-adds"


def test_training_mode_returns_auxiliary_logits():
    m = googlenet(batch_norm=True, num_classes=7)
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)))
    out = m(x)
    assert isinstance(out, GoogLeNetOutputs) and [o.shape for o in out] == [(2, 7)] * 3
    m.eval()
    assert m(x).shape == (2, 7)
    assert_no_graph(m, x.numpy())
    assert googlenet(batch_norm=True, aux_logits=False, num_classes=7)(x).shape == (2, 7)


def test_transform_input_renormalises_channels():
    m = googlenet(batch_norm=True, aux_logits=False, num_classes=3).eval()
    x = np.random.default_rng(1).standard_normal((1, 3, 40, 40))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x_t = x * (std / 0.5)[:, None, None] + ((mean - 0.5) / 0.5)[:, None, None]
    plain = m(mc.tensor(x_t)).numpy()
    m.transform_input = True
    np.testing.assert_allclose(m(mc.tensor(x)).numpy(), plain, rtol=1e-4, atol=1e-5)


def test_weight_gradients_through_main_and_auxiliary_heads():
    """Training mode, torchvision variant: the checked sum covers logits, aux1 and aux2."""
    m = googlenet(batch_norm=True, num_classes=3)
    x = np.random.default_rng(2).standard_normal((2, 3, 48, 48))
    check_weight_grads(m, x, ["conv1.conv.weight", "inception3a.branch4.1.conv.weight",
                              "inception4a.branch3.1.bn.weight", "aux1.fc1.weight", "aux2.conv.conv.weight",
                              "fc.weight"], per_param=1)


def test_paper_model_weight_gradients():
    m = googlenet(aux_logits=False, num_classes=3).eval()            # eval: LRN and 5x5 branches, no dropout
    x = np.random.default_rng(3).standard_normal((1, 3, 48, 48))
    check_weight_grads(m, x, ["conv1.conv.weight", "inception3b.branch3.1.conv.weight",
                              "inception5b.branch2.1.conv.bias", "fc.weight"], per_param=1)
