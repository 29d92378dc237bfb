"""Fixtures for the data tests: format-faithful MNIST/CIFAR files made on the fly, and a local HTTP mirror."""
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from minicnn.data import download


def idx_bytes(array):
    """The IDX encoding of a uint8 array (magic 0, 0, 0x08, ndim; big-endian int32 dims; values)."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) + \
        array.astype(np.uint8).tobytes()


def md5(data):
    return hashlib.md5(data).hexdigest()


def fake_mnist(n_train=12, n_test=6, seed=0):
    """{file name without .gz: IDX bytes} for a tiny MNIST-format dataset, and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)}
    return {name: idx_bytes(a) for name, a in arrays.items()}, arrays


def cifar_pickle(data, labels, label_key="labels"):
    """A batch file as the official archive has it: a pickled dict (protocol 2)."""
    entry = {"batch_label": "testing batch 1 of 1", label_key: [int(v) for v in labels], "data": data,
             "filenames": [f"img_{i}.png" for i in range(len(data))]}
    if label_key == "fine_labels":
        entry["coarse_labels"] = [int(v) // 5 for v in labels]
    return pickle.dumps(entry, protocol=2)


def fake_cifar10(n_per_batch=4, seed=0):
    """({member path: bytes} of a tiny cifar-10-batches-py folder, images (N, 3, 32, 32), labels)."""
    rng = np.random.default_rng(seed)
    members, images, labels = {}, {}, {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        images[name] = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels[name] = rng.integers(0, 10, n_per_batch)
        members[f"cifar-10-batches-py/{name}"] = cifar_pickle(images[name], labels[name])
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
         "num_cases_per_batch": n_per_batch, "num_vis": 3072}, protocol=2)
    return members, images, labels


def tar_gz(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, mtime=0)


class Mirror:
    """A local HTTP server: ``files`` {url path: bytes}; ``truncate`` {path: times to cut the body short};
    ``log`` of requested paths."""

    def __init__(self):
        self.files, self.truncate, self.log = {}, {}, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.log.append(self.path)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mirror.truncate.get(self.path, 0) > 0:       # promise the whole file, send half, hang up
                    mirror.truncate[self.path] -= 1
                    body = body[:len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mirror(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(download, "TIMEOUT", 5)
    server = Mirror()
    yield server
    server.close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def write_mnist():
    """Write a tiny MNIST-format dataset into ``folder`` (gzip or not); returns (IDX bytes by name, arrays)."""
    def write(folder, compress=True, **kw):
        files, arrays = fake_mnist(**kw)
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(folder, name + (".gz" if compress else "")), "wb") as f:
                f.write(gz(data) if compress else data)
        return files, arrays
    return write


@pytest.fixture
def fakes():
    """The file makers above, for tests (conftest modules cannot be imported by name)."""
    return SimpleNamespace(idx_bytes=idx_bytes, md5=md5, fake_mnist=fake_mnist, fake_cifar10=fake_cifar10,
                           cifar_pickle=cifar_pickle, tar_gz=tar_gz, gz=gz)
