"""User-defined grids: every combination of some parameters x seeds, one network per task.

    tinygrad-bn sweep grid --preset dlfs --param weight_scale=logspace:0:-4:16 \\
        --param norm=batch,none --param lr=0.01,0.1 --seeds 3

From Python::

    from tinygrad_bn.experiments import Grid, run_grid
    grid = Grid("dlfs", {"weight_scale": "logspace:0:-4:16", "norm": ["batch", "none"],
                         "lr": [0.01, 0.1]}, seeds=3)
    result = run_grid(grid, jobs=2, out_dir="out")

A grid follows one of the training protocols of `grid_nets` (``dlfs`` or
``cs231n``, a preset's loop for a single net); its config's fields are the
parameters a grid can set.

Task k is one point of the grid (params in the order given, the last varying
fastest) with one seed; it draws everything from ``task_rng(seed, point
index)``, so its numbers do not depend on the executor, and the seeds of a
point are independent repetitions of it. The output is one tidy table,
``results.csv`` (a row per task and evaluation, a column per parameter and
metric), a figure (a panel per value of the first parameter, a line per
combination of the others, the mean over seeds), and a summary table.

Values: a list (``[0.01, 0.1]`` in a file), comma-separated text
(``batch,none``), ``logspace:START:STOP:N`` / ``linspace:START:STOP:N`` (as
numpy's), or ``range:START:STOP[:STEP]`` for integers. A grid file is TOML or
JSON with ``preset`` (the protocol), optional ``seeds`` (a count, or a list)
and a ``params`` table.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import Experiment, ExperimentConfig, RunResult, format_table
from tinygrad_bn.experiments.grid_nets import (
    PROTOCOLS,
    Cs231nNet,
    DlfsNet,
    GridTask,
    Protocol,
    train_cs231n_net,
    train_dlfs_net,
)

__all__ = ["PROTOCOLS", "Cs231nNet", "DlfsNet", "Grid", "GridTask", "Protocol", "load_grid_file",
           "parse_param", "parse_values", "run_grid", "train_cs231n_net", "train_dlfs_net"]


# ---------------------------------------------------------------- the grid


def parse_values(text: str) -> list[Any]:
    """'logspace:0:-4:16', 'linspace:a:b:n', 'range:a:b[:step]' or 'a,b,c' -> the values."""
    kind, _, rest = text.partition(":")
    if kind in ("logspace", "linspace", "range") and rest:
        try:
            numbers = [float(v) for v in rest.split(":")]
        except ValueError:
            raise ValueError(f"{text!r}: the parts after {kind}: must be numbers") from None
        if kind == "range":
            if len(numbers) not in (2, 3) or not all(n.is_integer() for n in numbers):
                raise ValueError(f"{text!r}: expected range:START:STOP[:STEP] with integers")
            values = list(range(*(int(n) for n in numbers)))
        else:
            if len(numbers) != 3 or not numbers[2].is_integer() or numbers[2] < 1:
                raise ValueError(f"{text!r}: expected {kind}:START:STOP:N with a positive integer N")
            space = np.logspace if kind == "logspace" else np.linspace
            values = [float(v) for v in space(numbers[0], numbers[1], int(numbers[2]))]
        if not values:
            raise ValueError(f"{text!r} gives no values")
        return values
    values = [v.strip() for v in text.split(",")]
    if not all(values):
        raise ValueError(f"{text!r}: empty value in the comma-separated list")
    return values


def parse_param(text: str) -> tuple[str, list[Any]]:
    """'name=values' (see `parse_values`) -> (name, values)."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ValueError(f"--param {text!r}: expected NAME=VALUES, e.g. lr=0.01,0.1 or "
                         "weight_scale=logspace:0:-4:16")
    return name.strip(), parse_values(values.strip())


def _coerce(protocol: Protocol, name: str, value: Any) -> Any:
    """`value` as the type of the protocol config's field `name`."""
    fields = {f.name: f for f in dataclasses.fields(protocol.config_type)}
    if name == "seed":
        raise ValueError("seed is not a grid parameter: give the number of seeds with --seeds "
                         "(seeds = [...] in a grid file)")
    if name not in fields:
        raise ValueError(f"grid preset {protocol.name!r} has no parameter {name!r}; its parameters "
                         f"are: {', '.join(sorted(set(fields) - {'seed'}))}")
    default = fields[name].default
    kind = type(default) if default is not None else str  # data_dir defaults to None
    try:
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name} takes {'an integer' if kind is int else 'a number'}, "
                         f"got {value!r}") from None
    return str(value)


