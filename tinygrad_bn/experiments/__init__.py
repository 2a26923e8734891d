"""The seed experiments: weight-init sweeps and the deep-net comparison, BN vs plain.

Each preset trains networks built from `tinygrad_bn.nn` with our autograd,
writes its figure(s) as PNG and its raw results as JSON, and returns a
`RunResult` with a summary table. From the command line: `tinygrad-bn sweep
PRESET`; from Python::

    from tinygrad_bn.experiments import run_preset
    result = run_preset("dlfs-init-sweep", quick=True, out_dir="out")
    print(result.summary)

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
from tinygrad_bn.experiments.parallel import run_tasks
from tinygrad_bn.experiments.presets import PRESETS, Preset, get_preset, run_preset

__all__ = [
    "DATASETS", "DEFAULT_OUT_DIR", "PRESETS", "ExperimentConfig", "Preset", "RunResult",
    "build_mlp", "get_preset", "run_preset", "run_tasks", "task_rng",
]
