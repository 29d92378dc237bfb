"""minicnn.utils.data (PyTorch's Dataset, DataLoader arguments, TensorDataset, Subset, random_split,
ConcatDataset, samplers, default_collate), torchvision-style datasets and per-sample transforms, ImageFolder."""
import os

import numpy as np
import pytest
from PIL import Image

import minicnn as mc
from minicnn.data import datasets, transforms
from minicnn.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler, SequentialSampler,
                                Subset, SubsetRandomSampler, TensorDataset, default_collate, random_split)


class Squares(Dataset):
    """A user's own map-style dataset: sample i is (a float32 (2,) tensor, a dict target)."""
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return mc.tensor([i, i * i], dtype=mc.float32), {"id": i, "w": 0.5 * i, "name": f"s{i}"}


def test_default_collate_follows_pytorch():
    batch = default_collate([(np.ones(2), 1, 2.5, True, "a"), (np.zeros(2), 3, 0.5, False, "b")])
    assert isinstance(batch, list) and len(batch) == 5
    assert batch[0].shape == (2, 2) and batch[0].dtype == np.float64
    assert batch[1].dtype == np.int64 and batch[1].tolist() == [1, 3]
    assert batch[2].dtype == np.float64 and batch[3].dtype == np.bool_ and batch[4] == ["a", "b"]
    d = default_collate([{"x": mc.zeros(3), "y": 1}, {"x": mc.ones(3), "y": 2}])
    assert d["x"].shape == (2, 3) and d["y"].tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([mc.zeros(2), mc.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors"):
        default_collate([object()])


def test_loader_over_a_users_dataset():
    loader = DataLoader(Squares(), batch_size=3, shuffle=False, num_workers=2, pin_memory=True)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[0]) for b in batches] == [3, 3, 1]
    x, y = batches[1]
    assert x.tolist() == [[3, 9], [4, 16], [5, 25]] and x.dtype == np.float32
    assert y["id"].tolist() == [3, 4, 5] and y["w"].dtype == np.float64 and y["name"] == ["s3", "s4", "s5"]
    assert [len(b[0]) for b in DataLoader(Squares(), batch_size=3, drop_last=True)] == [3, 3]
    seen = sorted(int(v) for b in DataLoader(Squares(), batch_size=2, shuffle=True) for v in b[1]["id"].tolist())
    assert seen == list(range(7))
    firsts = [v for b in DataLoader(Squares(), batch_size=4, collate_fn=lambda s: [t[1]["id"] for t in s]) for v in b]
    assert firsts == list(range(7))                                   # collate_fn gets the list of samples


def test_loader_generator_sampler_and_batch_sampler():
    a = [b[1]["id"].tolist() for b in DataLoader(Squares(), 3, shuffle=True, generator=mc.Generator().manual_seed(1))]
    b = [b[1]["id"].tolist() for b in DataLoader(Squares(), 3, shuffle=True, generator=mc.Generator().manual_seed(1))]
    assert a == b
    order = [b[1]["id"].tolist() for b in DataLoader(Squares(), 2, sampler=SubsetRandomSampler([0, 2, 4]))]
    assert sorted(sum(order, [])) == [0, 2, 4]
    bs = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    assert list(bs) == [[0, 1], [2, 3], [4]] and len(bs) == 3
    assert [b[1]["id"].tolist() for b in DataLoader(Squares(), batch_sampler=[[6, 0], [3]])] == [[6, 0], [3]]
    rs = RandomSampler(range(4), generator=mc.Generator().manual_seed(0))
    assert sorted(rs) == [0, 1, 2, 3] and len(list(RandomSampler(range(4), replacement=True, num_samples=9))) == 9
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(Squares(), sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Squares(), batch_size=2, batch_sampler=[[0]])


