"""CIFAR-10 (50,000 train / 10,000 test colour images, 32x32) from the python batches.

The files are the ones in ``cifar-10-python.tar.gz``: ``data_batch_1`` ..
``data_batch_5`` and ``test_batch``, looked for in
``<data dir>/cifar-10-batches-py/`` and then directly in ``<data dir>``. Each is a
Python-2 pickle of a dict with bytes keys: ``b'data'`` (uint8 array, one
3072-value row per image: 1024 red, then 1024 green, then 1024 blue, each
row-major 32x32), ``b'labels'`` (list of ints 0..9), ``b'batch_label'`` and
``b'filenames'``. They are read with ``safe_pickle.RestrictedUnpickler``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tinygrad_bn.data.paths import DataNotFoundError, find_dataset_dir, resolve_data_dir
from tinygrad_bn.data.safe_pickle import load_restricted_pickle
from tinygrad_bn.data.transforms import format_images, format_labels

__all__ = [
    "CIFAR10_SUBFOLDER",
    "CIFAR10_TRAIN_BATCHES",
    "CIFAR10_TEST_BATCH",
    "CIFAR10_URL",
    "CIFAR10_CLASSES",
    "read_cifar10_batch",
    "load_cifar10",
]

CIFAR10_SUBFOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_IMAGE_SHAPE = (3, 32, 32)
_VALUES_PER_IMAGE = 3 * 32 * 32


def _field(batch: dict, name: str, path: Path):
    """``batch[name]`` under either key spelling (bytes from Python 2, str if re-pickled)."""
    for key in (name.encode("ascii"), name):
        if key in batch:
            return batch[key]
    raise ValueError(
        f"{str(path)!r} has no {name!r} entry (keys: {sorted(map(repr, batch))}); "
        "expected a CIFAR-10 python batch"
    )


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch as (uint8 images (N, 3, 32, 32), int64 labels (N,))."""
    path = Path(path)
    batch = load_restricted_pickle(path, encoding="bytes")
    if not isinstance(batch, dict):
        raise ValueError(
            f"{str(path)!r} holds a {type(batch).__name__}, expected a dict (a CIFAR-10 batch)"
        )
    data = _field(batch, "data", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        described = (
            f"array of shape {data.shape} dtype {data.dtype}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise ValueError(
            f"{str(path)!r}: 'data' is a {described}, expected a uint8 array of shape "
            f"(N, {_VALUES_PER_IMAGE})"
        )
    if data.shape[1] != _VALUES_PER_IMAGE:
        raise ValueError(
            f"{str(path)!r}: 'data' has shape {data.shape}, expected (N, {_VALUES_PER_IMAGE})"
        )
    raw_labels = _field(batch, "labels", path)
    try:
        labels = np.asarray(raw_labels)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{str(path)!r}: 'labels' is not a list of integers: {err}") from err
    if labels.size and labels.dtype.kind not in "iu":  # 3.7 must not become class 3
        raise ValueError(f"{str(path)!r}: 'labels' holds {labels.dtype} values, expected integers 0..9")
    labels = labels.astype(np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(
            f"{str(path)!r}: 'labels' has shape {labels.shape}, expected ({data.shape[0]},) "
            "to match 'data'"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(
            f"{str(path)!r}: labels range {labels.min()}..{labels.max()}, expected 0..9"
        )
    return data.reshape(-1, *_IMAGE_SHAPE), labels


def _missing_cifar10_message(data_dir: Path) -> str:
    """Explain where CIFAR-10 was looked for and how to get it."""
    names = ", ".join((*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH))
    return (
        f"CIFAR-10 python batches not found: looked for {names} in "
        f"{str(data_dir / CIFAR10_SUBFOLDER)!r} and {str(data_dir)!r}. To get them, "
        f"download {CIFAR10_URL} (about 163 MB) and extract it into {str(data_dir)!r} "
        f"(e.g. tar -xzf cifar-10-python.tar.gz -C {str(data_dir)!r}), which creates the "
        f"{CIFAR10_SUBFOLDER}/ folder. The data directory is the data_dir argument, else "
        "$TINYGRAD_BN_DATA, else ~/.cache/tinygrad_bn."
    )


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    normalize: bool = True,
    flatten: bool = False,
    one_hot: bool = False,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 as ``((x_train, y_train), (x_test, y_test))`` from the python batches.

    Images are float32 in [0, 1] if ``normalize`` else uint8, shaped (N, 3, 32, 32)
    (channels first) or (N, 3072) if ``flatten``; labels are int64 (N,), or float32
    (N, 10) if ``one_hot``. Class names are in ``CIFAR10_CLASSES``.
    """
    base = resolve_data_dir(data_dir)
    batch_names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
    directory = find_dataset_dir(base, CIFAR10_SUBFOLDER, [(name,) for name in batch_names])
    if directory is None:
        raise DataNotFoundError(_missing_cifar10_message(base))
    train_parts = [read_cifar10_batch(directory / name) for name in CIFAR10_TRAIN_BATCHES]
    train_images = np.concatenate([images for images, _ in train_parts])
    train_labels = np.concatenate([labels for _, labels in train_parts])
    test_images, test_labels = read_cifar10_batch(directory / CIFAR10_TEST_BATCH)
    return (
        (format_images(train_images, normalize, flatten), format_labels(train_labels, one_hot)),
        (format_images(test_images, normalize, flatten), format_labels(test_labels, one_hot)),
    )
