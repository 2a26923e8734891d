"""Datasets and minibatches: the embedded 5k MNIST subset, full MNIST, CIFAR-10, batching.

Every loader returns ``((x_train, y_train), (x_test, y_test))`` as numpy arrays;
``iterate_minibatches`` / ``DataLoader`` turn them into Tensor batches. Files are
found in the data directory (``data_dir`` argument, else ``$TINYGRAD_BN_DATA``,
else ``~/.cache/tinygrad_bn``); docs/data.md has the details.
"""

from tinygrad_bn.data.batching import DataLoader, iterate_minibatches
from tinygrad_bn.data.cifar10 import CIFAR10_CLASSES, load_cifar10, read_cifar10_batch
from tinygrad_bn.data.download import ChecksumMismatchError, DownloadError
from tinygrad_bn.data.mnist import MNIST_GZ_SHA256, MNIST_MIRRORS, download_mnist, load_mnist
from tinygrad_bn.data.mnist5k import load_mnist5k
from tinygrad_bn.data.paths import (
    DATA_DIR_ENV,
    DataNotFoundError,
    resolve_data_dir,
    user_cache_dir,
)
from tinygrad_bn.data.safe_pickle import ForbiddenGlobalError
from tinygrad_bn.data.transforms import to_one_hot

__all__ = [
    "CIFAR10_CLASSES",
    "DATA_DIR_ENV",
    "MNIST_GZ_SHA256",
    "MNIST_MIRRORS",
    "ChecksumMismatchError",
    "DataLoader",
    "DataNotFoundError",
    "DownloadError",
    "ForbiddenGlobalError",
    "download_mnist",
    "iterate_minibatches",
    "load_cifar10",
    "load_mnist",
    "load_mnist5k",
    "read_cifar10_batch",
    "resolve_data_dir",
    "to_one_hot",
    "user_cache_dir",
]
