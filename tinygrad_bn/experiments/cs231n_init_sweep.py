"""`cs231n-init-sweep`: CS231n assignment 2's weight-scale sweep of an 8-layer net.

Seven hidden layers of 50 (ReLU; BatchNorm before each ReLU in the BN variant),
20 weight scales ``np.logspace(-4, 0, 20)``, each net trained like `cs231n-deep`
(Adam lr 1e-3, 10 epochs, batches of 50 from 1,000 examples, same data
preprocessing and validation split). The figure plots, against the scale on a
log axis, the best validation accuracy, the best training accuracy and the
final training loss (mean over the last 100 steps) of both variants.
Every (scale, variant) pair is an independent task with its own Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    Experiment,
    ExperimentConfig,
    build_mlp,
    format_table,
    positive,
    task_rng,
)
from tinygrad_bn.experiments.cs231n_deep import (
    NUM_CLASSES,
    course_data,
    history_rows,
    solver_train,
    steps_per_epoch,
)

NAME = "cs231n-init-sweep"
VARIANTS = ("bn", "plain")


@dataclass
class Config(ExperimentConfig):
    """The notebook's settings; shrink num_scales / epochs / train_size for quick runs."""

    hidden_sizes: tuple[int, ...] = (50, 50, 50, 50, 50, 50, 50)
    num_scales: int = positive(20)
    epochs: int = positive(10)
    batch_size: int = positive(50)
    train_size: int = positive(1000)
    val_size: int = positive(1000)
    lr: float = 1e-3
    loss_window: int = positive(100)

    @property
    def scales(self) -> np.ndarray:
        """The weight-init scales, from 1e-4 up to 1, log-spaced."""
        return np.logspace(-4, 0, self.num_scales)

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in a few seconds (tests, smoke runs)."""
        return cls(**{"num_scales": 2, "epochs": 1, "train_size": 100, "val_size": 100,
                      **overrides})


def train_one(task: tuple[Config, int]) -> dict[str, Any]:
    """Task 2k trains scale k with BatchNorm, task 2k + 1 without."""
    config, index = task
    scale_index, variant = divmod(index, 2)
    scale = float(config.scales[scale_index])
    data = course_data(config)
    rng = task_rng(config.seed, index)
    model = build_mlp(data[0].shape[1], config.hidden_sizes, NUM_CLASSES, scale,
                      VARIANTS[variant] == "bn", rng, config.dtype, config.bn_impl)
    history = solver_train(model, data, config.epochs, config.batch_size, config.lr, rng)
    window = history["loss"][-config.loss_window:]
    # nanmean would hide a diverged run; a NaN in the window makes the final loss NaN.
    history["final_loss"] = float(np.mean(window))
    history["scale"] = scale
    return history


def task_params(task: tuple[Config, int]) -> dict[str, Any]:
    """The weight scale and variant of a task."""
    config, index = task
    return {"scale": float(config.scales[index // 2]), "net": VARIANTS[index % 2]}


def summary_table(results: dict[str, Any]) -> str:
    """Best validation/training accuracy and final loss per scale, BN vs plain."""
    rows = []
    for bn, plain in zip(results["runs"]["bn"], results["runs"]["plain"]):
        rows.append((f"{bn['scale']:.2e}", bn["best_val_acc"], plain["best_val_acc"],
                     bn["best_train_acc"], plain["best_train_acc"],
                     bn["final_loss"], plain["final_loss"]))
    return format_table(("scale", "BN val", "plain val", "BN train", "plain train",
                         "BN loss", "plain loss"), rows)


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: {config.num_scales} weight scales x (BN, plain), "
            f"{1 + len(config.hidden_sizes)}-layer nets, {config.epochs} epochs on "
            f"{config.train_size} {config.dataset} examples, {config.dtype}")


def tasks(config: Config) -> list[tuple[Config, int]]:
    """Two tasks per weight scale (see `train_one`)."""
    return [(config, i) for i in range(2 * config.num_scales)]


def progress_line(task: tuple[Config, int], result: dict[str, Any]) -> str:
    """The log line of one finished net."""
    return (f"  scale {result['scale']:.2e} {VARIANTS[task[1] % 2]:>5}: "
            f"best validation accuracy {result['best_val_acc']:.3f}")


def collect(config: Config, histories: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: the scales and, per variant, one history per scale."""
    return {
        "title": f"{NAME} ({config.dataset}, {config.train_size} examples)",
        "scales": config.scales,
        "loss_window": config.loss_window,
        "runs": {"bn": histories[0::2], "plain": histories[1::2]},
    }


EXPERIMENT = Experiment(
    NAME, Config, load_data=course_data, describe=describe, tasks=tasks, run_task=train_one,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}.png", plots.plot_cs231n_init_sweep),),
    task_params=task_params,
    rows=lambda task, history: history_rows(history, steps_per_epoch(task[0])),
)
run = EXPERIMENT.run
