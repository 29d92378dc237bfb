"""Downloads against a local HTTP mirror: fallback, retries, checksums, atomic writes, extraction, datasets."""
import os
import tarfile

import numpy as np
import pytest

from minicnn.data import CIFAR10, MNIST, DownloadError, download_url, extract_archive, md5_file
from minicnn.data.cifar import read_cifar_pickle


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".")]


def test_falls_back_to_the_next_mirror(mirror, closed_port_url, tmp_path, fakes):
    mirror.files["/b/file.bin"] = data = os.urandom(3000)
    path = tmp_path / "file.bin"
    download_url([closed_port_url + "/file.bin", mirror.url + "/a/file.bin", mirror.url + "/b/file.bin"],
                 str(path), md5=fakes.md5(data))
    assert path.read_bytes() == data and not _leftovers(tmp_path)
    assert mirror.log == ["/a/file.bin", "/b/file.bin"]     # a 404 is not retried: next mirror at once


def test_retries_a_cut_connection(mirror, tmp_path, fakes):
    mirror.files["/f"] = data = os.urandom(5000)
    mirror.truncate["/f"] = 2                                # two short bodies, then the whole file
    download_url(mirror.url + "/f", str(tmp_path / "f"), md5=fakes.md5(data))
    assert (tmp_path / "f").read_bytes() == data and mirror.log == ["/f"] * 3


def test_wrong_checksum_everywhere_leaves_nothing(mirror, tmp_path):
    mirror.files["/f"] = os.urandom(100)
    with pytest.raises(DownloadError, match=r"could not download f;(.|\n)*MD5 .* does not match(.|\n)*by hand"):
        download_url([mirror.url + "/f"], str(tmp_path / "f"), md5="0" * 32)
    assert os.listdir(tmp_path) == []                        # no file, no temporary
    assert len(mirror.log) == 3                              # RETRIES attempts on the one mirror


def test_truncated_everywhere_fails_and_keeps_the_old_file(mirror, tmp_path):
    mirror.files["/f"] = os.urandom(4000)
    mirror.truncate["/f"] = 99
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(DownloadError, match="closed after 2000 of 4000 bytes"):
        download_url([mirror.url + "/f"], str(tmp_path / "f"))
    assert (tmp_path / "f").read_bytes() == b"old" and not _leftovers(tmp_path)


def test_mnist_download_from_a_mirror(mirror, closed_port_url, tmp_path, fakes, monkeypatch):
    files, arrays = fakes.fake_mnist()
    packed = {name + ".gz": fakes.gz(data) for name, data in files.items()}
    mirror.files.update({"/mnist/" + name: data for name, data in packed.items()})
    monkeypatch.setattr(MNIST, "mirrors", [closed_port_url + "/", mirror.url + "/mnist/"])
    monkeypatch.setattr(MNIST, "resources", [(n, fakes.md5(d)) for n, d in packed.items()])
    monkeypatch.setattr(MNIST, "payload_md5", {n: fakes.md5(d) for n, d in files.items()})
    data = MNIST(str(tmp_path), download=True)
    np.testing.assert_array_equal(data.data[:, 0], arrays["train-images-idx3-ubyte"])
    assert sorted(os.listdir(tmp_path / "MNIST" / "raw")) == sorted(packed)
    assert len(mirror.log) == 4
    MNIST(str(tmp_path), train=False, download=True)        # everything present and intact: no new request
    assert len(mirror.log) == 4
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    test = MNIST(str(tmp_path), train=False, download=True)  # the damaged file is fetched again
    assert mirror.log[-1] == "/mnist/t10k-labels-idx1-ubyte.gz" and len(mirror.log) == 5
    np.testing.assert_array_equal(test.targets, arrays["t10k-labels-idx1-ubyte"])


@pytest.fixture
def cifar_on_mirror(mirror, fakes, monkeypatch):
    """A tiny CIFAR-10 archive on the mirror, with the class's checksums pointed at it."""
    members, images, labels = fakes.fake_cifar10()
    archive = fakes.tar_gz(members)
    mirror.files["/kriz/cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(CIFAR10, "mirrors", [mirror.url + "/kriz/"])
    monkeypatch.setattr(CIFAR10, "tgz_md5", fakes.md5(archive))
    md5s = {name.split("/")[1]: fakes.md5(data) for name, data in members.items()}
    monkeypatch.setattr(CIFAR10, "train_list", [(f"data_batch_{i}", md5s[f"data_batch_{i}"]) for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [("test_batch", md5s["test_batch"])])
    monkeypatch.setattr(CIFAR10, "meta", ("batches.meta", md5s["batches.meta"], "label_names"))
    return images, labels


def test_cifar10_download_extract_and_read(cifar_on_mirror, mirror, tmp_path):
    images, labels = cifar_on_mirror
    train = CIFAR10(str(tmp_path), download=True)
    assert train.data.shape == (20, 3, 32, 32) and train.classes[9] == "truck"
    np.testing.assert_array_equal(train.data[:4].reshape(4, -1), images["data_batch_1"])   # R, G, B planes
    np.testing.assert_array_equal(train.targets[-4:], labels["data_batch_5"])
    test = CIFAR10(str(tmp_path), train=False, download=True)
    np.testing.assert_array_equal(test.targets, labels["test_batch"])
    assert mirror.log == ["/kriz/cifar-10-python.tar.gz"] and not _leftovers(tmp_path)


def test_cifar10_corrupt_batch_is_named(cifar_on_mirror, tmp_path):
    CIFAR10(str(tmp_path), download=True)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"data_batch_3 is corrupt or truncated: MD5 .*download=True"):
        CIFAR10(str(tmp_path))
    CIFAR10(str(tmp_path), download=True)                  # re-extracted from the archive already on disk
    assert md5_file(str(path)) == dict(CIFAR10.train_list)["data_batch_3"]


def test_cifar_pickle_may_build_only_arrays(tmp_path):
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")   # os.system('echo hacked')
    with pytest.raises(ValueError, match="unexpected object os.system"):
        read_cifar_pickle(str(evil))


def test_missing_cifar_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/data_batch_1; pass download=True"):
        CIFAR10(str(tmp_path))


def test_extract_refuses_unsafe_members_and_corrupt_archives(tmp_path, fakes):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(fakes.tar_gz({"../escape.txt": b"x"}))
    dest = tmp_path / "out"
    with pytest.raises(ValueError, match="unsafe archive member '../escape.txt'"):
        extract_archive(str(bad), str(dest))
    good = fakes.tar_gz({"folder/a.txt": b"hello"})
    (tmp_path / "cut.tar.gz").write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"cut.tar.gz is corrupt or truncated"):
        extract_archive(str(tmp_path / "cut.tar.gz"), str(dest))
    assert os.listdir(dest) == [] and not (tmp_path / "escape.txt").exists()
    (tmp_path / "good.tar.gz").write_bytes(good)
    extract_archive(str(tmp_path / "good.tar.gz"), str(dest))
    assert (dest / "folder" / "a.txt").read_bytes() == b"hello" and os.listdir(dest) == ["folder"]
    assert tarfile.is_tarfile(str(tmp_path / "good.tar.gz"))