def test_tensor_dataset_subset_random_split_concat():
    x, y = mc.arange(10.0).reshape(10, 1), mc.arange(10) % 3
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and [t.tolist() for t in ds[4]] == [[4.0], 1] and ds.tensors[0] is x
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.tolist() == [[0], [1], [2], [3]] and yb.dtype == np.int64
    with pytest.raises(ValueError, match="TensorDataset: size mismatch"):
        TensorDataset(mc.zeros(3), mc.zeros(4))
    parts = random_split(ds, [7, 3], generator=mc.Generator().manual_seed(0))
    got = sorted(int(p[i][0].item()) for p in parts for i in range(len(p)))
    assert [len(p) for p in parts] == [7, 3] and got == list(range(10))
    again = random_split(ds, [7, 3], generator=mc.Generator().manual_seed(0))
    assert parts[1].indices.tolist() == again[1].indices.tolist()
    assert [len(p) for p in random_split(range(11), [0.5, 0.3, 0.2])] == [6, 3, 2]   # floors, then one by one
    with pytest.raises(ValueError, match="random_split: the lengths \\[5, 3\\] do not sum"):
        random_split(ds, [5, 3])
    sub = Subset(ds, [9, 2])
    assert sub[0][0].tolist() == [9.0] and len(sub) == 2
    cat = ConcatDataset([sub, ds])
    assert len(cat) == 12 and cat[1][0].tolist() == [2.0] and cat[2][0].tolist() == [0.0] and cat[-1][1].item() == 0
    assert cat.cumulative_sizes == [2, 12] and len(Squares() + Squares()) == 14
    assert [b[0].tolist() for b in DataLoader(cat, batch_size=5)][0] == [[9], [2], [0], [1], [2]]


def test_concat_of_image_sets_keeps_the_batch_path():
    a = mc.data.TensorDataset(np.full((3, 1, 2, 2), 10, np.uint8), np.zeros(3))
    b = mc.data.TensorDataset(np.full((2, 1, 2, 2), 20, np.uint8), np.ones(2))
    x, y = next(iter(DataLoader(ConcatDataset([a, b]), batch_size=5, shuffle=False)))
    np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], np.array([10, 10, 10, 20, 20]) / 255, rtol=1e-6)
    assert y.tolist() == [0, 0, 0, 1, 1]


# ---- torchvision-style datasets and transforms ----------------------------------------------------------------
def test_mnist_root_download_uses_the_bundled_copy(tmp_path):
    ds = datasets.MNIST(str(tmp_path), train=False, download=True)
    assert sorted(os.listdir(tmp_path / "MNIST" / "raw")) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                                             "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    bundled = mc.data.MNIST(train=False)
    np.testing.assert_array_equal(ds.data, bundled.data)
    again = datasets.MNIST(str(tmp_path), train=False)              # now found on disk, no download needed
    np.testing.assert_array_equal(again.targets, bundled.targets)


