"""What every preset shares: configs, seeding, data, the MLPs, training, results, the run.

Reproducibility rule: a task (one training run, or one BN/plain pair) draws
every random number (weights, minibatches) from its own Generator seeded from
``(seed, task index)``, never from global state, so running tasks in parallel
processes or one after another gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
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
from tinygrad_bn.autograd import no_grad
from tinygrad_bn.experiments.records import format_table, json_safe, write_csv, write_json
from tinygrad_bn.experiments.runner import Failure, SweepFailed, open_executor, run_sweep
from tinygrad_bn.experiments.store import RunStore
from tinygrad_bn.optim import Optimizer
from tinygrad_bn.tensor import Tensor

__all__ = [  # format_table, json_safe and write_json live in `records`; presets import them here
    "BN_IMPLS", "DATASETS", "DEFAULT_OUT_DIR", "DTYPES", "NORMS", "Experiment", "ExperimentConfig",
    "RunResult", "accuracy", "build_mlp", "finite_or_nan", "format_table", "json_safe",
    "linear_layers", "load_dataset", "loss_and_backward", "positive", "predict",
    "prepare_out_dir", "results_payload", "take", "task_rng", "train_step", "write_json",
]

DATASETS = ("mnist5k", "mnist", "cifar10")
DTYPES = ("float64", "float32")
BN_IMPLS = ("fused", "composed")
NORMS = ("batch", "layer", "none")  # the normalisation layer before each hidden ReLU
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
    *,
    norm: str | None = None,
) -> nn.Sequential:
    """Linear -> [BatchNorm1d] -> ReLU per hidden layer, then Linear; the textbooks' init.

    Weights are ``weight_scale * standard_normal((fan_in, fan_out))`` drawn from
    `rng` layer by layer, as both textbooks draw them (stored transposed, since
    nn.Linear keeps (out, in)); biases 0; BatchNorm gamma 1, beta 0. `norm`
    ("batch", "layer" or "none"), when given, replaces `use_bn`: "layer" puts a
    LayerNorm (eps `bn_eps`, gamma 1, beta 0) where BatchNorm would go.
    """
    if norm is None:
        norm = "batch" if use_bn else "none"
    _choice("norm", norm, NORMS)
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
            if norm == "batch":
                layers.append(nn.BatchNorm1d(fan_out, eps=bn_eps, impl=bn_impl, dtype=dtype))
            elif norm == "layer":
                layers.append(nn.LayerNorm(fan_out, eps=bn_eps, impl=bn_impl, dtype=dtype))
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
    skipped: int = 0  # tasks found finished in the run directory (resumed)
    failures: list[Failure] = field(default_factory=list)  # only experiments with partial results
    run_dir: Path | None = None  # where each task's result is saved


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


def finite_or_nan(value: float) -> float:
    """`value` unchanged, or NaN if it is inf (a diverged loss is reported as such)."""
    return value if math.isfinite(value) else float("nan")


# ---------------------------------------------------------------- running a preset


@dataclass(frozen=True)
class Experiment:
    """What makes a preset: its config, its tasks, how it logs, collects, tabulates and draws.

    `run` is the same for every preset. `run_task` runs in worker processes (or on a
    Dask cluster), so it must be a module-level function and the tasks small
    picklable specs: a tuple whose first item is the config (parameters and
    seed) and whose second is the task's index, the other half of its random
    stream (`task_rng(config.seed, index)`).
    """

    name: str
    config_type: type[ExperimentConfig]
    load_data: Callable[[Any], Any]  # called before any task runs here, so missing data fails early
    describe: Callable[[Any], str]  # config -> the first log line
    tasks: Callable[[Any], list[Any]]  # config -> the tasks, each one call of run_task
    run_task: Callable[[Any], dict[str, Any]]
    progress: Callable[[Any, dict[str, Any]], str]  # (task, its result) -> a log line
    collect: Callable[[Any, list[dict[str, Any]]], dict[str, Any]]  # (config, results) -> JSON
    summary_table: Callable[[dict[str, Any]], str]
    figures: Sequence[tuple[str, Callable[[dict[str, Any], Path], Path]]]  # (file name, plot)
    # The tidy table: a task's parameters (its CSV columns and how failures are reported) and
    # its result as rows, one per evaluation; without `rows` no CSV is written.
    task_params: Callable[[Any], dict[str, Any]] | None = None
    rows: Callable[[Any, dict[str, Any]], list[dict[str, Any]]] | None = None
    csv_name: str | None = None  # default <name>.csv
    # True: failed tasks are left out of `collect` (None in its list) and listed in the
    # result; False: any failure raises SweepFailed once the other tasks are saved.
    partial_results: bool = False

    def params_of(self, task: Any) -> dict[str, Any]:
        """A task's parameters: its seed and what `task_params` adds."""
        return {"seed": task[0].seed, **(self.task_params(task) if self.task_params else {})}

    def run(
        self,
        config: ExperimentConfig | None = None,
        *,
        jobs: int | None = 1,
        executor: Any = None,
        out_dir: str | os.PathLike | None = None,
        log: Callable[[str], None] | None = print,
        progress_bar: bool | None = None,
    ) -> RunResult:
        """Run every task not already saved in `out_dir`; write the JSON, CSV and figures there.

        `executor`: None runs on `jobs` local processes (one job: in this process);
        "local" starts a Dask LocalCluster of `jobs` workers; "tcp://host:8786" uses
        a running Dask scheduler; a `distributed.Client` or a `parallel.Executor`
        is used as it is. The results do not depend on this choice.
        `progress_bar`: None shows a tqdm bar when stderr is a terminal.
        """
        config = config if config is not None else self.config_type()
        out = prepare_out_dir(out_dir)
        say = log or (lambda _: None)
        tasks = self.tasks(config)
        store = RunStore.open(out, self.name, {"experiment": self.name, "config": config.to_dict(),
                                               "tasks": len(tasks)})
        with open_executor(executor, jobs, len(tasks)) as ex:
            if ex.runs_here:
                self.load_data(config)  # fail early, in this process, if the data is missing
            say(self.describe(config))
            say(f"running on {ex.description}")
            start = time.perf_counter()
            outcome = run_sweep(
                self.run_task, tasks, ex, store=store,
                params=lambda i: self.params_of(tasks[i]),
                on_result=lambda i, result: self.progress(tasks[i], result),
                log=log, bar=progress_bar,
            )
        seconds = time.perf_counter() - start
        if outcome.failures and not self.partial_results:
            raise SweepFailed(outcome.failures, len(tasks), str(store.path))
        task_results = [outcome.results.get(i) for i in range(len(tasks))]
        results = json_safe(self.collect(config, task_results))
        # The JSON first: if drawing fails (no matplotlib), the results are kept.
        files = [write_json(out / f"{self.name}.json",
                            results_payload(self.name, config, results, seconds))]
        if self.rows is not None:
            rows = [{"task": i, **self.params_of(task), **row}
                    for i, (task, result) in enumerate(zip(tasks, task_results)) if result is not None
                    for row in self.rows(task, result)]
            files.append(write_csv(out / (self.csv_name or f"{self.name}.csv"), rows))
        figures = [plot(results, out / file_name) for file_name, plot in self.figures]
        return RunResult(self.name, config.to_dict(), results, [*figures, *files],
                         self.summary_table(results), seconds, outcome.skipped, outcome.failures,
                         store.path)
