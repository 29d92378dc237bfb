"""Datasets in their official file formats (MNIST bundled), batch transforms and the ``DataLoader``."""
from minicnn.data import transforms
from minicnn.data.cifar import CIFAR10, CIFAR100
from minicnn.data.datasets import Subset, TensorDataset, VisionDataset, default_root
from minicnn.data.detection import MNISTDetection, detection_collate
from minicnn.data.download import DownloadError, download_url, extract_archive, md5_file
from minicnn.data.loader import DataLoader
from minicnn.data.mnist import MNIST, FashionMNIST
from minicnn.data.sampler import DistributedSampler
from minicnn.data.segmentation import MNISTSegmentation
from minicnn.data.folder import DatasetFolder, ImageFolder
from minicnn.data import datasets  # noqa: F401  (torchvision.datasets: datasets.MNIST, datasets.ImageFolder)

__all__ = ["MNIST", "FashionMNIST", "MNISTDetection", "detection_collate", "MNISTSegmentation", "CIFAR10", "CIFAR100", "VisionDataset", "TensorDataset", "Subset",
           "DataLoader", "transforms", "default_root", "download_url", "extract_archive", "md5_file",
           "DownloadError", "DistributedSampler", "ImageFolder", "DatasetFolder", "datasets"]
