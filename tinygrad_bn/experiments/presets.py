"""The registry of presets: name -> config class and run function.

`tinygrad-bn sweep PRESET` and the tests loop over `PRESETS`, so a new preset
is one module with a `Config` (an `ExperimentConfig` with a `quick()`
constructor) and a `run(config, jobs=, executor=, out_dir=, log=)` (an
`Experiment`'s run), plus one line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinygrad_bn.experiments import (
    cnn_bn,
    cs231n_deep,
    cs231n_init_sweep,
    dlfs_init_sweep,
    gradient_flow,
    init_diagnostics,
)
from tinygrad_bn.experiments.common import ExperimentConfig, RunResult


@dataclass(frozen=True)
class Preset:
    """One experiment: its name, a one-line summary, its config class and its runner."""

    name: str
    summary: str
    config_type: type[ExperimentConfig]
    runner: Callable[..., RunResult]

    def config(self, quick: bool = False, **overrides: Any) -> ExperimentConfig:
        """The default (or quick) config with `overrides`; unknown names raise ValueError."""
        known = {f.name for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"preset {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"its options are: {', '.join(sorted(known))}"
            )
        if quick:
            return self.config_type.quick(**overrides)
        return self.config_type(**overrides)

    def run(
        self,
        config: ExperimentConfig | None = None,
        *,
        jobs: int | None = 1,
        executor: Any = None,
        out_dir: str | Path | None = None,
        log: Callable[[str], None] | None = print,
        progress_bar: bool | None = None,
    ) -> RunResult:
        """Run the preset (see `Experiment.run`); write its figure(s), JSON and CSV into `out_dir`."""
        config = config if config is not None else self.config()
        if not isinstance(config, self.config_type):
            raise TypeError(
                f"preset {self.name!r} expects a {self.config_type.__module__}."
                f"{self.config_type.__name__}, got {type(config).__name__}"
            )
        return self.runner(config, jobs=jobs, executor=executor, out_dir=out_dir, log=log,
                           progress_bar=progress_bar)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(dlfs_init_sweep.NAME,
               "Deep Learning from Scratch ch. 6: BN vs plain MLP over 16 weight scales (4x4 grid)",
               dlfs_init_sweep.Config, dlfs_init_sweep.run),
        Preset(cs231n_deep.NAME,
               "CS231n: 6-layer net with and without BN, Adam, loss and accuracy curves",
               cs231n_deep.Config, cs231n_deep.run),
        Preset(cs231n_init_sweep.NAME,
               "CS231n: 8-layer net over 20 weight scales, best accuracies and final loss",
               cs231n_init_sweep.Config, cs231n_init_sweep.run),
        Preset(init_diagnostics.NAME,
               "activation histograms at init and gradient norms in training, BN vs plain",
               init_diagnostics.Config, init_diagnostics.run),
        Preset(gradient_flow.NAME, gradient_flow.SUMMARY, gradient_flow.Config, gradient_flow.run),
        Preset(cnn_bn.NAME, cnn_bn.SUMMARY, cnn_bn.Config, cnn_bn.run),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called `name`; ValueError listing the presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; the presets are: {', '.join(PRESETS)}"
        ) from None


def run_preset(
    name: str,
    *,
    quick: bool = False,
    jobs: int | None = 1,
    executor: Any = None,
    out_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    progress_bar: bool | None = None,
    **overrides: Any,
) -> RunResult:
    """Run preset `name` with its default (or quick) config plus `overrides`.

    `executor`: None (`jobs` local processes), "local" (a Dask LocalCluster of
    `jobs` workers), "tcp://host:8786" (a running Dask scheduler), or a
    distributed.Client; the results are the same on every one.
    """
    preset = get_preset(name)
    return preset.run(preset.config(quick, **overrides), jobs=jobs, executor=executor,
                      out_dir=out_dir, log=log, progress_bar=progress_bar)
