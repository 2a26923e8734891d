"""`tinygrad-bn graph`: draw the backprop graph of a small model after one forward+backward.

    tinygrad-bn graph batchnorm --impl both -o bn.svg
    tinygrad-bn graph mlp-bn --impl composed --view forward --format png
    tinygrad-bn graph mlp-bn --impl both -o mlp.html   # the viewer: step through backward

The models run on random data drawn from `--seed`; `build_example` is reused by
docs/make_gallery.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn import nn, viz
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.viz.draw import COMPACT_ABOVE_RANKS, LAYOUTS, RANKDIRS, VIEWS
from tinygrad_bn.viz.examples import Model

MODELS = ("batchnorm", "layernorm", "mlp", "mlp-bn")
IMPLS = ("composed", "fused", "both")

# Small on purpose: a learner should be able to follow every node of the drawing.
BATCH, FEATURES, HIDDEN, CLASSES = 8, 4, 6, 3


def build_example(model: str, impl: str = "composed", seed: int = 0, retain_graph: bool = False,
                  ) -> tuple[Tensor, nn.Module]:
    """Run one forward+backward of a small model; return (loss, the model) ready to draw.

    retain_graph keeps what each op saved, so the HTML viewer can show what every op
    sent to each of its inputs.
    """
    if model not in MODELS:
        raise ValueError(f"graph: model must be one of {', '.join(MODELS)}, got {model!r}")
    if impl not in ("composed", "fused"):
        raise ValueError(f"graph: impl must be 'composed' or 'fused', got {impl!r}")
    rng = np.random.default_rng(seed)
    if model in ("batchnorm", "layernorm"):
        layer = (nn.BatchNorm1d(FEATURES, impl=impl) if model == "batchnorm"
                 else nn.LayerNorm(FEATURES, impl=impl))
        net = Model(**{"bn" if model == "batchnorm" else "ln": layer})
        # x requires grad, as it would as the output of a previous layer: then the
        # drawing shows dx too, the gradient the layer passes further back.
        x = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32), requires_grad=True,
                   name="x")
        target = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32), name="target")
        loss = F.mse_loss(net(x), target)
    else:
        layers: dict[str, nn.Module] = {}
        sizes = [FEATURES, HIDDEN, HIDDEN]
        for i in range(1, len(sizes)):
            layers[f"fc{i}"] = nn.Linear(sizes[i - 1], sizes[i], rng=rng)
            if model == "mlp-bn":
                layers[f"bn{i}"] = nn.BatchNorm1d(sizes[i], impl=impl)
            layers[f"relu{i}"] = nn.ReLU()
        layers[f"fc{len(sizes)}"] = nn.Linear(sizes[-1], CLASSES, rng=rng)
        net = Model(**layers)
        x = Tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32), name="x")
        labels = rng.integers(0, CLASSES, BATCH)
        loss = F.cross_entropy(net(x), labels)
    loss.name = "loss"
    loss.backward(retain_graph=retain_graph)
    return loss, net


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = subparsers.add_parser(
        "graph",
        help="draw the backprop graph of a small model",
        description="Run one forward+backward of a small model on random data and draw its "
        "graph with Graphviz (SVG/PNG/PDF and the interactive HTML viewer need the `dot` "
        "program; --format dot does not).",
    )
    p.add_argument("model_arg", nargs="?", choices=MODELS, metavar="MODEL",
                   help=f"what to draw: {', '.join(MODELS)} (default: batchnorm)")
    p.add_argument("--model", choices=MODELS, default=None, help="the same, as an option")
    p.add_argument("--impl", choices=IMPLS, default="composed",
                   help="normalisation implementation; 'both' draws them side by side "
                        "(default: composed; the plain mlp ignores it)")
    p.add_argument("--view", choices=VIEWS, default="backward",
                   help="backward: gradient flow from the loss; forward: data flow "
                        "(default: backward)")
    p.add_argument("--format", choices=viz.FORMATS, default=None,
                   help="output format (default: from -o's suffix, else svg); html is one "
                        "self-contained page that steps through backward node by node")
    p.add_argument("-o", "--output", default=None,
                   help="output file (default: graph-MODEL-IMPL-VIEW.FORMAT in the current "
                        "directory)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random data and weights")
    p.add_argument("--collapse", default=None,
                   help="fold modules: 'all', an op count, or comma-separated module names")
    p.add_argument("--show-values", action="store_true", help="add value summaries to nodes")
    p.add_argument("--show-saved", action="store_true",
                   help="add what each op saved for backward (released after it)")
    p.add_argument("--rankdir", choices=RANKDIRS, default=None,
                   help="layout direction (default TB, LR for a compact layout)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="compact: tighter, left to right; auto: compact for graphs more than "
                        f"{COMPACT_ABOVE_RANKS} ops deep (default)")
    p.set_defaults(run=run)


def _collapse_arg(text: str | None) -> Any:
    if text is None or text == "all":
        return text
    if text.isdigit():
        return int(text)
    return [name.strip() for name in text.split(",") if name.strip()]


def _output_and_format(args: argparse.Namespace) -> tuple[Path, str]:
    if args.output is None:
        fmt = args.format or "svg"
        return Path(f"graph-{args.model}-{args.impl}-{args.view}.{fmt}"), fmt
    path = Path(args.output)
    suffix = path.suffix.lstrip(".").lower()
    if args.format is None:
        if suffix not in viz.FORMATS:
            raise ValueError(
                f"cannot tell the format from {args.output!r}; pass --format "
                f"({', '.join(viz.FORMATS)}) or use one of those suffixes"
            )
        return path, suffix
    if suffix in viz.FORMATS and suffix != args.format:
        raise ValueError(f"-o {args.output!r} has suffix .{suffix} but --format is {args.format}")
    return path, args.format


def run(args: argparse.Namespace) -> int:
    """Build the model, run forward+backward, draw, write the file and say where."""
    if args.model and args.model_arg and args.model != args.model_arg:
        raise ValueError(f"graph: two different models given: {args.model_arg!r} and --model {args.model!r}")
    args.model = args.model or args.model_arg or "batchnorm"
    path, fmt = _output_and_format(args)
    options = dict(view=args.view, collapse=_collapse_arg(args.collapse),
                   show_values=args.show_values, show_saved=args.show_saved, rankdir=args.rankdir,
                   layout=args.layout)
    keep = fmt == "html"
    if args.impl == "both" and args.model != "mlp":
        loss_c, _ = build_example(args.model, "composed", args.seed, keep)
        loss_f, _ = build_example(args.model, "fused", args.seed, keep)
        graph = viz.draw_comparison(loss_c, loss_f, labels=("composed", "fused"), **options)
        what = f"{args.model}, composed vs fused"
    else:
        impl = "composed" if args.impl == "both" else args.impl
        loss, _ = build_example(args.model, impl, args.seed, keep)
        graph = viz.draw_graph(loss, **options)
        what = args.model if args.model == "mlp" else f"{args.model}, {impl}"
    try:
        written = viz.render(graph, path, fmt)
    except viz.DotNotFoundError as err:
        raise RuntimeError(f"{err} From the command line: --format dot.") from None
    print(f"wrote {written} ({what}, {args.view} view, {fmt})")
    return 0
