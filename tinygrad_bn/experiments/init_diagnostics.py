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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn import nn, optim
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    ExperimentConfig,
    RunResult,
    build_mlp,
    finite_or_nan,
    format_table,
    json_safe,
    linear_layers,
    load_dataset,
    loss_and_backward,
    positive,
    prepare_out_dir,
    results_payload,
    take,
    task_rng,
    write_json,
)
from tinygrad_bn.experiments.dlfs_init_sweep import BOOK_BN_EPS, HIDDEN_SIZES, NETS, NUM_CLASSES
from tinygrad_bn.experiments.parallel import run_tasks
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
    (x_train, y_train), _ = load_dataset(config.dataset, config.data_dir)
    x = take(config.dataset, x_train, config.train_size).astype(config.dtype)
    y = take(config.dataset, y_train, config.train_size)
    rng = task_rng(config.seed, index)
    scale = float(config.scales[index])
    nets = {key: build_mlp(x.shape[1], HIDDEN_SIZES, NUM_CLASSES, scale, use_bn, rng,
                           config.dtype, config.bn_impl, config.bn_eps)
            for key, use_bn in NETS}
    result: dict[str, Any] = {"scale": scale}
    for key, net in nets.items():
        with np.errstate(all="ignore"):
            acts = hidden_activations(net, x)
        result[key] = {"activations": [histogram(a, config.bins) for a in acts],
                       "grad_norms": [], "loss": []}
    optimizers = {key: optim.SGD(net.parameters(), lr=config.lr) for key, net in nets.items()}
    with np.errstate(all="ignore"):  # diverging plain nets are part of the picture
        for _ in range(config.iterations):
            rows = rng.integers(0, len(x), config.batch_size)
            for key, net in nets.items():
                optimizers[key].zero_grad()
                loss = loss_and_backward(net, x[rows], y[rows])
                result[key]["loss"].append(finite_or_nan(loss))
                result[key]["grad_norms"].append(
                    [finite_or_nan(float(np.linalg.norm(layer.weight.grad.data)))
                     for layer in linear_layers(net)]
                )
                optimizers[key].step()
    return result


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


def run(
    config: Config | None = None,
    *,
    jobs: int | None = 1,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Write `init-diagnostics-activations.png`, `-gradients.png` and `.json` into `out_dir`."""
    config = config if config is not None else Config()
    out = prepare_out_dir(out_dir)
    load_dataset(config.dataset, config.data_dir)  # fail early, in this process
    say = log or (lambda _: None)
    say(f"{NAME}: {config.num_scales} weight scales x (BN, plain), activations at init and "
        f"{config.iterations} training steps, {config.dataset}, {config.dtype}")
    start = time.perf_counter()

    def progress(i: int, r: dict[str, Any]) -> None:
        say(f"  scale {r['scale']:.0e}: last hidden layer activation std "
            f"BN {r['bn']['activations'][-1]['std']:.3g}, "
            f"plain {r['plain']['activations'][-1]['std']:.3g}")

    runs = run_tasks(diagnose_pair, [(config, i) for i in range(config.num_scales)], jobs, progress)
    seconds = time.perf_counter() - start
    results = json_safe({"title": f"{NAME} ({config.dataset})", "scales": config.scales,
                         "runs": runs})
    # The JSON first: if drawing fails (no matplotlib), the results are kept.
    js = write_json(out / f"{NAME}.json", results_payload(NAME, config, results, seconds))
    files = [
        plots.plot_activation_histograms(results, out / f"{NAME}-activations.png"),
        plots.plot_gradient_norms(results, out / f"{NAME}-gradients.png"),
        js,
    ]
    return RunResult(NAME, config.to_dict(), results, files, summary_table(results), seconds)
