"""`cnn-bn`: a small CNN with BatchNorm2d vs GroupNorm vs no normalisation, over init scales and lrs.

The network is two conv-norm-ReLU-pool blocks and a linear classifier:
Conv2d(C_in, 8, 3, padding=1) - norm - ReLU - MaxPool2d(2), Conv2d(8, 16, 3,
padding=1) - norm - ReLU - MaxPool2d(2), Flatten, Linear; norm is BatchNorm2d,
GroupNorm(4 groups) or nothing (then the convolutions have a bias; before a norm
layer a bias would be cancelled by its centring). The convolutions' weights are
`scale * sqrt(2 / fan_in) * randn`, He's initialisation times `scale`, for each
of `num_scales` scales log-spaced from 10 down to 0.01 (their fan-ins, 9 and 72,
differ, so a scale relative to He's gives both the same share of the growth or
decay); the classifier, which no norm layer follows, keeps He's (biases 0, norm
weights 1). The norm layers are what the scale is tested against. Each network
trains with SGD (momentum 0.9) at each learning rate of `lrs` for `epochs`
epochs of `train_size` digits in batches of `batch_size`. Test accuracy (on
`test_size` test digits) and training accuracy (on up to 1,000 of the training
digits) are measured at initialisation and after every epoch, in evaluation mode.

One task per (norm, scale, lr). The three networks of one (scale, lr) draw
their weights and minibatch order from the same Generator, `task_rng(seed,
point)`, so they start from the same weights and see the same batches; the
figure has one panel per (lr, scale), a line per norm, like dlfs-init-sweep's grid.
Without normalisation the large scales diverge and the small ones barely move;
both norm layers train across the range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn import nn, optim
from tinygrad_bn.experiments import plots
from tinygrad_bn.experiments.common import (
    Experiment,
    ExperimentConfig,
    accuracy,
    format_table,
    load_dataset,
    positive,
    take,
    task_rng,
    train_step,
)

NAME = "cnn-bn"
SUMMARY = "2-block CNN on the digits: BatchNorm2d vs GroupNorm vs none, over init scales and lrs"
NORMS = ("batch", "group", "none")
NUM_CLASSES = 10
IMAGE_SHAPES = {"mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
STYLES = {"batch": {"color": "tab:blue", "linestyle": "-", "label": "BatchNorm2d"},
          "group": {"color": "tab:green", "linestyle": "-.", "label": "GroupNorm"},
          "none": {"color": "tab:orange", "linestyle": "--", "label": "no norm"}}


@dataclass
class Config(ExperimentConfig):
    """The sweep's grid (scales x lrs x norms) and the training run of each network."""

    num_scales: int = positive(4)
    lrs: tuple[float, ...] = (0.01, 0.1)
    epochs: int = positive(3)
    train_size: int = positive(4000)
    test_size: int = positive(1000)
    batch_size: int = positive(50)
    channels: tuple[int, int] = (8, 16)
    groups: int = positive(4)
    momentum: float = 0.9
    norms: tuple[str, ...] = field(default=NORMS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lrs, self.channels, self.norms = tuple(self.lrs), tuple(self.channels), tuple(self.norms)
        if not self.lrs or not all(isinstance(lr, float | int) and lr > 0 for lr in self.lrs):
            raise ValueError(f"lrs must be positive numbers, got {self.lrs!r}")
        if len(self.channels) != 2 or not all(isinstance(c, int) and c > 0 for c in self.channels):
            raise ValueError(f"channels must be two positive ints, got {self.channels!r}")
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"groups={self.groups} must divide both channel counts {self.channels}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not self.norms or any(n not in NORMS for n in self.norms):
            raise ValueError(f"norms must be some of {NORMS}, got {self.norms!r}")

    @property
    def scales(self) -> np.ndarray:
        """The weight-init scales (multiples of He's standard deviation), from 10 down to 0.01."""
        return np.logspace(1, -2, self.num_scales)

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A configuration that runs in a few seconds (tests, smoke runs)."""
        return cls(**{"num_scales": 2, "lrs": (0.1,), "epochs": 1, "train_size": 200, "test_size": 100,
                      **overrides})


def digits(config: Config) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test), images shaped (N, C, H, W) in the config's dtype."""
    (x_train, y_train), (x_test, y_test) = load_dataset(config.dataset, config.data_dir)
    shape = IMAGE_SHAPES[config.dataset]
    xs = [take(config.dataset, x, n).reshape(-1, *shape).astype(config.dtype)
          for x, n in ((x_train, config.train_size), (x_test, config.test_size))]
    return xs[0], take(config.dataset, y_train, config.train_size), xs[1], \
        take(config.dataset, y_test, config.test_size)


def _he_normal(shape: tuple[int, ...], scale: float, rng: np.random.Generator) -> np.ndarray:
    """scale * sqrt(2 / fan_in) * randn, fan_in = every dim but the first (PyTorch's layout)."""
    fan_in = int(np.prod(shape[1:]))
    return scale * np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)


