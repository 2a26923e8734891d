"""`cs231n-deep`: CS231n assignment 2's deep-network comparison, with and without BatchNorm.

A 6-layer fully connected net (five hidden layers of 100, ReLU; BatchNorm
between each affine layer and its ReLU in the BN variant), weights
``2e-2 * standard_normal((fan_in, fan_out))``, trained with Adam (lr 1e-3) for
10 epochs in batches of 50 drawn with replacement from 1,000 training examples.
The schedule is the course Solver's: 1000 / 50 = 20 steps per epoch, training
and validation accuracy measured at the first step, at every epoch's end and at
the last step (11 points), the best-validation snapshot kept.

Data follow the course's preprocessing: pixel values 0..255 minus the mean
training image. Validation is the last 1,000 examples of the training set
(CIFAR-10: images 49,000..49,999, the course's split); the mean is taken over
the rest. Each net is its own task with its own Generator (see `common.task_rng`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_bn import nn, optim
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    Experiment,
    ExperimentConfig,
    accuracy,
    build_mlp,
    format_table,
    load_dataset,
    positive,
    task_rng,
    train_step,
)

NAME = "cs231n-deep"
NUM_CLASSES = 10
PIXEL_RANGE = 255.0  # the course works in raw pixel units, not [0, 1]


@dataclass
class Config(ExperimentConfig):
    """The notebook's settings; shrink epochs / train_size / val_size for quick runs."""

    hidden_sizes: tuple[int, ...] = (100, 100, 100, 100, 100)
    weight_scale: float = 2e-2
    epochs: int = positive(10)
    batch_size: int = positive(50)
    train_size: int = positive(1000)
    val_size: int = positive(1000)
    lr: float = 1e-3

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in about a second (tests, smoke runs)."""
        return cls(**{"epochs": 2, "train_size": 100, "val_size": 100, **overrides})


@functools.lru_cache(maxsize=2)
def _centred_split(
    dataset: str, data_dir: str | None, train_size: int, val_size: int
) -> tuple[np.ndarray, ...]:
    """float32 (x_train, y_train, x_val, y_val) in pixel units minus the mean training image."""
    (x, y), _ = load_dataset(dataset, data_dir)
    if train_size + val_size > len(x):
        raise ValueError(
            f"{dataset}: train_size + val_size = {train_size + val_size} examples asked for, "
            f"but the training set has {len(x)}"
        )
    pool = len(x) - val_size
    mean = x[:pool].mean(axis=0, dtype=np.float64)
    x_train = ((x[:train_size] - mean) * PIXEL_RANGE).astype(np.float32)
    x_val = ((x[pool:] - mean) * PIXEL_RANGE).astype(np.float32)
    return x_train, y[:train_size], x_val, y[pool:]


def course_data(config: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val) for a cs231n preset, in the config's dtype."""
    x_train, y_train, x_val, y_val = _centred_split(
        config.dataset, config.data_dir, config.train_size, config.val_size
    )
    return x_train.astype(config.dtype), y_train, x_val.astype(config.dtype), y_val


def solver_train(
    model: nn.Module,
    data: Sequence[np.ndarray],
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Train like the course Solver (Adam); loss per step, accuracies per epoch, bests."""
    x_train, y_train, x_val, y_val = data
    n = len(x_train)
    per_epoch = max(n // batch_size, 1)
    total_steps = epochs * per_epoch
    measured = set(measurement_steps(total_steps, per_epoch))
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history: dict[str, Any] = {"loss": [], "train_acc": [], "val_acc": []}
    best_val, best_state = -1.0, None
    with np.errstate(all="ignore"):  # large scales without BatchNorm overflow; that is data
        for step in range(total_steps):
            rows = rng.integers(0, n, batch_size)
            history["loss"].append(train_step(model, optimizer, x_train[rows], y_train[rows]))
            if step in measured:
                history["train_acc"].append(accuracy(model, x_train, y_train))
                history["val_acc"].append(accuracy(model, x_val, y_val))
                if history["val_acc"][-1] > best_val:
                    best_val, best_state = history["val_acc"][-1], model.state_dict()
    if best_state is not None:
        model.load_state_dict(best_state)  # the Solver ends holding its best snapshot
    history["best_val_acc"] = max(history["val_acc"])
    history["best_train_acc"] = max(history["train_acc"])
    history["steps"] = total_steps
    return history


def steps_per_epoch(config: Any) -> int:
    """The Solver's steps per epoch: train_size // batch_size, at least 1."""
    return max(config.train_size // config.batch_size, 1)


def measurement_steps(total_steps: int, per_epoch: int) -> list[int]:
    """The steps after which the Solver measures accuracy: the first, each epoch's end, the last.

    (The last step is usually an epoch's end too: one measurement, not two.)
    """
    return [step for step in range(total_steps)
            if step == 0 or step == total_steps - 1 or (step + 1) % per_epoch == 0]


def history_rows(history: dict[str, Any], per_epoch: int) -> list[dict[str, Any]]:
    """One row per measurement: its step, training and validation accuracy, that step's loss."""
    steps = measurement_steps(history["steps"], per_epoch)
    return [{"evaluation": k, "step": step, "train_acc": history["train_acc"][k],
             "val_acc": history["val_acc"][k], "loss": history["loss"][step]}
            for k, step in enumerate(steps)]


def train_one(task: tuple[Config, int, str]) -> dict[str, Any]:
    """Build and train the BN ("bn") or baseline ("plain") net of task `index`."""
    config, index, kind = task
    data = course_data(config)
    rng = task_rng(config.seed, index)
    model = build_mlp(data[0].shape[1], config.hidden_sizes, NUM_CLASSES, config.weight_scale,
                      kind == "bn", rng, config.dtype, config.bn_impl)
    return solver_train(model, data, config.epochs, config.batch_size, config.lr, rng)


def summary_table(results: dict[str, Any]) -> str:
    """Final and best accuracies of both nets."""
    rows = []
    for key, label in (("bn", "batchnorm"), ("plain", "baseline")):
        r = results["runs"][key]
        rows.append((label, r["loss"][-1], r["train_acc"][-1], r["val_acc"][-1],
                     r["best_train_acc"], r["best_val_acc"]))
    return format_table(
        ("net", "final loss", "final train", "final val", "best train", "best val"), rows
    )


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: {1 + len(config.hidden_sizes)}-layer net with and without BatchNorm, "
            f"{config.epochs} epochs on {config.train_size} {config.dataset} examples, {config.dtype}")


def tasks(config: Config) -> list[tuple[Config, int, str]]:
    """Two tasks: the BN net, then the baseline."""
    return [(config, 0, "bn"), (config, 1, "plain")]


def progress_line(task: tuple[Config, int, str], result: dict[str, Any]) -> str:
    """The log line of one finished net."""
    return f"  {task[2]:>5}: best validation accuracy {result['best_val_acc']:.3f}"


def collect(config: Config, histories: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: both nets' histories."""
    bn, plain = histories
    return {
        "title": f"{NAME} ({config.dataset}, {config.train_size} examples, "
                 f"weight scale {config.weight_scale:g})",
        "runs": {"bn": bn, "plain": plain},
    }


EXPERIMENT = Experiment(
    NAME, Config, load_data=course_data, describe=describe, tasks=tasks, run_task=train_one,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}.png", plots.plot_cs231n_deep),),
    task_params=lambda task: {"net": task[2]},
    rows=lambda task, history: history_rows(history, steps_per_epoch(task[0])),
)
run = EXPERIMENT.run
