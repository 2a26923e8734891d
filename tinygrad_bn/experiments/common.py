"""What every preset shares: configs, seeding, data, the MLPs, training, results, the run.

Reproducibility rule: a task (one training run, or one BN/plain pair) draws
every random number (weights, minibatches) from its own Generator seeded from
``(seed, task index)``, never from global state, so running tasks in parallel
processes or one after another gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn import nn
from tinygrad_bn._io import atomic_write_bytes
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.experiments.parallel import run_tasks
from tinygrad_bn.optim import Optimizer
from tinygrad_bn.tensor import Tensor

DATASETS = ("mnist5k", "mnist", "cifar10")
DTYPES = ("float64", "float32")
BN_IMPLS = ("fused", "composed")
DEFAULT_OUT_DIR = "tinygrad_bn_out"
RESULTS_FORMAT = 1  # bumped whenever the JSON layout changes


# ---------------------------------------------------------------- configs


@dataclass
class ExperimentConfig:
    """Options every preset takes; presets subclass this with their own knobs."""

    seed: int = 0
    dataset: str = "mnist5k"
    dtype: str = "float64"
    bn_impl: str = "fused"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        _choice("dtype", self.dtype, DTYPES)
        _choice("bn_impl", self.bn_impl, BN_IMPLS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for f in dataclasses.fields(self):
            if f.metadata.get("positive"):
                _positive_int(f.name, getattr(self, f.name))

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values."""
        return json_safe(dataclasses.asdict(self))


def positive(default: int) -> Any:
    """A dataclass field holding a positive int (checked in __post_init__)."""
    return field(default=default, metadata={"positive": True})


def _choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ---------------------------------------------------------------- seeding


def task_rng(seed: int, index: int) -> np.random.Generator:
    """The Generator of task `index`: independent streams for distinct (seed, index)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


# ---------------------------------------------------------------- data


@functools.lru_cache(maxsize=2)
def load_dataset(
    name: str, data_dir: str | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)), images flattened float32 in [0, 1].

    Cached per process, so the tasks a worker runs load the files once; callers
    must not modify the arrays in place.
    """
    from tinygrad_bn import data  # the data layer is only needed once a preset runs

    _choice("dataset", name, DATASETS)
    if name == "mnist5k":
        splits = data.load_mnist5k(cache_dir=data_dir)
    elif name == "mnist":
        splits = data.load_mnist(data_dir)
    else:
        splits = data.load_cifar10(data_dir, flatten=True)
    for split in splits:
        for array in split:
            array.flags.writeable = False  # shared by every task of this process
    return splits


def take(name: str, array: np.ndarray, count: int) -> np.ndarray:
    """The first `count` rows of `array`, or a clear error if there are fewer."""
    if count > len(array):
        raise ValueError(f"{name}: asked for {count} examples but the dataset has {len(array)}")
    return array[:count]


# ---------------------------------------------------------------- models