def build_cnn(config: Config, norm: str, scale: float, rng: np.random.Generator) -> nn.Sequential:
    """conv-norm-ReLU-pool twice, then Linear; conv weights scale * He's std * randn, layer by layer."""
    in_channels, height, width = IMAGE_SHAPES[config.dataset]
    layers: list[nn.Module] = []
    impl = config.bn_impl
    for c_in, c_out in zip((in_channels, config.channels[0]), config.channels):
        conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none", dtype=config.dtype, rng=0, impl=impl)
        conv.weight.data[...] = _he_normal(conv.weight.shape, scale, rng)
        if conv.bias is not None:
            conv.bias.data[...] = 0
        layers.append(conv)
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out, dtype=config.dtype, impl=impl))
        elif norm == "group":
            layers.append(nn.GroupNorm(config.groups, c_out, dtype=config.dtype, impl=impl))
        layers += [nn.ReLU(), nn.MaxPool2d(2, impl=impl)]
    features = config.channels[1] * (height // 4) * (width // 4)
    linear = nn.Linear(features, NUM_CLASSES, dtype=config.dtype, rng=0)
    linear.weight.data[...] = _he_normal(linear.weight.shape, 1.0, rng)  # no norm layer follows it
    linear.bias.data[...] = 0
    return nn.Sequential(*layers, nn.Flatten(), linear)


def _point(config: Config, index: int) -> tuple[str, int, int]:
    """(norm, scale index, lr index) of task `index`; the norm varies fastest."""
    point, k = divmod(index, len(config.norms))
    scale_i, lr_i = divmod(point, len(config.lrs))
    return config.norms[k], scale_i, lr_i


def train_cnn(task: tuple[Config, int]) -> dict[str, Any]:
    """Train one network; its accuracies at init and after each epoch, and each step's loss."""
    config, index = task
    norm, scale_i, lr_i = _point(config, index)
    scale, lr = float(config.scales[scale_i]), float(config.lrs[lr_i])
    x_train, y_train, x_test, y_test = digits(config)
    rng = task_rng(config.seed, scale_i * len(config.lrs) + lr_i)  # shared by the norms of a point
    model = build_cnn(config, norm, scale, rng)
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)
    train_eval = slice(0, min(1000, len(x_train)))
    curves: dict[str, list[float]] = {"test_acc": [], "train_acc": [], "loss": []}

    def evaluate() -> None:
        curves["test_acc"].append(accuracy(model, x_test, y_test))
        curves["train_acc"].append(accuracy(model, x_train[train_eval], y_train[train_eval]))

    # Without normalisation the large scales diverge to inf/nan: that is the finding, not an error.
    with np.errstate(all="ignore"):
        evaluate()
        for _ in range(config.epochs):
            order = rng.permutation(len(x_train))
            for first in range(0, len(x_train), config.batch_size):
                rows = order[first:first + config.batch_size]
                curves["loss"].append(train_step(model, optimizer, x_train[rows], y_train[rows]))
            evaluate()
    return {"norm": norm, "scale": scale, "lr": lr, **curves}


# ---------------------------------------------------------------- results


