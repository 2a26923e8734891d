"""The seed experiments: weight-init sweeps and the deep-net comparison, BN vs plain; grids.

Each preset trains networks built from `tinygrad_bn.nn` with our autograd,
writes its figure(s) as PNG, its raw results as JSON and a tidy CSV, and
returns a `RunResult` with a summary table. Tasks run in this process, in
local worker processes or on a Dask cluster, with the same results; each
finished task is saved, so an interrupted run resumes. From the command line:
`tinygrad-bn sweep PRESET` or `tinygrad-bn sweep grid ...`; from Python::

    from tinygrad_bn.experiments import Grid, run_grid, run_preset
    result = run_preset("dlfs-init-sweep", quick=True, out_dir="out", jobs=2)
    print(result.summary)
    grid = Grid("dlfs", {"weight_scale": "logspace:0:-4:4", "norm": ["batch", "none"]}, seeds=2)
    print(run_grid(grid, executor="local", jobs=2, out_dir="out").summary)

docs/experiments.md describes each preset and how it follows its textbook.
"""

from tinygrad_bn.experiments.common import (
    DATASETS,
    DEFAULT_OUT_DIR,
    ExperimentConfig,
    RunResult,
    build_mlp,
    task_rng,
)
from tinygrad_bn.experiments.grid import PROTOCOLS, Grid, run_grid
from tinygrad_bn.experiments.presets import PRESETS, Preset, get_preset, run_preset
from tinygrad_bn.experiments.runner import SweepFailed, open_executor, run_tasks

__all__ = [
    "DATASETS", "DEFAULT_OUT_DIR", "PRESETS", "PROTOCOLS", "ExperimentConfig", "Grid", "Preset",
    "RunResult", "SweepFailed", "build_mlp", "get_preset", "open_executor", "run_grid",
    "run_preset", "run_tasks", "task_rng",
]
