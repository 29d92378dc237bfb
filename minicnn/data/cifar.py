"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009) from the official "python version" archives.

Each batch file is a pickled dict: ``data`` uint8 ``(n, 3072)`` (1024 red, 1024 green, 1024 blue values, rows in
order), labels as a list of ints (``labels``, or ``fine_labels`` for CIFAR-100), ``filenames``, ``batch_label``.
Pickle can run arbitrary code, so files are read by an unpickler that builds only dicts, lists, strings, numbers
and NumPy arrays, and the result is checked against that structure.
"""
import io
import os
import pickle

import numpy as np

from minicnn.data.datasets import VisionDataset, default_root
from minicnn.data.download import download_url, extract_archive, md5_file

__all__ = ["CIFAR10", "CIFAR100", "read_cifar_pickle"]


class _RestrictedUnpickler(pickle.Unpickler):
    """Only the globals an official CIFAR pickle uses: NumPy's array rebuilders and the codec for bytes."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR file")
        if name == "_reconstruct":                 # numpy.core became numpy._core in NumPy 2
            return np.ndarray.__reduce__(np.empty(0))[0]
        return super().find_class(module, name)


def read_cifar_pickle(path, md5=None):
    """The dict in the CIFAR pickle at ``path`` with ``str`` keys, after checking its MD5 (if given)."""
    fix = "delete it (and the .tar.gz beside its folder) and download again (download=True)"
    if not os.path.exists(path):
        raise FileNotFoundError(f"missing {path}; pass download=True to fetch the CIFAR archive, or unpack the "
                                f"official python-version archive into {os.path.dirname(os.path.dirname(path))}")
    if md5 is not None and (got := md5_file(path)) != md5:
        raise ValueError(f"{path} is corrupt or truncated: MD5 {got}, expected {md5}; {fix}")
    try:
        with open(path, "rb") as f:
            entry = _RestrictedUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a readable CIFAR file ({e}); {fix}") from None
    if not isinstance(entry, dict):
        raise ValueError(f"{path} is not a CIFAR file (holds a {type(entry).__name__}, not a dict); {fix}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _names(values):
    return [v.decode("latin1") if isinstance(v, bytes) else str(v) for v in values]


class CIFAR10(VisionDataset):
    """32 x 32 colour images in 10 classes: 50 000 training, 10 000 test.  ``data`` uint8 (N, 3, 32, 32).

    Files live in ``root/cifar-10-batches-py/`` (torchvision's layout); ``download=True`` fetches the archive
    from ``mirrors`` (tried in order), checks its MD5 and unpacks it.  Each batch file's MD5 is checked on load.
    """
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    filename, tgz_md5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"
    base_folder = "cifar-10-batches-py"
    train_list = [("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                  ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                  ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                  ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                  ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")]
    test_list = [("test_batch", "40351d587109b95175f43aff81a1287e")]
    meta = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888", "label_names")
    label_key, num_classes = "labels", 10

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root, self.train = os.path.expanduser(root if root is not None else default_root()), train
        if download:
            self.download()
        images, labels = [], []
        for name, md5 in self.train_list if train else self.test_list:
            path = os.path.join(self.root, self.base_folder, name)
            entry = read_cifar_pickle(path, md5)
            data, targets = entry.get("data"), entry.get(self.label_key)
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or \
                    data.shape[1] != 3072 or targets is None or len(targets) != len(data):
                raise ValueError(f"{path}: expected 'data' uint8 (n, 3072) and one '{self.label_key}' entry per "
                                 f"image; delete it and download again (download=True)")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(targets, dtype=np.int64))
        labels = np.concatenate(labels)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"{type(self).__name__}: labels outside 0..{self.num_classes - 1} in {self.root}")
        name, md5, key = self.meta
        self.classes = _names(read_cifar_pickle(os.path.join(self.root, self.base_folder, name), md5)[key])
        super().__init__(np.concatenate(images), labels, transform, target_transform)

    def _intact(self):
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.exists(os.path.join(folder, n)) and md5_file(os.path.join(folder, n)) == md5
                   for n, md5 in self.train_list + self.test_list + [self.meta[:2]])

    def download(self):
        """Fetch and unpack the archive unless every batch file is already present and intact."""
        if self._intact():
            return
        archive = os.path.join(self.root, self.filename)
        if not (os.path.exists(archive) and md5_file(archive) == self.tgz_md5):
            download_url([m + self.filename for m in self.mirrors], archive, self.tgz_md5)
        extract_archive(archive, self.root)


class CIFAR100(CIFAR10):
    """32 x 32 colour images in 100 classes (``fine_labels``): 50 000 training, 10 000 test."""
    filename, tgz_md5 = "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"
    base_folder = "cifar-100-python"
    train_list = [("train", "16019d7e3df5f24257cddd939b257f8d")]
    test_list = [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")]
    meta = ("meta", "7973b15100ade9c7d40fb424638fde48", "fine_label_names")
    label_key, num_classes = "fine_labels", 100