def task_params(task: tuple[Config, int]) -> dict[str, Any]:
    """The norm, weight scale and learning rate of a task."""
    config, index = task
    norm, scale_i, lr_i = _point(config, index)
    return {"norm": norm, "scale": float(config.scales[scale_i]), "lr": float(config.lrs[lr_i])}


def table_rows(task: tuple[Config, int], result: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per evaluation: epoch, test and training accuracy, the epoch's mean loss."""
    steps = len(result["loss"]) // max(1, len(result["test_acc"]) - 1)
    rows = []
    for epoch, (test, train) in enumerate(zip(result["test_acc"], result["train_acc"])):
        losses = [v for v in result["loss"][(epoch - 1) * steps:epoch * steps] if v is not None]
        rows.append({"epoch": epoch, "test_acc": test, "train_acc": train,
                     "mean_loss": float(np.mean(losses)) if epoch and losses else None})
    return rows


def summary_table(results: dict[str, Any]) -> str:
    """Final test accuracy per (scale, lr), one column per norm."""
    norms = results["norms"]
    final = {(r["norm"], r["scale"], r["lr"]): r["test_acc"][-1] for r in results["runs"]}
    rows = [(f"{scale:g}", lr, *(final.get((n, scale, lr)) for n in norms))
            for scale in results["scales"] for lr in results["lrs"]]
    return format_table(("x He", "lr", *(f"{n} test acc" for n in norms)), rows)


def plot_cnn_bn(results: dict[str, Any], path: Any) -> Any:
    """One panel per (lr, scale): test accuracy per epoch, a line per norm."""
    scales, lrs = results["scales"], results["lrs"]
    fig = plots._figure(2.6 * len(scales), 2.3 * len(lrs) + 0.6)
    axes = fig.subplots(len(lrs), len(scales), squeeze=False, sharex=True, sharey=True)
    for run in results["runs"]:
        ax = axes[lrs.index(run["lr"]), scales.index(run["scale"])]
        plots._plot_or_gap(ax, np.arange(len(run["test_acc"])), run["test_acc"], **STYLES[run["norm"]])
    for i, lr in enumerate(lrs):
        for j, scale in enumerate(scales):
            ax = axes[i, j]
            ax.set_title(f"{scale:g} x He init, lr {lr:g}", fontsize=9)
            ax.set_ylim(0, 1.0)
            if j == 0:
                ax.set_ylabel("test accuracy")
            if i == len(lrs) - 1:
                ax.set_xlabel("epoch")
    axes[0, -1].legend(loc="lower right", fontsize=7)
    fig.suptitle(results["title"])
    return plots.save_png(fig, path)


def describe(config: Config) -> str:
    """The first log line of a run."""
    return (f"{NAME}: {'/'.join(config.norms)} x {config.num_scales} weight scales x lrs "
            f"{list(config.lrs)}, {config.epochs} epochs of {config.train_size} {config.dataset} "
            f"images, {config.dtype}")


def progress_line(task: tuple[Config, int], result: dict[str, Any]) -> str:
    """The log line of one trained network."""
    return (f"  {result['norm']:>5}, {result['scale']:g} x He, lr {result['lr']:g}: "
            f"test accuracy {result['test_acc'][-1]:.3f}")


def collect(config: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The results: one run per network, and the grid's axes."""
    return {"title": f"{NAME} ({config.dataset}, {config.train_size} training images, SGD momentum "
                     f"{config.momentum:g})",
            "norms": list(config.norms), "scales": [float(s) for s in config.scales],
            "lrs": [float(lr) for lr in config.lrs], "runs": runs}


def tasks(config: Config) -> list[tuple[Config, int]]:
    """One task per (scale, lr, norm)."""
    return [(config, i) for i in range(config.num_scales * len(config.lrs) * len(config.norms))]


EXPERIMENT = Experiment(
    NAME, Config, load_data=digits, describe=describe, tasks=tasks, run_task=train_cnn,
    progress=progress_line, collect=collect, summary_table=summary_table,
    figures=((f"{NAME}.png", plot_cnn_bn),), task_params=task_params, rows=table_rows,
)
run = EXPERIMENT.run