def test_mnist_with_torchvision_transforms_gives_tensors_per_sample():
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    ds = mc.data.MNIST(train=False, transform=tf, target_transform=lambda y: y + 100)
    x, y = ds[0]
    raw = mc.data.MNIST(train=False).data[0]
    assert isinstance(x, mc.Tensor) and x.shape == (1, 28, 28) and x.dtype == np.float32 and y == 107
    np.testing.assert_allclose(x.numpy(), (raw / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6)
    xb, yb = next(iter(mc.utils.data.DataLoader(ds, batch_size=4)))
    np.testing.assert_allclose(xb.numpy()[0], x.numpy())
    assert yb.tolist()[:1] == [107]
    _, ys = next(iter(mc.utils.data.DataLoader(Subset(ds, [0, 1]), batch_size=2)))   # remapped labels pass
    assert ys.tolist() == [107, 102]
    pil = mc.data.MNIST(train=False, transform=lambda im: im)[0][0]     # a plain function sees the PIL image
    assert isinstance(pil, Image.Image) and pil.mode == "L" and pil.size == (28, 28)


def test_to_tensor_and_back():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    t = transforms.ToTensor()(Image.fromarray(rgb))
    assert t.shape == (3, 5, 7) and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy(), rgb.transpose(2, 0, 1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(transforms.ToTensor()(rgb).numpy(), t.numpy())
    assert transforms.ToTensor()(np.zeros((2, 3), np.float64)).dtype == np.float64     # not scaled, kept
    assert transforms.PILToTensor()(Image.fromarray(rgb)).dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(transforms.ToPILImage()(t)), rgb)
    with pytest.raises(TypeError, match="Normalize: expected a float \\(C, H, W\\) tensor \\(use ToTensor\\(\\) first\\)"):
        transforms.Normalize((0.5,), (0.5,))(Image.fromarray(rgb))


def test_crops_flips_resize_on_pil_tensors_and_arrays():
    a = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6)
    img, ten = Image.fromarray(a), mc.tensor(a[None].astype(np.float32))
    c = transforms.CenterCrop(2)
    np.testing.assert_array_equal(np.asarray(c(img)), a[1:3, 2:4])
    np.testing.assert_array_equal(c(ten).numpy()[0], a[1:3, 2:4])
    np.testing.assert_array_equal(c(a), a[1:3, 2:4])
    big = transforms.CenterCrop((6, 6))(ten).numpy()[0]                    # padded with zeros where too small
    np.testing.assert_array_equal(big[1:5], a) and np.testing.assert_array_equal(big[[0, 5]], 0)
    np.testing.assert_array_equal(np.asarray(transforms.RandomHorizontalFlip(p=1.0)(img)), a[:, ::-1])
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=0.0)(ten).numpy()[0], a)
    np.testing.assert_array_equal(transforms.RandomVerticalFlip(p=1.0)(ten).numpy()[0], a[::-1])
    rng = np.random.default_rng(3)
    crops = {tuple(np.asarray(transforms.RandomCrop(2, padding=1)(img, rng=rng)).ravel()) for _ in range(60)}
    padded = np.pad(a, 1)
    windows = {tuple(padded[i:i + 2, j:j + 2].ravel()) for i in range(5) for j in range(7)}
    assert crops <= windows and len(crops) > 10
    cropped = transforms.RandomCrop((4, 6), padding=(1, 2), fill=255)(ten, rng=np.random.default_rng(0))
    assert cropped.shape == (1, 4, 6)
    assert transforms.RandomCrop(8, pad_if_needed=True)(img).size == (8, 8)
    with pytest.raises(ValueError, match="RandomCrop: size \\(8, 8\\) exceeds the \\(padded\\) image 4x6"):
        transforms.RandomCrop(8)(img)
    assert transforms.Resize(8)(img).size == (12, 8)                   # shorter side -> 8, aspect kept
    assert transforms.Resize((3, 5))(ten).shape == (1, 3, 5)
    flat = np.full((4, 6), 7.0, np.float32)
    np.testing.assert_allclose(transforms.Resize((2, 3))(flat), np.full((2, 3), 7.0), rtol=1e-6)


def test_batch_transforms_keep_their_fast_path():
    x = np.random.default_rng(0).random((3, 2, 5, 5)).astype(np.float32)
    y = transforms.Normalize((0.5, 0.2), (2.0, 4.0))(x)
    np.testing.assert_allclose(y[:, 1], (x[:, 1] - 0.2) / 4, rtol=1e-6)
    crop = transforms.Compose([transforms.RandomCrop(3, padding=1), transforms.RandomHorizontalFlip()])
    assert crop(x, rng=np.random.default_rng(0)).shape == (3, 2, 3, 3)
    from minicnn.data.sample_transforms import is_per_sample
    assert not is_per_sample(crop) and is_per_sample(transforms.Compose([transforms.ToTensor()]))
    assert is_per_sample(lambda im: im) and not is_per_sample(None)


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("dog", 2), ("cat", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1} and len(ds) == 5
    assert ds.targets == [0, 0, 0, 1, 1] and ds.imgs[3][0].endswith(os.path.join("dog", "0.png"))
    x, y = ds[4]
    assert x.shape == (3, 6, 5) and y == 1
    np.testing.assert_allclose(x.numpy(), np.asarray(Image.open(tmp_path / "dog" / "1.png")).transpose(2, 0, 1) / 255,
                               rtol=1e-6)
    xb, yb = next(iter(DataLoader(ds, batch_size=5)))
    assert xb.shape == (5, 3, 6, 5) and yb.tolist() == [0, 0, 0, 1, 1]
    raw = datasets.ImageFolder(str(tmp_path))
    assert isinstance(raw[0][0], Image.Image) and raw[0][0].mode == "RGB"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="found no valid file for class 'empty'"):
        datasets.ImageFolder(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        datasets.ImageFolder(str(tmp_path / "missing"))
