"""`dlfs-init-sweep`: Deep Learning from Scratch, chapter 6, BatchNorm vs weight-init scale.

For each of 16 weight scales ``np.logspace(0, -4, 16)``, two 784-100-100-100-100-100-10
ReLU MLPs, one with BatchNorm before every ReLU and one without, are trained in
lockstep on the same minibatches: SGD, lr 0.01, batches of 100 drawn with
replacement from the first 1,000 training digits. The book's loop: at step i
both nets take one SGD step; when i is a multiple of 10 (one "epoch" of
1,000 / 100 steps) their training accuracy on the 1,000 digits is measured
(BatchNorm in evaluation mode); the run stops after the 20th evaluation, so
each net takes 191 steps. The figure is the book's 4x4 grid, BN solid, plain dashed.

BatchNorm uses the book's eps, 1e-6 (it matters: at the smallest scales the
pre-BN variance is ~1e-7, so eps 1e-5 would damp every layer's output). Two
deliberate differences from the book: the running variance follows PyTorch
(unbiased; the book's is biased, which only affects evaluation by a factor
99/100), and random numbers come from a per-scale Generator, not numpy's
global state (see `common.task_rng`).
"""

from __future__ import annotations

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
    take,
    task_rng,
    train_step,
)

NAME = "dlfs-init-sweep"
HIDDEN_SIZES = (100, 100, 100, 100, 100)
NUM_CLASSES = 10
BOOK_BN_EPS = 1e-6  # the book writes 10e-7
NETS = (("bn", True), ("plain", False))  # the book trains the BN net first in each step


