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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    ExperimentConfig,
    RunResult,
    build_mlp,
    format_table,
    json_safe,
    positive,
    prepare_out_dir,
    results_payload,
    task_rng,
    write_json,
)
from tinygrad_bn.experiments.cs231n_deep import NUM_CLASSES, course_data, solver_train
from tinygrad_bn.experiments.parallel import run_tasks

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


def summary_table(results: dict[str, Any]) -> str:
    """Best validation/training accuracy and final loss per scale, BN vs plain."""
    rows = []
    for bn, plain in zip(results["runs"]["bn"], results["runs"]["plain"]):
        rows.append((f"{bn['scale']:.2e}", bn["best_val_acc"], plain["best_val_acc"],
                     bn["best_train_acc"], plain["best_train_acc"],
                     bn["final_loss"], plain["final_loss"]))
    return format_table(("scale", "BN val", "plain val", "BN train", "plain train",
                         "BN loss", "plain loss"), rows)


def run(
    config: Config | None = None,
    *,
    jobs: int | None = 1,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Run the sweep; write `cs231n-init-sweep.png` and `.json` into `out_dir`."""
    config = config if config is not None else Config()
    out = prepare_out_dir(out_dir)
    course_data(config)  # fail early, in this process, if the data is missing
    say = log or (lambda _: None)
    say(f"{NAME}: {config.num_scales} weight scales x (BN, plain), "
        f"{1 + len(config.hidden_sizes)}-layer nets, {config.epochs} epochs on "
        f"{config.train_size} {config.dataset} examples, {config.dtype}")
    start = time.perf_counter()
    tasks = [(config, i) for i in range(2 * config.num_scales)]

    def progress(i: int, r: dict[str, Any]) -> None:
        say(f"  scale {r['scale']:.2e} {VARIANTS[i % 2]:>5}: "
            f"best validation accuracy {r['best_val_acc']:.3f}")

    histories = run_tasks(train_one, tasks, jobs, progress)
    seconds = time.perf_counter() - start
    results = json_safe({
        "title": f"{NAME} ({config.dataset}, {config.train_size} examples)",
        "scales": config.scales,
        "loss_window": config.loss_window,
        "runs": {"bn": histories[0::2], "plain": histories[1::2]},
    })
    # The JSON first: if drawing fails (no matplotlib), the results are kept.
    js = write_json(out / f"{NAME}.json", results_payload(NAME, config, results, seconds))
    png = plots.plot_cs231n_init_sweep(results, out / f"{NAME}.png")
    return RunResult(NAME, config.to_dict(), results, [png, js], summary_table(results), seconds)
