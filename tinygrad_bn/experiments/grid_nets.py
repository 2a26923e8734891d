"""The training protocols of grid tasks: one network per task, a preset's loop for one net.

- ``dlfs``: the dlfs-init-sweep loop (SGD, batches with replacement, training
  accuracy every train_size / batch_size steps), `BookPair` with a single net;
- ``cs231n``: the cs231n-deep Solver schedule (Adam, training and validation
  accuracy at the first step and every epoch's end).

Each protocol's config is what a grid can vary (its fields are the grid's
parameters); its trainer is a module-level function of a task
``(config, point index, point)`` drawing from ``task_rng(config.seed, point index)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinygrad_bn.experiments import cs231n_deep, dlfs_init_sweep
from tinygrad_bn.experiments.common import (
    NORMS,
    ExperimentConfig,
    build_mlp,
    positive,
    task_rng,
)

GridTask = tuple[ExperimentConfig, int, dict[str, Any]]  # (config, point index, the point's params)


def _check_net(config: Any) -> None:
    if config.norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {config.norm!r}")
    for name in ("weight_scale", "lr"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


@dataclass
class DlfsNet(ExperimentConfig):
    """One net of the dlfs-init-sweep protocol: a grid point's parameters."""

    weight_scale: float = 0.01
    norm: str = "batch"
    lr: float = 0.01
    width: int = positive(100)
    depth: int = positive(len(dlfs_init_sweep.HIDDEN_SIZES))
    batch_size: int = positive(100)
    train_size: int = positive(1000)
    evaluations: int = positive(20)
    bn_eps: float = dlfs_init_sweep.BOOK_BN_EPS

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_net(self)

    @property
    def eval_every(self) -> int:
        """Steps per evaluation: train_size / batch_size (at least 1), as the book."""
        return max(self.train_size // self.batch_size, 1)

    @classmethod
    def quick(cls, **overrides: Any) -> DlfsNet:
        """A net that trains in a fraction of a second (tests, smoke runs)."""
        return cls(**{"evaluations": 3, "train_size": 200, **overrides})


def train_dlfs_net(task: GridTask) -> dict[str, Any]:
    """Train one net with the book's loop; its measurements."""
    config, index, _ = task
    pair = dlfs_init_sweep.BookPair.build(config, index, config.weight_scale, {"net": config.norm},
                                          (config.width,) * config.depth)
    result = pair.train(config.evaluations, config.eval_every, config.batch_size)
    return {"steps": result["steps"],
            "evaluations": dlfs_init_sweep.curve_rows(result, config.eval_every, ["net"])}


@dataclass
class Cs231nNet(ExperimentConfig):
    """One net of the cs231n-deep protocol: a grid point's parameters."""

    weight_scale: float = 2e-2
    norm: str = "batch"
    lr: float = 1e-3
    width: int = positive(100)
    depth: int = positive(5)
    epochs: int = positive(10)
    batch_size: int = positive(50)
    train_size: int = positive(1000)
    val_size: int = positive(1000)
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_net(self)

    @classmethod
    def quick(cls, **overrides: Any) -> Cs231nNet:
        """A net that trains in a fraction of a second (tests, smoke runs)."""
        return cls(**{"epochs": 2, "train_size": 100, "val_size": 100, **overrides})


def train_cs231n_net(task: GridTask) -> dict[str, Any]:
    """Train one net like the course Solver; its measurements."""
    config, index, _ = task
    data = cs231n_deep.course_data(config)
    rng = task_rng(config.seed, index)
    model = build_mlp(data[0].shape[1], (config.width,) * config.depth, cs231n_deep.NUM_CLASSES,
                      config.weight_scale, config.norm == "batch", rng, config.dtype,
                      config.bn_impl, config.bn_eps, norm=config.norm)
    history = cs231n_deep.solver_train(model, data, config.epochs, config.batch_size, config.lr, rng)
    rows = cs231n_deep.history_rows(history, cs231n_deep.steps_per_epoch(config))
    return {"steps": history["steps"], "evaluations": [{"net": "net", **row} for row in rows]}


@dataclass(frozen=True)
class Protocol:
    """How a grid task trains: its config (the parameters), trainer, data check and metric."""

    name: str
    summary: str
    config_type: type[ExperimentConfig]
    train: Callable[[GridTask], dict[str, Any]]
    load_data: Callable[[Any], Any]
    metric: str  # the accuracy the figure and the summary show


PROTOCOLS = {
    p.name: p
    for p in (
        Protocol("dlfs", "dlfs-init-sweep's loop: SGD, training accuracy every epoch",
                 DlfsNet, train_dlfs_net, dlfs_init_sweep.training_digits, "train_acc"),
        Protocol("cs231n", "cs231n-deep's Solver: Adam, validation accuracy every epoch",
                 Cs231nNet, train_cs231n_net, cs231n_deep.course_data, "val_acc"),
    )
}
