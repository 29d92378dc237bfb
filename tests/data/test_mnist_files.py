"""MNIST / Fashion-MNIST: the bundled copy, IDX parsing, and errors for missing, truncated or corrupt files."""
import gzip
import os

import numpy as np
import pytest

from minicnn.data import MNIST, FashionMNIST
from minicnn.data.mnist import BUNDLED_MNIST, read_idx


@pytest.fixture(scope="module")
def bundled_test():
    return MNIST(train=False)


def test_bundled_mnist_is_the_official_dataset(bundled_test):
    train = MNIST()                                   # root=None: the copy inside the package, MD5-checked
    assert train.data.shape == (60000, 1, 28, 28) and train.data.dtype == np.uint8
    assert bundled_test.data.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(train.targets[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])   # the famous first digits
    np.testing.assert_array_equal(bundled_test.targets[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(bundled_test.targets),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert train.targets.dtype == np.int64 and len(train.classes) == 10
    assert abs(train.data.mean() / 255 - 0.1307) < 1e-3          # the usual normalisation constant


def test_getitem_gives_one_scaled_image(bundled_test):
    x, y = bundled_test[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == 7
    np.testing.assert_array_equal(x, bundled_test.data[0].astype(np.float32) / 255)
    assert 0 <= x.min() and x.max() <= 1
    with pytest.raises(IndexError):
        bundled_test[10000]


@pytest.mark.parametrize("compress", [True, False])
def test_reads_files_under_root_gzip_or_not(tmp_path, write_mnist, monkeypatch, compress):
    _, arrays = write_mnist(tmp_path / "MNIST" / "raw", compress=compress)
    monkeypatch.setattr(MNIST, "payload_md5", {})     # made-up files: no published checksums
    train, test = MNIST(str(tmp_path)), MNIST(str(tmp_path), train=False)
    np.testing.assert_array_equal(train.data[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(train.targets, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(test.data[:, 0], arrays["t10k-images-idx3-ubyte"])


def test_fashion_mnist_uses_its_own_folder(tmp_path, write_mnist):
    _, arrays = write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=5)
    data = FashionMNIST(str(tmp_path))
    assert len(data) == 5 and data.classes[0] == "T-shirt/top"
    np.testing.assert_array_equal(data.targets, arrays["train-labels-idx1-ubyte"])


def test_missing_file_says_which_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST/raw/train-images-idx3-ubyte.*download=True"):
        MNIST(str(tmp_path))


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-100], r"holds 9324 bytes but its header \(12, 28, 28\) needs 9424: truncated"),
    (lambda raw: raw + b"\0", r"trailing data"),
    (lambda raw: raw[:10], r"truncated inside its header"),
    (lambda raw: b"\x00\x00\x09\x03" + raw[4:], r"not an IDX file"),
])
def test_damaged_idx_is_named_with_the_fix(tmp_path, fakes, damage, message):
    files, _ = fakes.fake_mnist()
    path = str(tmp_path / "train-images-idx3-ubyte")
    _write(path, damage(files["train-images-idx3-ubyte"]))
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path, 3)
    assert path in str(err.value) and "download=True" in str(err.value)


def test_truncated_or_garbled_gzip_is_named(tmp_path, fakes):
    files, _ = fakes.fake_mnist()
    packed = fakes.gz(files["train-images-idx3-ubyte"])
    for i, bad in enumerate([packed[:len(packed) // 2], packed[:-8] + b"\xff" * 8, b"not gzip at all"]):
        path = str(tmp_path / f"{i}" / "train-images-idx3-ubyte.gz")
        _write(path, bad)
        with pytest.raises(ValueError, match="corrupt or truncated") as err:
            read_idx(path, 3)
        assert path in str(err.value)


def test_corrupt_payload_fails_the_checksum(tmp_path, fakes, monkeypatch):
    files, _ = fakes.fake_mnist()
    raw = bytearray(files["train-images-idx3-ubyte"])
    monkeypatch.setattr(MNIST, "payload_md5", {"train-images-idx3-ubyte": fakes.md5(bytes(raw))})
    raw[500] ^= 1                                     # one flipped bit, header intact
    folder = tmp_path / "MNIST" / "raw"
    for name, data in files.items():
        _write(str(folder / name), bytes(raw) if name == "train-images-idx3-ubyte" else data)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is corrupt: MD5"):
        MNIST(str(tmp_path))


def test_bundled_files_are_the_four_idx_gz():
    assert sorted(os.listdir(BUNDLED_MNIST)) == sorted(f"{n}.gz" for n in MNIST.payload_md5)
    with gzip.open(os.path.join(BUNDLED_MNIST, "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        assert f.read(8) == bytes([0, 0, 8, 1, 0, 0, 0x27, 0x10])    # ubyte, 1-d, 10000 entries
