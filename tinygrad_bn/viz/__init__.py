"""Graphviz drawings of autodiff graphs, and an HTML viewer that steps through backward.

`draw_graph(root)` returns a graphviz.Digraph: Jupyter displays it, `.source` is
the DOT text, and `render(graph, "graph.svg")` writes an image (SVG/PNG/PDF need
Graphviz's `dot` program; `dot_available()` says whether it is installed). Ops
run inside an nn.Module or a functional composite are boxed per call, fused
kernels stand out, and after a backward every tensor shows its gradient's norm
and is coloured by its size. `to_html(root)` (or `render(graph, "graph.html")`)
writes one self-contained page to pan, zoom, search and step through backward
node by node. See docs/visualising.md for a gallery.
"""

from tinygrad_bn.viz.draw import (
    COMPACT_ABOVE_RANKS,
    DEFAULT_MAX_NODES,
    Drawing,
    draw_comparison,
    draw_graph,
)
from tinygrad_bn.viz.html import Viewer, to_html, to_html_comparison
from tinygrad_bn.viz.output import DotNotFoundError, dot_available
from tinygrad_bn.viz.render import FORMATS, render

__all__ = [
    "COMPACT_ABOVE_RANKS", "DEFAULT_MAX_NODES", "FORMATS", "DotNotFoundError", "Drawing", "Viewer",
    "dot_available", "draw_comparison", "draw_graph", "render", "to_html", "to_html_comparison",
]
