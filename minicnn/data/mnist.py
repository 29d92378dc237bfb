"""MNIST and Fashion-MNIST in their official IDX files (gzip-compressed or not).

IDX (LeCun et al.): two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, one big-endian
int32 per dimension, then the values in C order.  MNIST ships inside the package (``minicnn/data/mnist/``,
byte-identical to the official files once decompressed), so ``MNIST()`` needs neither ``root`` nor a network.
"""
import gzip
import hashlib
import os
import struct
import zlib

import numpy as np

from minicnn.data.datasets import VisionDataset, default_root
from minicnn.data.download import download_url, md5_file
from minicnn.serialization import atomic_write

__all__ = ["MNIST", "FashionMNIST", "read_idx", "BUNDLED_MNIST"]

BUNDLED_MNIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist")


def _read_bytes(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:       # gzip: truncated stream, bad CRC, not gzip at all
        raise ValueError(f"{path} is corrupt or truncated ({e}); delete it and download it again "
                         f"(download=True)") from None


def read_idx(path, expect_ndim, md5=None):
    """The uint8 array stored in the IDX file at ``path`` (``.gz`` is decompressed), checked against its header
    (type byte, ``expect_ndim`` dimensions, exact length) and, if given, the MD5 of the uncompressed bytes."""
    raw = _read_bytes(path)
    fix = "delete it and download it again (download=True)"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expect_ndim:
        raise ValueError(f"{path} is not an IDX file of {expect_ndim}-d unsigned bytes (header {raw[:4].hex()}); "
                         f"{fix}")
    head = 4 + 4 * expect_ndim
    if len(raw) < head:
        raise ValueError(f"{path} is truncated inside its header; {fix}")
    shape = struct.unpack(f">{expect_ndim}i", raw[4:head])
    want = head + int(np.prod(shape))
    if len(raw) != want:
        raise ValueError(f"{path} holds {len(raw)} bytes but its header {shape} needs {want}: "
                         f"{'truncated' if len(raw) < want else 'trailing data'}; {fix}")
    if md5 is not None and (got := hashlib.md5(raw, usedforsecurity=False).hexdigest()) != md5:
        raise ValueError(f"{path} is corrupt: MD5 of its contents is {got}, expected {md5}; {fix}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape)


class MNIST(VisionDataset):
    """Handwritten digits, 28 x 28 grey: 60 000 training and 10 000 test images.  ``data`` uint8 (N, 1, 28, 28).

    ``root=None`` reads the copy bundled with minicnn.  Otherwise files are looked for in
    ``root/MNIST/raw/`` (torchvision's layout), as ``train-images-idx3-ubyte`` or ``...ubyte.gz``;
    ``download=True`` fetches missing ones from ``mirrors`` (tried in order) and checks their MD5s.
    """
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = [("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),  # MD5 of the published .gz
                 ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                 ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")]
    payload_md5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",      # MD5 once decompressed
                   "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                   "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                   "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    bundled = BUNDLED_MNIST

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.train = train
        if root is None and self.bundled is not None and not download:
            self.raw_folder = self.bundled
        else:
            self.root = os.path.expanduser(root if root is not None else default_root())
            self.raw_folder = os.path.join(self.root, type(self).__name__, "raw")
        if download:
            self.download()
        split = "train" if train else "t10k"
        images, labels = (read_idx(self._find(name), ndim, self.payload_md5.get(name)) for name, ndim in
                          ((f"{split}-images-idx3-ubyte", 3), (f"{split}-labels-idx1-ubyte", 1)))
        if len(images) != len(labels) or images.shape[1:] != (28, 28) or labels.max(initial=0) >= len(self.classes):
            raise ValueError(f"{type(self).__name__}: files in {self.raw_folder} do not match: images "
                             f"{images.shape}, labels {labels.shape} (max {labels.max(initial=0)}); "
                             f"delete them and download again (download=True)")
        super().__init__(images[:, None], labels.astype(np.int64), transform, target_transform)

    def _find(self, name):
        for candidate in (name, name + ".gz"):
            path = os.path.join(self.raw_folder, candidate)
            if os.path.exists(path):
                return path
        raise FileNotFoundError(f"{type(self).__name__}: missing {os.path.join(self.raw_folder, name)}[.gz]; "
                                f"pass download=True to fetch it, or copy the official file there")

    def _present(self, filename, md5):
        """True if ``filename`` (a .gz with published MD5 ``md5``) or its decompressed twin is in place and sound."""
        gz, plain = os.path.join(self.raw_folder, filename), os.path.join(self.raw_folder, filename[:-3])
        if os.path.exists(gz):
            return md5_file(gz) == md5
        if os.path.exists(plain):
            expected = self.payload_md5.get(filename[:-3])
            return expected is None or md5_file(plain) == expected
        return False

    def download(self):
        """Fetch every missing or damaged file into ``raw_folder`` (each verified, each written atomically).
        MNIST's come from the copy bundled with minicnn, decompressed, so ``download=True`` needs no network."""
        for filename, md5 in self.resources:
            if not self._present(filename, md5) and not self._from_bundled(filename):
                download_url([m + filename for m in self.mirrors], os.path.join(self.raw_folder, filename), md5)

    def _from_bundled(self, filename):
        """Write the bundled copy of ``filename``, decompressed, into ``raw_folder`` if its contents have the
        official MD5; False if there is none (or it is not the file asked for)."""
        src = os.path.join(self.bundled, filename) if self.bundled is not None else None
        if src is None or not os.path.exists(src):
            return False
        raw = _read_bytes(src)
        if hashlib.md5(raw, usedforsecurity=False).hexdigest() != self.payload_md5.get(filename[:-3]):
            return False
        with atomic_write(os.path.join(self.raw_folder, filename[:-3])) as f:
            f.write(raw)
        return True


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (Xiao et al., 2017): 28 x 28 grey clothing images in MNIST's file format.
    Not bundled: pass ``root`` and ``download=True`` once."""
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                 ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                 ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")]
    payload_md5 = {}
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    bundled = None
