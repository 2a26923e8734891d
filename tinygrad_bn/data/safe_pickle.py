"""A pickle reader that can rebuild numpy arrays and nothing else.

Plain ``pickle.load`` runs whatever callables the file names (``os.system`` is
enough to take over the machine), so a downloaded pickle must never reach it.
The CIFAR-10 python batches are Python-2 pickles of a dict of bytes, lists, ints
and one numpy array; rebuilding that array needs exactly three globals:
``numpy.core.multiarray._reconstruct`` (spelled ``numpy._core.multiarray`` by
numpy >= 2 when it writes pickles), ``numpy.ndarray`` and ``numpy.dtype``. Every
other global is refused before it is imported, so nothing in a hostile file runs.
A protocol-2 pickle written by Python 3 stores bytes (the array's buffer) as
``_codecs.encode(text, "latin1")``, so that pure function is allowed too.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ForbiddenGlobalError", "RestrictedUnpickler", "load_restricted_pickle"]


def _numpy_reconstruct():
    """numpy's array-unpickling helper, from wherever this numpy version keeps it."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2 (and a 1.26 alias)
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # numpy < 1.26
    return _reconstruct


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # str -> bytes: how protocol 2 spells bytes in Python 3
}


class ForbiddenGlobalError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global (class or function) outside the numpy-array allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` hands out only the globals numpy arrays need."""

    def find_class(self, module: str, name: str) -> Any:
        """Return an allow-listed global; raise ForbiddenGlobalError for any other."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS)
            raise ForbiddenGlobalError(
                f"refusing to unpickle forbidden global {module}.{name}; only {allowed} are allowed"
            ) from None


def load_restricted_pickle(path: str | os.PathLike, encoding: str = "bytes") -> Any:
    """Unpickle the file at ``path`` with RestrictedUnpickler.

    ``encoding="bytes"`` keeps Python-2 ``str`` objects as ``bytes`` (the CIFAR-10
    batches need it). A forbidden global raises ForbiddenGlobalError; any other
    failure to decode raises ValueError; both name the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding=encoding).load()
    except ForbiddenGlobalError as err:
        raise ForbiddenGlobalError(f"{str(path)!r}: {err}") from None
    # A truncated or foreign file can fail inside the unpickler in many ways
    # (EOFError, UnpicklingError, KeyError, struct.error, TypeError, ...); all mean
    # the same thing to the caller.
    except Exception as err:
        raise ValueError(
            f"{str(path)!r} is not a readable pickle (truncated, corrupt or another format): "
            f"{type(err).__name__}: {err}"
        ) from err
