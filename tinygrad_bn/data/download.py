"""Downloading a file from a list of mirrors, accepting it only if its SHA-256 matches.

The bytes are hashed in memory before anything is written, so a corrupt or
substituted download never reaches the destination path; a verified file is
written atomically (temp file + rename).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tinygrad_bn._io import atomic_write_bytes

__all__ = [
    "DownloadError",
    "ChecksumMismatchError",
    "sha256_of_file",
    "download_verified",
]

# A mirror that streams forever must not exhaust memory; the largest file we fetch
# (MNIST train images, 9.9 MB gzipped) is far below this.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum; the message lists every attempt."""


class ChecksumMismatchError(ValueError):
    """Downloaded (or found) bytes do not have the SHA-256 they were expected to have."""


def sha256_of_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, timeout: float) -> bytes:
    """The body at ``url``, refusing more than MAX_DOWNLOAD_BYTES."""
    chunks = []
    total = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        while chunk := response.read(_CHUNK_BYTES):
            total += len(chunk)
            if total > MAX_DOWNLOAD_BYTES:
                raise ValueError(f"response exceeds {MAX_DOWNLOAD_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _verify(data: bytes, expected_sha256: str, source: str) -> None:
    """Raise ChecksumMismatchError unless ``data`` hashes to ``expected_sha256``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ChecksumMismatchError(
            f"SHA-256 mismatch for {source}: expected {expected_sha256.lower()}, "
            f"got {actual} ({len(data)} bytes)"
        )


def download_verified(
    urls: Sequence[str],
    destination: str | os.PathLike,
    sha256: str,
    timeout: float = 30.0,
) -> Path:
    """Fetch the first of ``urls`` whose SHA-256 is ``sha256``; write it to ``destination``.

    Mirrors are tried in order; a network error or a checksum mismatch moves on to the
    next one. Raises DownloadError listing every attempt if none succeeds, in which
    case nothing is written.
    """
    if isinstance(urls, str):
        raise TypeError("download_verified: urls must be a sequence of URLs, got a single str")
    if not urls:
        raise ValueError("download_verified: expected at least one URL, got none")
    destination = Path(destination)
    failures = []
    for url in urls:
        try:
            data = _fetch(url, timeout)
            _verify(data, sha256, url)
        except ChecksumMismatchError as err:
            failures.append(str(err))
            continue
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append(f"{url}: {err}")
            continue
        atomic_write_bytes(destination, data)
        return destination
    attempts = "\n  ".join(failures)
    raise DownloadError(
        f"could not download {destination.name!r} with SHA-256 {sha256}; tried:\n  {attempts}"
    )
