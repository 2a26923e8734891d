"""CS231n's image-grid helpers for looking at filters and images (plain numpy, no autograd).

Replaces ``from cs231n.vis_utils import *``. Images are (N, H, W, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil, sqrt

import numpy as np

__all__ = ["np", "visualize_grid", "vis_grid", "vis_nn"]


def _images(op: str, Xs: np.ndarray) -> tuple[int, int, int, int]:
    Xs = np.asarray(Xs)
    if Xs.ndim != 4:
        raise ValueError(f"{op}: Xs must have shape (N, H, W, C), got shape {Xs.shape}")
    return Xs.shape


def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """A ceil(sqrt(N))-square grid of the images, each rescaled to [0, ubound], `padding` zeros apart."""
    n, h, w, c = _images("visualize_grid", Xs)
    side = int(ceil(sqrt(n)))
    grid = np.zeros((h * side + padding * (side - 1), w * side + padding * (side - 1), c))
    for k in range(n):
        row, col = divmod(k, side)
        img = np.asarray(Xs[k])
        low, high = img.min(), img.max()
        top, left = row * (h + padding), col * (w + padding)
        # A constant image divides 0 by 0, as the course's does (numpy warns, the tile is nan).
        grid[top:top + h, left:left + w] = ubound * (img - low) / (high - low)
    return grid


def vis_grid(Xs: np.ndarray) -> np.ndarray:
    """The images in a square grid one pixel apart (gaps at the minimum), all rescaled to [0, 1]."""
    n, h, w, c = _images("vis_grid", Xs)
    side = int(ceil(sqrt(n)))
    grid = np.full((side * h + side, side * w + side, c), np.min(Xs), dtype=np.asarray(Xs).dtype)
    for k in range(n):
        row, col = divmod(k, side)
        grid[row * (h + 1):row * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = Xs[k]
    return (grid - grid.min()) / (grid.max() - grid.min())


def vis_nn(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """A grid of rows of (H, W, C) images one pixel apart (gaps at 1), all rescaled to [0, 1]."""
    first = np.asarray(rows[0][0])
    if first.ndim != 3:
        raise ValueError(f"vis_nn: rows must hold (H, W, C) images, got shape {first.shape}")
    h, w, c = first.shape
    grid = np.ones((len(rows) * (h + 1), len(rows[0]) * (w + 1), c), first.dtype)
    for y, row in enumerate(rows):
        for x, img in enumerate(row):
            grid[y * (h + 1):y * (h + 1) + h, x * (w + 1):x * (w + 1) + w] = img
    return (grid - grid.min()) / (grid.max() - grid.min())
