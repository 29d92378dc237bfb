"""mc.save / mc.load the PyTorch way: any file name, Tensors back as Tensors, nested model + optimizer state,
map_location, and no pickle."""
import zipfile

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn


def test_state_dicts_round_trip_under_any_name(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    opt = mc.optim.AdamW(model.parameters(), lr=0.01)
    model(mc.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "loss": 0.25,
            "best": mc.tensor(0.9), "history": [1, 2.5], "name": "run"}
    for name in ("model.pt", "weights.pth", "ckpt", "x.npz"):
        mc.save(ckpt, tmp_path / name)
        back = mc.load(tmp_path / name)
        assert back["epoch"] == 3 and back["loss"] == 0.25 and back["history"] == [1, 2.5] and back["name"] == "run"
        assert isinstance(back["best"], mc.Tensor) and back["best"].item() == pytest.approx(0.9)
        for k, v in model.state_dict().items():
            assert isinstance(back["model"][k], mc.Tensor) and back["model"][k].dtype == v.dtype
            np.testing.assert_array_equal(back["model"][k].numpy(), v.numpy())
        assert zipfile.is_zipfile(tmp_path / name)              # an .npz whatever the name: no pickle inside
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    fresh.load_state_dict(mc.load(tmp_path / "model.pt")["model"])
    opt2 = mc.optim.AdamW(fresh.parameters(), lr=0.5)
    opt2.load_state_dict(mc.load(tmp_path / "model.pt")["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.state_dict()["state"][0]["step"] == 1
    arr = {"plain": np.arange(3)}
    mc.save(arr, tmp_path / "a.pt")
    assert isinstance(mc.load(tmp_path / "a.pt")["plain"], np.ndarray)      # arrays stay arrays
    t = mc.load(tmp_path / "model.pt", map_location=mc.device("cpu"))["best"]
    assert t.device == "cpu"


def test_save_refuses_objects_it_cannot_store_without_pickle(tmp_path):
    with pytest.raises(TypeError, match="mc.save: cannot store an object of type"):
        mc.save({"f": object()}, tmp_path / "x.pt")
