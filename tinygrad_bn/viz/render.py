"""viz.render: a drawing to a file as SVG/PNG/PDF (through `dot`), DOT text, or the HTML viewer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import graphviz

from tinygrad_bn._io import atomic_write_bytes
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.viz.draw import Drawing
from tinygrad_bn.viz.html import Viewer, to_html, to_html_comparison
from tinygrad_bn.viz.output import pipe

FORMATS = ("svg", "png", "pdf", "dot", "html")


def render(graph: Any, path: str | os.PathLike, format: str | None = None) -> Path:  # noqa: A002
    """Write `graph` to `path` as svg, png, pdf, dot or html; returns the path.

    `graph` is a graphviz.Digraph (e.g. from draw_graph); for html it may also be
    a Viewer (from to_html) or the root Tensor itself. The format defaults to the
    file's suffix. The file is written atomically (temp file, then rename), so a
    failed render never leaves a half-written file behind.
    """
    accepted = graphviz.Digraph | graphviz.Graph | graphviz.Source
    if not isinstance(graph, accepted | Viewer | Tensor):
        raise TypeError(
            f"render: graph must be a graphviz.Digraph (e.g. from draw_graph), a viz.Viewer or "
            f"a root Tensor, got {type(graph).__name__}"
        )
    path = Path(path)
    if format is None:
        format = path.suffix.lstrip(".").lower()  # noqa: A001
        if format not in FORMATS:
            raise ValueError(
                f"render: cannot tell the format from the file name {str(path)!r}; "
                f"pass format= one of {', '.join(FORMATS)}"
            )
    if format not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}, got {format!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"render: cannot write {str(path)!r}: the directory {str(path.parent)!r} does not exist"
        )
    if format == "html":
        return atomic_write_bytes(path, _viewer(graph).html.encode("utf-8"))
    if not isinstance(graph, accepted):
        raise TypeError(f"render: writing {format} needs a graphviz.Digraph (e.g. from "
                        f"draw_graph), got {type(graph).__name__}; only html takes it")
    data = graph.source.encode("utf-8") if format == "dot" else pipe(graph, format)
    return atomic_write_bytes(path, data)


def _viewer(graph: Any) -> Viewer:
    """The HTML viewer of what `graph` shows."""
    if isinstance(graph, Viewer):
        return graph
    if isinstance(graph, Tensor):
        return to_html(graph)
    drawn = graph.drawn if isinstance(graph, Drawing) else None
    if drawn is None:
        raise TypeError(
            "render: an HTML page needs the graph's tensors, which a hand-made graphviz graph "
            "does not have; pass a drawing from draw_graph/draw_comparison, the root Tensor, "
            "or viz.to_html(root)"
        )
    roots, labels, options = drawn
    if labels is None:
        return to_html(roots[0], **options)
    return to_html_comparison(roots[0], roots[1], labels, **options)
