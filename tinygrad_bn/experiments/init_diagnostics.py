"""`init-diagnostics`: why BatchNorm helps, as pictures.

For a few weight-init scales (default 1, 0.1, 0.01, 0.001) the dlfs-init-sweep
networks (784-100x5-10, with and without BatchNorm before each ReLU) are built
and looked at twice:

- at initialisation, the histogram of each hidden layer's activations (after
  its ReLU) on 1,000 training examples, the picture of the book's chapter 6:
  without BatchNorm they collapse towards 0 (small scales) or blow up (large
  ones); with it every layer keeps a unit-scale spread;
- during training (the dlfs loop: SGD lr 0.01, batches of 100 with replacement,
  both nets in lockstep on the same batches), the norm of each layer's weight
  gradient at every step: vanishing or exploding without BatchNorm, comparable
  across layers with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_bn import nn
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    Experiment,
    ExperimentConfig,
    finite_or_nan,
    format_table,
    linear_layers,
    load_dataset,
    positive,
)
from tinygrad_bn.experiments.dlfs_init_sweep import BOOK_BN_EPS, HIDDEN_SIZES, BookPair
from tinygrad_bn.tensor import Tensor

NAME = "init-diagnostics"


@dataclass
class Config(ExperimentConfig):
    """Scales 1 down to 1e-(num_scales - 1); training length and histogram bins."""

    num_scales: int = positive(4)
    iterations: int = positive(100)
    train_size: int = positive(1000)
    batch_size: int = positive(100)
    lr: float = 0.01
    bins: int = positive(48)
    bn_eps: float = BOOK_BN_EPS

    @property
    def scales(self) -> np.ndarray:
        """1, 0.1, 0.01, ...: one decade apart."""
        return np.logspace(0, -(self.num_scales - 1), self.num_scales)

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in about a second (tests, smoke runs)."""
        return cls(**{"num_scales": 2, "iterations": 5, "train_size": 200, **overrides})


def hidden_activations(model: nn.Sequential, x: np.ndarray) -> list[np.ndarray]:
    """The output of every ReLU for input `x`, in training mode, leaving the model unchanged."""
    state = model.state_dict()  # BatchNorm's running statistics move in training mode
    outputs = []
    h = Tensor(x)
    with no_grad():
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                outputs.append(h.data)
    model.load_state_dict(state)
    return outputs


# Histograms are over log10 of the activations, on one fixed range for every
# panel, so collapse (the distribution sliding left, layer after layer) and
# explosion (sliding right) are visible; values outside land in the end bins.
LOG10_RANGE = (-16.0, 8.0)


def histogram(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Counts of log10 of the positive values on LOG10_RANGE, the fraction of zeros, mean, std.

    ReLU sets about half of all values to exactly 0 (no logarithm); they are
    reported as `zero_fraction` instead.
    """
    values = values.ravel().astype(np.float64)
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    logs = np.clip(np.log10(positive), *LOG10_RANGE)
    counts, edges = np.histogram(logs, bins=bins, range=LOG10_RANGE)
    return {
        "counts": counts, "log10_edges": edges,
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
        "zero_fraction": float(np.mean(values == 0)),
    }


def diagnose_pair(task: tuple[Config, int]) -> dict[str, Any]:
    """Histograms at init and per-step gradient norms for one scale, BN and plain."""
    config, index = task
    pair = BookPair.for_task(config, index)
    result: dict[str, Any] = {"scale": pair.scale}
    for key, net in pair.nets.items():
        with np.errstate(all="ignore"):
            acts = hidden_activations(net, pair.x)
        result[key] = {"activations": [histogram(a, config.bins) for a in acts],
                       "grad_norms": [], "loss": []}
    with np.errstate(all="ignore"):  # diverging plain nets are part of the picture
        for _ in range(config.iterations):
            for key, loss in pair.sgd_step(config.batch_size).items():
                result[key]["loss"].append(loss)
                # The step leaves the gradients in place: these are the ones it used.
                result[key]["grad_norms"].append(
                    [finite_or_nan(float(np.linalg.norm(layer.weight.grad.data)))
                     for layer in linear_layers(pair.nets[key])]
                )
    return result


def task_params(task: tuple[Config, int]) -> dict[str, Any]:
    """The weight scale of a task."""
    config, index = task
    return {"scale": float(config.scales[index])}


def table_rows(task: tuple[Config, int], result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per net and training step: the loss and each layer's weight-gradient norm."""
    return [{"net": key, "step": step, "loss": loss,
             **{f"grad_norm_{k + 1}": g for k, g in enumerate(result[key]["grad_norms"][step])}}
            for key in ("bn", "plain") for step, loss in enumerate(result[key]["loss"])]


def summary_table(results: dict[str, Any]) -> str:
    """Per scale and net: activation std of the first and last hidden layer, gradient norms."""
    rows = []
    for run in results["runs"]:
        for key in ("bn", "plain"):
            acts, norms = run[key]["activations"], run[key]["grad_norms"]
            rows.append((f"{run['scale']:.0e}", key, acts[0]["std"], acts[-1]["std"],
                         norms[0][0], norms[0][-1], norms[-1][0]))
    return format_table(("scale", "net", "act std L1", f"act std L{len(HIDDEN_SIZES)}",
                         "|dW1| start", "|dW out| start", "|dW1| end"), rows)


def load_data(config: Config) -> None:
    """Load the dataset once in this process, so a missing file fails before any task."""
    load_dataset(config.dataset, config.data_dir)


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: {config.num_scales} weight scales x (BN, plain), activations at init and "
            f"{config.iterations} training steps, {config.dataset}, {config.dtype}")


def tasks(config: Config) -> list[tuple[Config, int]]:
    """One task per weight scale."""
    return [(config, i) for i in range(config.num_scales)]


def progress_line(task: tuple[Config, int], result: dict[str, Any]) -> str:
    """The log line of one finished weight scale."""
    return (f"  scale {result['scale']:.0e}: last hidden layer activation std "
            f"BN {result['bn']['activations'][-1]['std']:.3g}, "
            f"plain {result['plain']['activations'][-1]['std']:.3g}")


def collect(config: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: one run per scale."""
    return {"title": f"{NAME} ({config.dataset})", "scales": config.scales, "runs": runs}


EXPERIMENT = Experiment(
    NAME, Config, load_data=load_data, describe=describe, tasks=tasks, run_task=diagnose_pair,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}-activations.png", plots.plot_activation_histograms),
             (f"{NAME}-gradients.png", plots.plot_gradient_norms)),
    task_params=task_params, rows=table_rows,
)
run = EXPERIMENT.run
