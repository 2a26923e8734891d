"""Minibatches: one epoch with ``iterate_minibatches``, many with a re-iterable ``DataLoader``.

Each epoch visits every example exactly once (the last batch may be short unless
``drop_last``). Shuffling uses a numpy Generator: an int ``seed`` gives the same
order on every call, a Generator passed in advances so successive epochs differ
but the whole run stays reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["iterate_minibatches", "DataLoader"]

Seed = int | np.random.Generator | None


def _check_arrays(x: Any, y: Any, batch_size: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate the iterator's arguments; return x and y as numpy arrays."""
    # bool is an int subclass, but batch_size=True is surely a mistake.
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"x and y must have a leading example axis, got shapes {x.shape} and {y.shape}"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of examples, got {x.shape[0]} (x shape "
            f"{x.shape}) and {y.shape[0]} (y shape {y.shape})"
        )
    return x, y


def _batch_count(n: int, batch_size: int, drop_last: bool) -> int:
    """Number of batches an epoch of ``n`` examples yields."""
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_minibatches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: Seed = None,
    drop_last: bool = False,
    as_tensors: bool = True,
) -> Iterator[tuple[Any, Any]]:
    """One epoch of ``(x_batch, y_batch)`` pairs: Tensors, or arrays if not ``as_tensors``.

    ``seed`` (int, Generator or None) drives the shuffle. Tensors keep the arrays'
    dtypes and do not require grad.
    """
    # Validate now, not at the first next(): a plain generator would defer the error.
    x, y = _check_arrays(x, y, batch_size)
    to_output = _tensor_pair if as_tensors else _array_pair
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
    return _batches(x, y, order, batch_size, drop_last, to_output)


def _array_pair(x_batch: np.ndarray, y_batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch as numpy arrays."""
    return x_batch, y_batch


def _tensor_pair(x_batch: np.ndarray, y_batch: np.ndarray) -> tuple[Any, Any]:
    """The batch as Tensors (which keep the arrays' dtypes)."""
    # Imported here so the data layer loads without the engine, and to avoid an import cycle.
    from tinygrad_bn.tensor import Tensor

    return Tensor(x_batch), Tensor(y_batch)


def _batches(
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    drop_last: bool,
    to_output: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]],
) -> Iterator[tuple[Any, Any]]:
    """Yield ``to_output(x[rows], y[rows])`` for consecutive slices of ``order``."""
    for batch_index in range(_batch_count(len(order), batch_size, drop_last)):
        rows = order[batch_index * batch_size : (batch_index + 1) * batch_size]
        yield to_output(x[rows], y[rows])


class DataLoader:
    """Re-iterable minibatches: each ``for`` loop over it is one epoch, reshuffled."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: Seed = None,
        drop_last: bool = False,
        as_tensors: bool = True,
    ) -> None:
        self.x, self.y = _check_arrays(x, y, batch_size)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.as_tensors = as_tensors
        # One Generator for the loader's life, so epoch k's order depends on the seed and k.
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """One epoch of batches."""
        return iterate_minibatches(
            self.x,
            self.y,
            self.batch_size,
            shuffle=self.shuffle,
            seed=self.rng,
            drop_last=self.drop_last,
            as_tensors=self.as_tensors,
        )

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return _batch_count(self.x.shape[0], self.batch_size, self.drop_last)
