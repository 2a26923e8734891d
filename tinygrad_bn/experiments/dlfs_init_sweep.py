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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn import optim
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    ExperimentConfig,
    RunResult,
    accuracy,
    build_mlp,
    finite_or_nan,
    format_table,
    json_safe,
    load_dataset,
    loss_and_backward,
    positive,
    prepare_out_dir,
    results_payload,
    take,
    task_rng,
    write_json,
)
from tinygrad_bn.experiments.parallel import run_tasks

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


def training_digits(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The first `train_size` training examples, in the config's dtype."""
    (x_train, y_train), _ = load_dataset(config.dataset, config.data_dir)
    x = take(config.dataset, x_train, config.train_size).astype(config.dtype)
    return x, take(config.dataset, y_train, config.train_size)


def train_pair(task: tuple[Config, int]) -> dict[str, Any]:
    """Train the BN and plain nets of one weight scale in lockstep; their curves."""
    config, index = task
    x, y = training_digits(config)
    rng = task_rng(config.seed, index)
    scale = float(config.scales[index])
    nets = {key: build_mlp(x.shape[1], HIDDEN_SIZES, NUM_CLASSES, scale, use_bn, rng,
                           config.dtype, config.bn_impl, config.bn_eps)
            for key, use_bn in NETS}
    optimizers = {key: optim.SGD(net.parameters(), lr=config.lr) for key, net in nets.items()}
    curves: dict[str, dict[str, list[float]]] = {key: {"train_acc": [], "loss": []} for key in nets}
    step = 0
    # Without BatchNorm the large scales diverge to inf/nan: that is the finding, not an error.
    with np.errstate(all="ignore"):
        while True:
            rows = rng.integers(0, len(x), config.batch_size)
            xb, yb = x[rows], y[rows]
            for key, net in nets.items():
                optimizers[key].zero_grad()
                curves[key]["loss"].append(finite_or_nan(loss_and_backward(net, xb, yb)))
                optimizers[key].step()
            if step % config.eval_every == 0:
                for key, net in nets.items():
                    curves[key]["train_acc"].append(accuracy(net, x, y))
                if len(curves["bn"]["train_acc"]) >= config.evaluations:
                    break
            step += 1
    return {"scale": scale, "steps": step + 1, **curves}


def summary_table(results: dict[str, Any]) -> str:
    """Final and best training accuracy per scale, BN vs plain."""
    rows = []
    for run in results["runs"]:
        bn, plain = run["bn"]["train_acc"], run["plain"]["train_acc"]
        rows.append((f"{run['scale']:.2e}", bn[-1], plain[-1], max(bn), max(plain)))
    return format_table(("scale", "BN final", "plain final", "BN best", "plain best"), rows)


def run(
    config: Config | None = None,
    *,
    jobs: int | None = 1,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Run the sweep; write `dlfs-init-sweep.png` and `.json` into `out_dir`."""
    config = config if config is not None else Config()
    out = prepare_out_dir(out_dir)
    x, _ = training_digits(config)  # fail early, in this process, if the data is missing
    say = log or (lambda _: None)
    say(f"{NAME}: {config.num_scales} weight scales x (BN + plain) on {len(x)} "
        f"{config.dataset} examples, {config.evaluations} evaluations, {config.dtype}")
    start = time.perf_counter()

    def progress(i: int, run_: dict[str, Any]) -> None:
        say(f"  scale {run_['scale']:.2e}: train accuracy BN {run_['bn']['train_acc'][-1]:.3f}, "
            f"plain {run_['plain']['train_acc'][-1]:.3f}")

    runs = run_tasks(train_pair, [(config, i) for i in range(config.num_scales)], jobs, progress)
    seconds = time.perf_counter() - start
    results = json_safe({
        "title": f"{NAME} ({config.dataset}, {config.train_size} examples)",
        "scales": config.scales,
        "eval_steps": [k * config.eval_every for k in range(config.evaluations)],
        "runs": runs,
    })
    # The JSON first: if drawing fails (no matplotlib), the results are kept.
    js = write_json(out / f"{NAME}.json", results_payload(NAME, config, results, seconds))
    png = plots.plot_dlfs_init_sweep(results, out / f"{NAME}.png")
    return RunResult(NAME, config.to_dict(), results, [png, js], summary_table(results), seconds)
