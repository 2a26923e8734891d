"""`gradient-flow`: where the gradient goes during training, layer by layer, BN vs plain.

Two copies of the same deep MLP (784-100x6-10 by default, weights
`weight_scale * randn` with a small scale, 0.01), one with BatchNorm before each
ReLU, train with plain SGD under `train.Trainer`, which records the L2 norm of
every weight gradient every `record_every` steps. The figure is one heatmap per
net, layers down and training steps across, on one shared log colour scale:
without BatchNorm each layer shrinks the backward signal by roughly
`weight_scale * sqrt(width)`, so the first layers are orders of magnitude darker
than the last (vanishing gradients, seen rather than inferred); with BatchNorm
every layer stays in the same band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn import optim
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    Experiment,
    ExperimentConfig,
    build_mlp,
    format_table,
    load_dataset,
    positive,
    take,
    task_rng,
)
from tinygrad_bn.train import Trainer

NAME = "gradient-flow"
SUMMARY = "per-layer weight-gradient norms over training (heatmap), BN vs plain, small init"
NUM_CLASSES = 10
NETS = (("plain", False), ("bn", True))
TITLES = {"plain": "without BatchNorm", "bn": "with BatchNorm"}
ZERO_COLOUR = "#c8c8c8"  # a gradient of exactly 0 has no logarithm: drawn in grey


@dataclass
class Config(ExperimentConfig):
    """One weight scale, a deep MLP, SGD; gradient norms every `record_every` steps."""

    weight_scale: float = 0.01
    depth: int = positive(6)
    width: int = positive(100)
    epochs: int = positive(20)
    train_size: int = positive(1000)
    batch_size: int = positive(100)
    record_every: int = positive(2)
    lr: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.weight_scale, float | int) and self.weight_scale > 0):
            raise ValueError(f"weight_scale must be a positive number, got {self.weight_scale!r}")
        if not (isinstance(self.lr, float | int) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in about a second (tests, smoke runs)."""
        return cls(**{"depth": 3, "width": 20, "epochs": 2, "train_size": 200, **overrides})


def training_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The first `train_size` training examples, in the config's dtype."""
    (x_train, y_train), _ = load_dataset(config.dataset, config.data_dir)
    x = take(config.dataset, x_train, config.train_size).astype(config.dtype)
    return x, take(config.dataset, y_train, config.train_size)


def train_net(task: tuple[Config, int]) -> dict[str, Any]:
    """Train one net (task 0: plain, 1: BatchNorm); its weight-gradient norms per layer."""
    config, index = task
    key, use_bn = NETS[index]
    x, y = training_data(config)
    # the same seed for both nets: the same initial weights and the same minibatches
    rng = task_rng(config.seed, 0)
    model = build_mlp(x.shape[1], [config.width] * config.depth, NUM_CLASSES, config.weight_scale,
                      use_bn, rng, config.dtype, config.bn_impl)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=config.lr), train=(x, y),
                      batch_size=config.batch_size, epochs=config.epochs, eval_per_epoch=False,
                      seed=config.seed, progress=False, grad_norm_every=config.record_every)
    with np.errstate(all="ignore"):
        history = trainer.fit()
    weights = [name for name, p in model.named_parameters() if p.ndim == 2]
    return {
        "net": key,
        "layers": [f"W{i + 1}" for i in range(len(weights))],
        "parameters": weights,
        "iterations": history.grad_norm_iteration,
        "norms": [history.grad_norms[name] for name in weights],
        "loss": history.loss,
    }


def plot_gradient_flow(results: dict[str, Any], path: Path) -> Path:
    """Heatmaps of log10 |dL/dW| (layers x steps), plain and BatchNorm side by side."""
    import matplotlib
    from matplotlib.colors import LogNorm

    runs = {run["net"]: run for run in results["runs"]}
    grids = {k: np.array([[np.nan if v is None else v for v in row] for row in run["norms"]],
                         dtype=float) for k, run in runs.items()}
    values = np.concatenate([g[np.isfinite(g) & (g > 0)] for g in grids.values()])
    low, high = (values.min(), values.max()) if values.size else (1e-12, 1.0)
    norm = LogNorm(vmin=low, vmax=max(high, low * 10))
    fig = plots._figure(11, 0.45 * max(len(r["layers"]) for r in runs.values()) + 2.2)
    axes = fig.subplots(1, len(runs), sharey=True)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=ZERO_COLOUR)
    image = None
    for ax, (key, _) in zip(np.atleast_1d(axes), NETS, strict=True):
        run, grid = runs[key], grids[key]
        steps = run["iterations"]
        image = ax.imshow(np.where(grid > 0, grid, np.nan), aspect="auto", norm=norm,
                          cmap=cmap, interpolation="nearest",
                          extent=(steps[0] - 0.5, steps[-1] + 0.5, len(grid) - 0.5, -0.5))
        ax.set_yticks(range(len(run["layers"])), run["layers"])
        ax.set_xlabel("training step")
        ax.set_title(TITLES[key])
    np.atleast_1d(axes)[0].set_ylabel("layer (input at the top)")
    fig.colorbar(image, ax=axes, label="‖dL/dW‖₂ (log scale)")
    fig.suptitle(results["title"] + "\ngrey: exactly 0 (every ReLU of a layer died, so no "
                 "gradient flows at all)", fontsize=11)
    return plots.save_png(fig, path)


def summary_table(results: dict[str, Any]) -> str:
    """Per net and layer: gradient norm at the first and last recorded step."""
    rows = []
    for run in results["runs"]:
        for layer, norms in zip(run["layers"], run["norms"], strict=True):
            rows.append((run["net"], layer, norms[0], norms[-1]))
    return format_table(("net", "layer", "|dW| first step", "|dW| last step"), rows)


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: 784-{config.width}x{config.depth}-10, weights {config.weight_scale:g} · "
            f"randn, plain vs BN, {config.epochs} epochs of {config.train_size} "
            f"{config.dataset} examples, gradient norms every {config.record_every} steps")


def tasks(config: Config) -> list[tuple[Config, int]]:
    """One task per net."""
    return [(config, i) for i in range(len(NETS))]


def progress_line(task: tuple[Config, int], result: dict[str, Any]) -> str:
    """First and last layer's gradient norm at the first step."""
    first = [row[0] for row in result["norms"]]
    ratio = first[0] / first[-1] if first[-1] else math.nan
    return (f"  {result['net']}: |dW1| / |dW{len(first)}| = {ratio:.2e} at the first step, "
            f"final loss {result['loss'][-1]:.3f}")


def collect(config: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: one run per net."""
    return {"title": f"{NAME}: weights {config.weight_scale:g} · randn ({config.dataset})",
            "weight_scale": config.weight_scale, "runs": runs}


EXPERIMENT = Experiment(
    NAME, Config, load_data=training_data, describe=describe, tasks=tasks, run_task=train_net,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}.png", plot_gradient_flow),),
)
run = EXPERIMENT.run