def build_mlp(
    input_size: int,
    hidden_sizes: Sequence[int],
    num_classes: int,
    weight_scale: float,
    use_bn: bool,
    rng: np.random.Generator,
    dtype: str = "float64",
    bn_impl: str = "fused",
    bn_eps: float = 1e-5,
) -> nn.Sequential:
    """Linear -> [BatchNorm1d] -> ReLU per hidden layer, then Linear; the textbooks' init.

    Weights are ``weight_scale * standard_normal((fan_in, fan_out))`` drawn from
    `rng` layer by layer, as both textbooks draw them (stored transposed, since
    nn.Linear keeps (out, in)); biases 0; BatchNorm gamma 1, beta 0.
    """
    sizes = [input_size, *hidden_sizes, num_classes]
    layers: list[nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        # impl="fused": one node per layer instead of ~10 ops fwd+bwd; at these sizes the
        # per-op cost of Python is a large share of a training step (same numbers).
        linear = nn.Linear(fan_in, fan_out, dtype=dtype, rng=0, impl="fused")  # its init is replaced
        weight = weight_scale * rng.standard_normal((fan_in, fan_out))
        linear.weight.data[...] = weight.T
        linear.bias.data[...] = 0
        layers.append(linear)
        if k < len(hidden_sizes):
            if use_bn:
                layers.append(nn.BatchNorm1d(fan_out, eps=bn_eps, impl=bn_impl, dtype=dtype))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    """The model's Linear layers, in order."""
    return [m for m in model if isinstance(m, nn.Linear)]


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits in evaluation mode (BatchNorm uses running statistics), without a graph."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            parts = [model(Tensor(x[i : i + batch_size])).data for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Fraction of `x` whose largest logit is at the label (evaluation mode)."""
    if len(x) == 0:
        return float("nan")
    return float(np.mean(np.argmax(predict(model, x, batch_size), axis=1) == y))


def loss_and_backward(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy on one batch; gradients accumulate into the parameters."""
    loss = F.cross_entropy(model(Tensor(x)), y, impl="fused")
    loss.backward()
    return float(loss.data)


def train_step(model: nn.Module, optimizer: Optimizer, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step on one batch; the loss, NaN if it overflowed.

    The gradients stay on the parameters until the next step (`init-diagnostics` reads them).
    """
    optimizer.zero_grad()
    loss = finite_or_nan(loss_and_backward(model, x, y))
    optimizer.step()
    return loss


# ---------------------------------------------------------------- results


@dataclass
class RunResult:
    """What a preset run produced: its raw results, the files written, a summary table."""

    preset: str
    config: dict[str, Any]
    results: dict[str, Any]
    files: list[Path]
    summary: str
    seconds: float


def json_safe(value: Any) -> Any:
    """Numpy scalars/arrays to Python; NaN and inf to None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as strict, indented JSON, atomically."""
    text = json.dumps(json_safe(payload), indent=1, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def results_payload(preset: str, config: ExperimentConfig, results: dict, seconds: float) -> dict:
    """The JSON document every preset writes next to its figures."""
    return {
        "format": RESULTS_FORMAT,
        "preset": preset,
        "config": config.to_dict(),
        "results": results,
        "wall_seconds": round(seconds, 3),
    }


def prepare_out_dir(out_dir: str | os.PathLike | None) -> Path:
    """The output directory (created if needed); default ./tinygrad_bn_out."""
    path = Path(out_dir if out_dir is not None else DEFAULT_OUT_DIR)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileNotFoundError(f"cannot create the output directory {str(path)!r}: {err}") from None
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: right-aligned columns, floats with 3 decimals, None as '-'."""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.3e}" if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.3f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def finite_or_nan(value: float) -> float:
    """`value` unchanged, or NaN if it is inf (a diverged loss is reported as such)."""
    return value if math.isfinite(value) else float("nan")


# ---------------------------------------------------------------- running a preset


@dataclass(frozen=True)
class Experiment:
    """What makes a preset: its config, its tasks, how it logs, collects and draws.

    `run` is the same for every preset. `run_task` runs in worker processes, so it
    must be a module-level function and the tasks picklable (see `parallel.run_tasks`).
    """

    name: str
    config_type: type[ExperimentConfig]
    load_data: Callable[[Any], Any]  # called once before any task, so missing data fails early
    describe: Callable[[Any], str]  # config -> the first log line
    tasks: Callable[[Any], list[Any]]  # config -> the tasks, each one call of run_task
    run_task: Callable[[Any], dict[str, Any]]
    progress: Callable[[Any, dict[str, Any]], str]  # (task, its result) -> a log line
    collect: Callable[[Any, list[dict[str, Any]]], dict[str, Any]]  # (config, results) -> JSON
    summary_table: Callable[[dict[str, Any]], str]
    figures: Sequence[tuple[str, Callable[[dict[str, Any], Path], Path]]]  # (file name, plot)

    def run(
        self,
        config: ExperimentConfig | None = None,
        *,
        jobs: int | None = 1,
        out_dir: str | os.PathLike | None = None,
        log: Callable[[str], None] | None = print,
    ) -> RunResult:
        """Run every task in `jobs` processes; write `<name>.json` and the figures into `out_dir`."""
        config = config if config is not None else self.config_type()
        out = prepare_out_dir(out_dir)
        self.load_data(config)  # fail early, in this process, if the data is missing
        say = log or (lambda _: None)
        say(self.describe(config))
        start = time.perf_counter()
        tasks = self.tasks(config)

        def progress(i: int, result: dict[str, Any]) -> None:
            say(self.progress(tasks[i], result))

        task_results = run_tasks(self.run_task, tasks, jobs, progress)
        seconds = time.perf_counter() - start
        results = json_safe(self.collect(config, task_results))
        # The JSON first: if drawing fails (no matplotlib), the results are kept.
        js = write_json(out / f"{self.name}.json", results_payload(self.name, config, results, seconds))
        figures = [plot(results, out / file_name) for file_name, plot in self.figures]
        return RunResult(self.name, config.to_dict(), results, [*figures, js],
                         self.summary_table(results), seconds)