@dataclass
class Config(ExperimentConfig):
    """The book's settings; shrink num_scales / evaluations / train_size for quick runs."""

    num_scales: int = positive(16)
    evaluations: int = positive(20)
    train_size: int = positive(1000)
    batch_size: int = positive(100)
    lr: float = 0.01
    bn_eps: float = BOOK_BN_EPS

    @property
    def scales(self) -> np.ndarray:
        """The weight-init scales, from 1 down to 1e-4, log-spaced."""
        return np.logspace(0, -4, self.num_scales)

    @property
    def eval_every(self) -> int:
        """Steps per evaluation: the book's train_size / batch_size (at least 1)."""
        return max(self.train_size // self.batch_size, 1)

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in about a second (tests, smoke runs)."""
        return cls(**{"num_scales": 2, "evaluations": 3, "train_size": 200, **overrides})


def training_digits(config: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first `train_size` training examples, in the config's dtype (also init-diagnostics')."""
    (x_train, y_train), _ = load_dataset(config.dataset, config.data_dir)
    x = take(config.dataset, x_train, config.train_size).astype(config.dtype)
    return x, take(config.dataset, y_train, config.train_size)


@dataclass
class BookPair:
    """The book's BN and plain nets for one weight scale, with their SGD optimizers.

    Both draw their weights (the BN net first) and then every minibatch from the
    task's one Generator, and both train on the same minibatches. (A grid task
    holds a single net, trained the same way.)
    """

    scale: float
    x: np.ndarray
    y: np.ndarray
    rng: np.random.Generator
    nets: dict[str, nn.Sequential]
    optimizers: dict[str, optim.SGD]

    @classmethod
    def for_task(cls, config: Any, index: int) -> BookPair:
        """Task `index` of a dlfs-init-sweep or init-diagnostics config: scale config.scales[index]."""
        scale = float(config.scales[index])
        return cls.build(config, index, scale, {key: "batch" if use_bn else "none"
                                                for key, use_bn in NETS})

    @classmethod
    def build(cls, config: Any, index: int, scale: float, norms: dict[str, str],
              hidden_sizes: Sequence[int] = HIDDEN_SIZES) -> BookPair:
        """Nets named like `norms` (name -> "batch", "layer" or "none"), drawn in that order."""
        x, y = training_digits(config)
        rng = task_rng(config.seed, index)
        nets = {key: build_mlp(x.shape[1], hidden_sizes, NUM_CLASSES, scale, norm == "batch", rng,
                               config.dtype, config.bn_impl, config.bn_eps, norm=norm)
                for key, norm in norms.items()}
        optimizers = {key: optim.SGD(net.parameters(), lr=config.lr) for key, net in nets.items()}
        return cls(scale, x, y, rng, nets, optimizers)

    def sgd_step(self, batch_size: int) -> dict[str, float]:
        """Both nets take one step on one minibatch drawn with replacement; their losses."""
        rows = self.rng.integers(0, len(self.x), batch_size)
        xb, yb = self.x[rows], self.y[rows]
        return {key: train_step(net, self.optimizers[key], xb, yb) for key, net in self.nets.items()}

    def train(self, evaluations: int, eval_every: int, batch_size: int) -> dict[str, Any]:
        """The book's loop: a step of every net, and every `eval_every` steps their accuracy.

        Stops after the `evaluations`-th evaluation; returns the nets' curves
        (`train_acc` per evaluation, `loss` per step) and the number of steps.
        """
        curves: dict[str, dict[str, list[float]]] = {key: {"train_acc": [], "loss": []}
                                                     for key in self.nets}
        first = next(iter(curves.values()))
        step = 0
        # Without BatchNorm the large scales diverge to inf/nan: that is the finding, not an error.
        with np.errstate(all="ignore"):
            while True:
                for key, loss in self.sgd_step(batch_size).items():
                    curves[key]["loss"].append(loss)
                if step % eval_every == 0:
                    for key, net in self.nets.items():
                        curves[key]["train_acc"].append(accuracy(net, self.x, self.y))
                    if len(first["train_acc"]) >= evaluations:
                        break
                step += 1
        return {"steps": step + 1, **curves}


def train_pair(task: tuple[Config, int]) -> dict[str, Any]:
    """Train the BN and plain nets of one weight scale in lockstep; their curves."""
    config, index = task
    pair = BookPair.for_task(config, index)
    return {"scale": pair.scale, **pair.train(config.evaluations, config.eval_every, config.batch_size)}


def curve_rows(result: dict[str, Any], eval_every: int, nets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per net and evaluation: its step, training accuracy and the loss of that step."""
    return [{"net": key, "evaluation": k, "step": k * eval_every, "train_acc": acc,
             "loss": result[key]["loss"][k * eval_every]}
            for key in nets for k, acc in enumerate(result[key]["train_acc"])]


def task_params(task: tuple[Config, int]) -> dict[str, Any]:
    """The weight scale of a task."""
    config, index = task
    return {"scale": float(config.scales[index])}


def table_rows(task: tuple[Config, int], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy table of one scale: a row per net and evaluation."""
    return curve_rows(result, task[0].eval_every, [key for key, _ in NETS])


def summary_table(results: dict[str, Any]) -> str:
    """Final and best training accuracy per scale, BN vs plain."""
    rows = []
    for run in results["runs"]:
        bn, plain = run["bn"]["train_acc"], run["plain"]["train_acc"]
        rows.append((f"{run['scale']:.2e}", bn[-1], plain[-1], max(bn), max(plain)))
    return format_table(("scale", "BN final", "plain final", "BN best", "plain best"), rows)


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: {config.num_scales} weight scales x (BN + plain) on {config.train_size} "
            f"{config.dataset} examples, {config.evaluations} evaluations, {config.dtype}")


def progress_line(task: tuple[Config, int], result: dict[str, Any]) -> str:
    """The log line of one finished weight scale."""
    return (f"  scale {result['scale']:.2e}: train accuracy BN {result['bn']['train_acc'][-1]:.3f}, "
            f"plain {result['plain']['train_acc'][-1]:.3f}")


def collect(config: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: one run per scale, and the steps at which accuracy was measured."""
    return {
        "title": f"{NAME} ({config.dataset}, {config.train_size} examples)",
        "scales": config.scales,
        "eval_steps": [k * config.eval_every for k in range(config.evaluations)],
        "runs": runs,
    }


def tasks(config: Config) -> list[tuple[Config, int]]:
    """One task per weight scale."""
    return [(config, i) for i in range(config.num_scales)]


EXPERIMENT = Experiment(
    NAME, Config, load_data=training_digits, describe=describe, tasks=tasks, run_task=train_pair,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}.png", plots.plot_dlfs_init_sweep),),
    task_params=task_params, rows=table_rows,
)
run = EXPERIMENT.run
