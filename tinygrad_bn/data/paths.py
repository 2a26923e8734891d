"""Where dataset files are looked for, and the error raised when they are not there.

One directory holds everything tinygrad_bn reads or caches: the ``data_dir``
argument if given, else the ``TINYGRAD_BN_DATA`` environment variable, else the
user cache directory (``$XDG_CACHE_HOME/tinygrad_bn`` or ``~/.cache/tinygrad_bn``).
Each dataset has its own subfolder there (``mnist/``, ``cifar-10-batches-py/``),
but files placed directly in the directory are found too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "DataNotFoundError",
    "user_cache_dir",
    "resolve_data_dir",
    "find_dataset_dir",
]

DATA_DIR_ENV = "TINYGRAD_BN_DATA"


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


def user_cache_dir() -> Path:
    """The per-user cache directory: ``$XDG_CACHE_HOME/tinygrad_bn`` or ``~/.cache/tinygrad_bn``."""
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg_cache and Path(xdg_cache).is_absolute():
        return Path(xdg_cache) / "tinygrad_bn"
    return Path.home() / ".cache" / "tinygrad_bn"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir: ``data_dir`` if given, else ``$TINYGRAD_BN_DATA``, else ``user_cache_dir()``.

    The directory is not created and need not exist.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return user_cache_dir()


def find_dataset_dir(
    data_dir: Path, subfolder: str, required_files: Sequence[Sequence[str]]
) -> Path | None:
    """The first of ``data_dir/subfolder`` and ``data_dir`` that holds every required file.

    ``required_files`` lists, per file, the acceptable names (e.g. with and without
    ``.gz``). Returns None when neither directory has them all.
    """
    for candidate in (data_dir / subfolder, data_dir):
        if all(any((candidate / name).is_file() for name in names) for names in required_files):
            return candidate
    return None