@dataclass(frozen=True)
class Grid:
    """A protocol, values for some of its parameters, and seeds: every combination is a task.

    `params` maps a parameter to its values (a list, a single value, or text for
    `parse_values`); `seeds` is a count (seeds 0..n-1) or the seeds themselves;
    `quick` starts from the protocol's quick config instead of its default.
    """

    protocol: str
    params: dict[str, Any]
    seeds: Any = 1
    quick: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown grid preset {self.protocol!r}; the grid presets are: "
                             f"{', '.join(PROTOCOLS)}")
        protocol = PROTOCOLS[self.protocol]
        params: dict[str, tuple] = {}
        for name, values in dict(self.params).items():
            if isinstance(values, str):
                values = parse_values(values)
            elif not isinstance(values, list | tuple | np.ndarray):
                values = [values]
            if len(values) == 0:
                raise ValueError(f"parameter {name} has no values")
            params[name] = tuple(_coerce(protocol, name, v) for v in values)
        seeds = self.seeds
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
            seeds = range(seeds)
        seeds = tuple(seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ValueError(f"seeds must be non-negative integers, got {self.seeds!r}")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "seeds", seeds)
        for point in self.points():  # every value checked by the config itself, up front
            self.config(point, seeds[0])

    @property
    def spec(self) -> Protocol:
        """The protocol of this grid."""
        return PROTOCOLS[self.protocol]

    @property
    def axes(self) -> dict[str, tuple]:
        """The parameters with more than one value."""
        return {name: values for name, values in self.params.items() if len(values) > 1}

    def points(self) -> list[dict[str, Any]]:
        """Every combination of the parameters' values, the last parameter varying fastest."""
        names = list(self.params)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.params.values())]

    def config(self, point: dict[str, Any], seed: int) -> ExperimentConfig:
        """The protocol config of one point and seed."""
        make = self.spec.config_type.quick if self.quick else self.spec.config_type
        return make(**point, seed=seed)

    def tasks(self) -> list[GridTask]:
        """Point-major, seed-minor: (config, point index, point) per task."""
        return [(self.config(point, seed), index, point)
                for index, point in enumerate(self.points()) for seed in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        """What defines the grid's run (its results depend on nothing else)."""
        base = self.config({}, self.seeds[0]).to_dict()
        base.pop("seed")
        return {"preset": self.protocol, "params": {k: list(v) for k, v in self.params.items()},
                "seeds": list(self.seeds), "quick": self.quick, "base_config": base}

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Grid:
        """A grid from a TOML or JSON file; `overrides` (protocol, params, seeds, quick) win."""
        spec = load_grid_file(path)
        params = {**spec.get("params", {}), **overrides.pop("params", {})}
        merged = {"protocol": spec.get("preset"), "seeds": spec.get("seeds", 1), **overrides}
        if merged["protocol"] is None:
            raise ValueError(f"{str(path)!r}: name the grid's preset (preset = \"dlfs\" or "
                             "\"cs231n\")")
        return cls(params=params, **merged)


GRID_FILE_KEYS = {"preset", "seeds", "params"}


def load_grid_file(path: str | Path) -> dict[str, Any]:
    """The grid file's contents (TOML by .toml, else JSON), checked for unknown keys."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as err:
        raise FileNotFoundError(f"cannot read the grid file {str(path)!r}: {err.strerror}") from None
    try:
        spec = tomllib.loads(text.decode()) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ValueError(f"{str(path)!r} is not valid {kind}: {err}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{str(path)!r}: expected a table/object with {sorted(GRID_FILE_KEYS)}")
    unknown = sorted(set(spec) - GRID_FILE_KEYS)
    if unknown:
        raise ValueError(f"{str(path)!r}: unknown key(s) {', '.join(unknown)}; a grid file has "
                         f"{', '.join(sorted(GRID_FILE_KEYS))}")
    if not isinstance(spec.get("params", {}), dict):
        raise ValueError(f"{str(path)!r}: params must be a table of NAME = VALUES")
    return spec


# ---------------------------------------------------------------- results


def grid_params(task: GridTask) -> dict[str, Any]:
    """A task's parameter values (the seed is added by the runner)."""
    return dict(task[2])


def evaluation_rows(task: GridTask, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy rows of one task: one per evaluation (the net column is dropped)."""
    return [{k: v for k, v in row.items() if k != "net"} for row in result["evaluations"]]


def collect(grid: Grid, results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Per finished task: its point, seed and the metric and loss at each evaluation."""
    metric = grid.spec.metric
    runs = []
    for key, (task, result) in enumerate(zip(grid.tasks(), results)):
        if result is None:
            continue
        runs.append({"task": key, "seed": task[0].seed, "params": task[2],
                     metric: [e[metric] for e in result["evaluations"]],
                     "loss": [e["loss"] for e in result["evaluations"]]})
    return {"title": f"grid ({grid.protocol} protocol): {describe_axes(grid)}",
            "preset": grid.protocol, "metric": metric,
            "axes": {k: list(v) for k, v in grid.axes.items()},
            "seeds": list(grid.seeds), "tasks": len(results), "runs": runs}


def describe_axes(grid: Grid) -> str:
    """'weight_scale (16) x norm (2) x 3 seeds'."""
    parts = [f"{name} ({len(values)})" for name, values in grid.axes.items()]
    return " x ".join(parts + [f"{len(grid.seeds)} seed{'s' if len(grid.seeds) > 1 else ''}"])


def _mean(values: Sequence[Any]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def summary_table(results: dict[str, Any]) -> str:
    """Per grid point, over its seeds: mean final and best accuracy, mean final loss."""
    metric, axes = results["metric"], list(results["axes"])
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in results["runs"]:
        groups.setdefault(tuple(run["params"][a] for a in axes), []).append(run)
    rows = []
    for point, runs in groups.items():
        finals = [r[metric][-1] for r in runs]
        spread = float(np.std([v for v in finals if v is not None])) if len(runs) > 1 else None
        rows.append((*(f"{v:.3g}" if isinstance(v, float) else v for v in point), len(runs),
                     _mean(finals), spread, _mean([max(v for v in r[metric] if v is not None)
                                                   for r in runs]),
                     _mean([r["loss"][-1] for r in runs])))
    label = metric.replace("_acc", "")
    return format_table((*axes, "seeds", f"{label} final", "sd", f"{label} best", "final loss"), rows)


def describe(grid: Grid) -> str:
    """The first log line of a grid run."""
    fixed = {k: v[0] for k, v in grid.params.items() if len(v) == 1}
    return (f"grid, {grid.protocol} protocol: {describe_axes(grid)} = {len(grid.tasks())} tasks"
            + (f"; fixed {', '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else ""))


def progress_line(task: GridTask, result: dict[str, Any]) -> str:
    """The log line of one finished grid task."""
    metric = PROTOCOLS[_protocol_of(task[0])].metric
    point = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in task[2].items())
    final = result["evaluations"][-1][metric]
    return f"{point or 'base config'}, seed {task[0].seed}: final {metric} {final:.3f}"


def _protocol_of(config: ExperimentConfig) -> str:
    return next(name for name, p in PROTOCOLS.items() if isinstance(config, p.config_type))


def load_data(grid: Grid) -> None:
    """Load every dataset split the grid's tasks use, so a missing file fails before any task."""
    seen = set()
    for config, _, _ in grid.tasks():
        key = tuple(getattr(config, f, None) for f in
                    ("dataset", "data_dir", "dtype", "train_size", "val_size"))
        if key not in seen:
            seen.add(key)
            grid.spec.load_data(config)


EXPERIMENTS = {
    name: Experiment(
        f"grid-{name}", Grid, load_data=load_data, describe=describe,
        tasks=lambda grid: grid.tasks(), run_task=protocol.train, progress=progress_line,
        collect=collect, summary_table=summary_table,
        figures=((f"grid-{name}.png", plots.plot_grid),),
        task_params=grid_params, rows=evaluation_rows, csv_name="results.csv",
        partial_results=True,
    )
    for name, protocol in PROTOCOLS.items()
}


def run_grid(
    grid: Grid,
    *,
    jobs: int | None = 1,
    executor: Any = None,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    progress_bar: bool | None = None,
) -> RunResult:
    """Run every task of `grid` (resuming a run in `out_dir`); results.csv, figure, summary.

    `executor` is as for the presets (None: `jobs` local processes; "local", an
    address, a distributed.Client). Tasks that failed twice are left out of the
    outputs and listed in `result.failures`.
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"run_grid expects a Grid, got {type(grid).__name__}")
    return EXPERIMENTS[grid.protocol].run(grid, jobs=jobs, executor=executor, out_dir=out_dir,
                                          log=log, progress_bar=progress_bar)
