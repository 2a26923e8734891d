"""Reader for the IDX format of the MNIST files, with every header field checked.

An IDX file is a big-endian header followed by raw values: two zero bytes, a type
code (0x08 = unsigned byte), the number of dimensions, then one 32-bit size per
dimension. MNIST label files (magic 2049 = 0x00000801) have one dimension (count),
image files (magic 2051 = 0x00000803) have three (count, rows, columns).
Reference: the format description on Yann LeCun's MNIST page.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_LABELS_MAGIC", "IDX_IMAGES_MAGIC", "read_idx"]

IDX_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions


def _read_maybe_gzipped(path: Path) -> bytes:
    """The file's bytes, decompressed if its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(
            f"{str(path)!r} is not a complete gzip file (truncated or not gzip): {err}"
        ) from err


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally ``.gz``) into a uint8 array of its dimensions.

    Raises ValueError naming the file if the magic number differs from
    ``expected_magic`` or the size is not exactly header plus data.
    """
    path = Path(path)
    raw = _read_maybe_gzipped(path)
    expected_ndim = expected_magic & 0xFF
    header_size = 4 + 4 * expected_ndim
    if len(raw) < 4:
        raise ValueError(
            f"{str(path)!r} has {len(raw)} bytes, too short for an IDX header "
            f"(expected magic number {expected_magic})"
        )
    (magic,) = struct.unpack(">i", raw[:4])
    if magic != expected_magic:
        raise ValueError(
            f"{str(path)!r} has magic number {magic}, expected {expected_magic} "
            "(wrong file, or not an IDX file)"
        )
    if len(raw) < header_size:
        raise ValueError(
            f"{str(path)!r} has {len(raw)} bytes, too short for its {header_size}-byte "
            f"IDX header (truncated)"
        )
    dims = struct.unpack(f">{expected_ndim}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected_size:
        raise ValueError(
            f"{str(path)!r} has {len(raw)} bytes (decompressed), expected exactly "
            f"{expected_size} for dimensions {dims} (truncated or trailing data)"
        )
    # Copy so callers get a writable array rather than a read-only view of ``raw``.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims).copy()
