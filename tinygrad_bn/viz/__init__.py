"""Graphviz drawings of autodiff graphs: forward data flow and backward gradient flow.

`draw_graph(root)` returns a graphviz.Digraph: Jupyter displays it, `.source` is
the DOT text, and `render(graph, "graph.svg")` writes an image (SVG/PNG/PDF need
Graphviz's `dot` program; `dot_available()` says whether it is installed). Ops
run inside an nn.Module are boxed per module, fused kernels stand out, and after
a backward every tensor shows its gradient's norm and is coloured by its size.
See docs/visualising.md for a gallery.
"""

from tinygrad_bn.viz.draw import DEFAULT_MAX_NODES, draw_comparison, draw_graph
from tinygrad_bn.viz.output import FORMATS, DotNotFoundError, dot_available, render

__all__ = [
    "DEFAULT_MAX_NODES", "FORMATS", "DotNotFoundError", "dot_available", "draw_comparison",
    "draw_graph", "render",
]
