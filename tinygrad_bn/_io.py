"""Crash-safe file writing and validated ``.npz`` loading.

Checkpoints and dataset caches are written with ``atomic_write_bytes`` /
``atomic_save_npz``: the data goes to a temporary file in the destination's own
directory, is flushed to disk, and is then renamed over the destination with
``os.replace``. A crash at any moment leaves either the old file or the new one,
never a half-written file. ``load_npz_checked`` is the matching reader: no
pickles, the expected keys, and a clear ``ValueError`` for a truncated or
foreign file.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["atomic_save_npz", "atomic_write_bytes", "load_npz_checked", "remove_stale_temp_files"]


def _require_parent_dir(path: Path) -> None:
    """Raise FileNotFoundError naming the directory if ``path``'s parent is missing."""
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist "
            "(create it first, e.g. with Path(...).mkdir(parents=True))"
        )


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk so a completed rename survives a power cut."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some platforms (Windows) cannot open directories; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete temp files of ``path`` left by writers that died (e.g. ``kill -9`` mid-save).

    A temp file names its writer's pid; one whose process no longer exists can
    never be renamed into place, so it is garbage. Live writers' files are kept.
    """
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else ():
        pid = candidate.name[len(path.name) + 2:].split(".")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _write_atomically(path: str | os.PathLike, write_to) -> Path:
    """Call ``write_to(file)`` on a temp file next to ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    _require_parent_dir(path)
    remove_stale_temp_files(path)
    # The temp file lives in the same directory so os.replace is a rename within one
    # filesystem (atomic), and is hidden so a crash leftover does not look like data.
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL never clobbers another writer's temp file; mode 0o666 lets the user's umask
    # decide the final permissions, as for any ordinarily created file.
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as temp_file:
            write_to(temp_file)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write_bytes: data must be bytes, got {type(data).__name__}")
    return _write_atomically(path, lambda f: f.write(data))


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save ``arrays`` as an uncompressed ``.npz`` at ``path`` atomically; returns the path.

    Unlike ``np.savez`` the name is used exactly as given (no ``.npz`` is appended), and
    object arrays are refused: they would be pickled, and ``load_npz_checked`` never
    unpickles.
    """
    if not arrays:
        raise ValueError(f"atomic_save_npz({str(path)!r}): expected at least one array, got none")
    converted = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(
                f"atomic_save_npz: array {name!r} has dtype {array.dtype}, which would be "
                "pickled; expected a numeric, boolean or string dtype"
            )
        converted[name] = array
    return _write_atomically(path, lambda f: np.savez(f, **converted))


def load_npz_checked(
    path: str | os.PathLike, expected_keys: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Load every array of the ``.npz`` at ``path`` into memory, refusing pickles.

    If ``expected_keys`` is given the file must hold exactly those keys. A missing file
    raises FileNotFoundError; a truncated, corrupt or foreign file, or a key mismatch,
    raises ValueError naming the file and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .npz file at {str(path)!r}")
    try:
        # Opening the file ourselves guarantees it is closed: np.load leaks its handle
        # when a truncated archive fails inside the NpzFile constructor.
        with open(path, "rb") as file:
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single .npy array, not an .npz archive")
            with loaded:
                # Read every member now: a truncated archive often fails only on access.
                arrays = {key: loaded[key] for key in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{str(path)!r} is not a valid .npz archive (truncated, corrupt or another "
            f"format): {err}"
        ) from err
    if expected_keys is not None:
        expected = set(expected_keys)
        found = set(arrays)
        if found != expected:
            raise ValueError(
                f"{str(path)!r} holds keys {sorted(found)}, expected exactly {sorted(expected)} "
                f"(missing: {sorted(expected - found)}, unexpected: {sorted(found - expected)})"
            )
    return arrays
