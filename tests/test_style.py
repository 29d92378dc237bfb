"""Neural style transfer: the costs against NumPy, their gradients, the total cost falling, the command line."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import style


def test_costs_match_numpy_and_gradcheck():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1, 3, 4, 5)), rng.standard_normal((1, 3, 4, 5))
    assert style.content_cost(mc.tensor(a, dtype=np.float64), mc.tensor(b, dtype=np.float64)).item() == \
        np.float64(0.5 * ((a - b) ** 2).sum()).item()
    s = rng.standard_normal((1, 3, 4, 5))
    G = lambda f: np.einsum("nchw,ndhw->ncd", f, f)                           # unnormalised Gram
    target = {"x": mc.tensor(G(s) / (3 * 20), dtype=np.float64)}
    got = style.style_cost({"x": mc.tensor(a, dtype=np.float64)}, target, {"x": 0.7}).item()
    want = 0.7 / (4 * 3 ** 2 * 20 ** 2) * ((G(a) - G(s)) ** 2).sum()        # Gatys et al. eq. 4
    np.testing.assert_allclose(got, want, rtol=1e-12)
    mc.gradcheck(lambda f: style.style_cost({"x": f}, target, {"x": 0.7}), [a])


def test_random_features_layers():
    model, layers = style.style_features("random")
    out = model(mc.tensor(np.random.rand(1, 3, 16, 16)))
    assert set(out) == {layers["content"], *layers["style"]}
    assert out["conv1_1"].shape == (1, 32, 16, 16) and out["conv4_2"].shape == (1, 256, 2, 2)
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("lbfgs", None)])
def test_transfer_lowers_the_cost(optimizer, lr):
    rng = np.random.default_rng(0)
    content, stripes = rng.random((3, 16, 16)), np.zeros((3, 16, 16))
    stripes[0, :, ::2] = 1
    restore = mc.set_num_threads(1)
    try:
        out, history = style.transfer(content, stripes, steps=15, lr=lr, optimizer=optimizer)
    finally:
        restore()
    assert out.shape == (3, 16, 16) and 0 <= out.min() and out.max() <= 1
    assert history[-1] < 0.7 * history[0]


def test_command_line(tmp_path):
    rng = np.random.default_rng(1)
    style.write_image(tmp_path / "c.png", rng.random((3, 20, 16)))
    style.write_image(tmp_path / "s.png", rng.random((3, 8, 8)))
    from minicnn.__main__ import main
    out = tmp_path / "o.png"
    assert main(["style", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "--out", str(out), "--steps", "2",
                 "--size", "20"]) == 0
    assert style.read_image(out).shape == (3, 20, 16) and os.path.getsize(out) > 0
