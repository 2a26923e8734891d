"""The presets' figures, drawn with matplotlib's object API and saved as PNG atomically.

No pyplot: figures are built on `matplotlib.figure.Figure` with the Agg canvas,
so drawing never changes the backend of a notebook or GUI session that imports
us. Every function takes a preset's raw results (the dict it writes as JSON)
and a path, so figures can be redrawn from the JSON alone.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn._io import atomic_write_bytes

BN_STYLE = {"color": "tab:blue", "linestyle": "-", "label": "with BatchNorm"}
PLAIN_STYLE = {"color": "tab:orange", "linestyle": "--", "label": "without BatchNorm"}
GRAD_NORM_CEILING = 1e12
LAYER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def _figure(width: float, height: float) -> Any:
    """A Figure on the Agg canvas, or a one-line install hint when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError(
            "drawing figures needs matplotlib, which is not installed; install it with: "
            "pip install matplotlib  (or: pip install tinygrad_bn[examples])"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Render `fig` to PNG bytes and write them atomically to `path`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(Path(path), buffer.getvalue())


def _grid(n: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid for n panels (16 -> 4 x 4)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def _plot_or_gap(ax: Any, x: Sequence[float], y: Sequence[Any], **style: Any) -> None:
    """Plot y against x; None (a diverged value in the JSON) becomes a gap."""
    values = np.array([np.nan if v is None else v for v in y], dtype=float)
    ax.plot(x[: len(values)], values, **style)


def plot_dlfs_init_sweep(results: dict[str, Any], path: str | Path) -> Path:
    """One panel per weight scale: training accuracy per evaluation, BN solid, plain dashed."""
    runs = results["runs"]
    rows, cols = _grid(len(runs))
    fig = _figure(2.6 * cols, 2.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k, run in enumerate(runs):
        ax = axes.flat[k]
        epochs = np.arange(len(run["bn"]["train_acc"]))
        _plot_or_gap(ax, epochs, run["bn"]["train_acc"], **BN_STYLE)
        _plot_or_gap(ax, epochs, run["plain"]["train_acc"], **PLAIN_STYLE)
        ax.set_title(f"W scale {run['scale']:.3g}", fontsize=9)
        ax.set_ylim(0, 1.0)
        if k % cols == 0:
            ax.set_ylabel("train accuracy")
        if k >= len(runs) - cols:
            ax.set_xlabel("epochs")
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    axes.flat[len(runs) - 1].legend(loc="lower right", fontsize=7)
    fig.suptitle(
        f"{results['title']}: training accuracy with (solid) and without (dashed) BatchNorm"
    )
    return save_png(fig, path)


def plot_cs231n_deep(results: dict[str, Any], path: str | Path) -> Path:
    """Training loss per iteration, training and validation accuracy per epoch, BN vs baseline."""
    fig = _figure(8, 9)
    ax_loss, ax_train, ax_val = fig.subplots(3, 1)
    for key, style in (("bn", BN_STYLE), ("plain", PLAIN_STYLE)):
        run = results["runs"][key]
        loss = run["loss"]
        ax_loss.plot(np.arange(len(loss)), [np.nan if v is None else v for v in loss], "o",
                     markersize=2, color=style["color"], label=style["label"])
        epochs = np.arange(len(run["train_acc"]))
        _plot_or_gap(ax_train, epochs, run["train_acc"], marker="o", **style)
        _plot_or_gap(ax_val, epochs, run["val_acc"], marker="o", **style)
    ax_loss.set(title="Training loss", xlabel="iteration")
    ax_train.set(title="Training accuracy", xlabel="epoch", ylim=(0, 1))
    ax_val.set(title="Validation accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in (ax_loss, ax_train, ax_val):
        ax.legend(loc="lower right" if ax is not ax_loss else "upper right", fontsize=8)
    fig.suptitle(results["title"])
    return save_png(fig, path)


def plot_cs231n_init_sweep(results: dict[str, Any], path: str | Path) -> Path:
    """Best validation accuracy, best training accuracy and final loss against the weight scale."""
    fig = _figure(8, 10)
    ax_val, ax_train, ax_loss = fig.subplots(3, 1, sharex=True)
    scales = results["scales"]
    for key, style in (("bn", BN_STYLE), ("plain", PLAIN_STYLE)):
        runs = results["runs"][key]
        _plot_or_gap(ax_val, scales, [r["best_val_acc"] for r in runs], marker="o", **style)
        _plot_or_gap(ax_train, scales, [r["best_train_acc"] for r in runs], marker="o", **style)
        _plot_or_gap(ax_loss, scales, [r["final_loss"] for r in runs], marker="o", **style)
    ax_val.set(title="Best validation accuracy vs weight initialization scale",
               ylabel="best val accuracy", ylim=(0, 1))
    ax_train.set(title="Best training accuracy vs weight initialization scale",
                 ylabel="best train accuracy", ylim=(0, 1))
    # Without BatchNorm the largest scales reach losses of 1e7 and more: a log axis
    # keeps the well-behaved runs readable next to them.
    ax_loss.set(title="Final training loss vs weight initialization scale",
                ylabel=f"mean loss, last {results['loss_window']} iterations",
                xlabel="weight initialization scale", yscale="log")
    for ax in (ax_val, ax_train, ax_loss):
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(results["title"])
    return save_png(fig, path)


def plot_activation_histograms(results: dict[str, Any], path: str | Path) -> Path:
    """Per-layer histograms of log10(activation) at init, one shared axis: rows scale x net."""
    runs = results["runs"]
    n_layers = len(runs[0]["bn"]["activations"])
    rows = [(run, key) for run in runs for key in ("bn", "plain")]
    fig = _figure(2.3 * n_layers, 1.5 * len(rows))
    axes = fig.subplots(len(rows), n_layers, squeeze=False, sharex=True)
    for r, (run, key) in enumerate(rows):
        style = BN_STYLE if key == "bn" else PLAIN_STYLE
        for layer, hist in enumerate(run[key]["activations"]):
            ax = axes[r, layer]
            ax.stairs(hist["counts"], np.asarray(hist["log10_edges"], dtype=float), fill=True,
                      color=style["color"], alpha=0.8)
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
            ax.set_title(f"layer {layer + 1}: std {hist['std']:.2g}", fontsize=7)
            if layer == 0:
                net = "BN" if key == "bn" else "plain"
                ax.set_ylabel(f"W {run['scale']:.2g}\n{net}", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel("log10(activation)", fontsize=8)
    fig.suptitle("Hidden activations after ReLU at initialisation (non-zero values; about half "
                 "are 0), 1,000 training examples")
    return save_png(fig, path)


def plot_gradient_norms(results: dict[str, Any], path: str | Path) -> Path:
    """Per-layer weight-gradient norms over training, one panel per scale, BN solid plain dashed."""
    runs = results["runs"]
    fig = _figure(3.2 * len(runs), 3.4)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, run in zip(axes, runs):
        clipped = False
        for key, linestyle in (("bn", "-"), ("plain", "--")):
            norms = np.array([[np.nan if v is None else v for v in row]
                              for row in run[key]["grad_norms"]], dtype=float)
            # A diverging net's norms reach 1e80 and would flatten every other line;
            # they are cut at GRAD_NORM_CEILING and the title says so.
            clipped |= bool(np.any(norms > GRAD_NORM_CEILING))
            norms[norms > GRAD_NORM_CEILING] = np.nan
            for layer in range(norms.shape[1]):
                # A zero norm (dead net) cannot go on a log axis; it shows as a gap.
                ax.plot(np.where(norms[:, layer] > 0, norms[:, layer], np.nan),
                        linestyle=linestyle, color=LAYER_COLORS[layer % len(LAYER_COLORS)],
                        label=f"layer {layer + 1}" if key == "bn" else None, linewidth=1)
        ax.set_yscale("log")
        title = f"W scale {run['scale']:.3g}"
        ax.set_title(title + (f"\n(plain diverges: norms > {GRAD_NORM_CEILING:.0e} cut)"
                              if clipped else ""), fontsize=9)
        ax.set_xlabel("iteration")
    axes[0].set_ylabel("||dL/dW|| per layer")
    axes[-1].legend(fontsize=6, title="solid BN, dashed plain", title_fontsize=6)
    fig.suptitle("Weight-gradient norms during training")
    return save_png(fig, path)


def plot_grid(results: dict[str, Any], path: str | Path) -> Path:
    """A panel per value of the grid's first parameter, a line per combination of the others.

    Each line is the mean over seeds of the protocol's accuracy at every
    evaluation, with the seeds' range shaded when there are several.
    """
    axes_names = list(results["axes"])
    metric = results["metric"]
    panel_name, line_names = (axes_names[0], axes_names[1:]) if axes_names else (None, [])
    panel_values = results["axes"][panel_name] if panel_name else [None]
    rows, cols = _grid(len(panel_values))
    fig = _figure(2.8 * cols, 2.3 * rows + 1.2)
    panels = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    line_keys = list(dict.fromkeys(tuple(run["params"][n] for n in line_names)
                                   for run in results["runs"]))
    for k, panel_value in enumerate(panel_values):
        ax = panels.flat[k]
        for color, line_key in zip(itertools.cycle(LAYER_COLORS), line_keys):
            curves = [run[metric] for run in results["runs"]
                      if (panel_name is None or run["params"][panel_name] == panel_value)
                      and tuple(run["params"][n] for n in line_names) == line_key]
            if not curves:
                continue  # every task of this line failed
            values = np.array([[np.nan if v is None else v for v in c] for c in curves], dtype=float)
            steps = np.arange(values.shape[1])
            label = ", ".join(f"{n}={_short_value(v)}" for n, v in zip(line_names, line_key))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaN (diverged)
                ax.plot(steps, np.nanmean(values, axis=0), color=color, label=label or None)
                if len(curves) > 1:
                    ax.fill_between(steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                                    color=color, alpha=0.2, linewidth=0)
        if panel_name is not None:
            ax.set_title(f"{panel_name} {_short_value(panel_value)}", fontsize=9)
        ax.set_ylim(0, 1.0)
        if k % cols == 0:
            ax.set_ylabel(metric.replace("_", " "))
        if k >= len(panel_values) - cols:
            ax.set_xlabel("evaluation")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(panels.flat)[len(panel_values):]:
        ax.set_visible(False)
    if line_names and line_keys:
        handles, labels = panels.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(len(labels), cols)),
                   fontsize=7)
    seeds = len(results["seeds"])
    fig.suptitle(f"{results['title']}\n{metric.replace('_', ' ')}, mean over {seeds} "
                 f"seed{'s' if seeds > 1 else ''}" + (" (range shaded)" if seeds > 1 else ""),
                 fontsize=10)
    return save_png(fig, path)


def _short_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
