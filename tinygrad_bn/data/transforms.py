"""The output conventions every dataset loader shares: pixel scaling, layout, one-hot labels."""

from __future__ import annotations

import numpy as np

__all__ = ["to_one_hot", "format_images", "format_labels"]


def to_one_hot(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Integer labels of shape (N,) as a float32 one-hot matrix of shape (N, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"to_one_hot: expected a 1-d integer label array, got shape {labels.shape} "
            f"dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"to_one_hot: labels must lie in 0..{num_classes - 1}, got range "
            f"{labels.min()}..{labels.max()}"
        )
    encoded = np.zeros((labels.shape[0], num_classes), dtype=np.float32)
    encoded[np.arange(labels.shape[0]), labels] = 1.0
    return encoded


def format_images(images: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 in [0, 1] if ``normalize``; (N, C*H*W) if ``flatten``."""
    if flatten:
        images = images.reshape(images.shape[0], -1)
    if normalize:
        # Divide in float32 so a float32 graph is never silently upcast to float64.
        return images.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(images)


def format_labels(labels: np.ndarray, one_hot: bool, num_classes: int = 10) -> np.ndarray:
    """Labels as int64 (N,), or float32 one-hot (N, num_classes) if ``one_hot``."""
    if one_hot:
        return to_one_hot(labels, num_classes)
    return labels.astype(np.int64, copy=False)
