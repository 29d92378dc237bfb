"""embedding_net: unit-length (N, D) embeddings, count, keys, float64 gradients, and the triplet loss falling."""
import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import optim
from minicnn.data import MNIST
from minicnn.models import embedding_net, get_model
from model_checks import check_weight_grads, n_params


def test_shape_unit_length_count_and_keys():
    m = embedding_net(embedding_dim=16)
    e = m(mc.tensor(np.random.rand(3, 1, 28, 28))).numpy()
    assert e.shape == (3, 16)
    np.testing.assert_allclose((e ** 2).sum(1), 1, rtol=1e-5)
    convs = 1 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9
    bns = 2 * (32 + 64 + 128)
    assert n_params(m) == convs + bns + 128 * 16 + 16
    assert list(m.state_dict())[:2] == ["features.0.weight", "features.1.weight"] and "fc.bias" in m.state_dict()
    assert get_model("embedding_net", num_classes=10)(mc.tensor(np.random.rand(2, 1, 28, 28))).shape == (2, 32)
    raw = embedding_net(normalize=False)(mc.tensor(np.random.rand(3, 1, 28, 28))).numpy()
    assert not np.allclose((raw ** 2).sum(1), 1)


def test_weight_gradients_float64():
    m = embedding_net(embedding_dim=4)
    x = np.random.default_rng(0).random((3, 1, 12, 12))
    assert check_weight_grads(m, x, names=["features.0.weight", "features.8.weight", "fc.weight"]) == 6


def test_batch_hard_triplet_loss_falls_on_one_batch():
    restore = mc.set_num_threads(1)
    try:
        mnist = MNIST(train=True)
        idx = np.concatenate([np.flatnonzero(mnist.targets == d)[:4] for d in range(4)])
        x, y = mnist.get_batch(idx)
        m = embedding_net()
        opt = optim.Adam(m.parameters(), lr=3e-3)
        losses = []
        for _ in range(25):
            loss = F.batch_hard_triplet_loss(m(mc.tensor(x)), y, margin=0.2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.2 * losses[0]
    finally:
        restore()
