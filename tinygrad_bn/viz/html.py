"""viz.to_html: one self-contained page to step through backward node by node.

The page (`viewer.html` next to this file, filled in with str.format) holds the
drawing twice as inline SVG (backward and forward views, laid out by Graphviz's
`dot` when the page is written), the panel data as JSON (summaries and histograms
from `panels.py`, the ticks from `timeline.py`), and the viewer's own CSS and
JavaScript (`viewer.css`, `viewer.js`), so it opens offline from a file:// URL:
no network, no CDN, no fonts.
"""

from __future__ import annotations

import html
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from tinygrad_bn._io import atomic_write_bytes
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.viz import panels, timeline
from tinygrad_bn.viz.draw import VIEWS, Plan, emit, plan
from tinygrad_bn.viz.output import pipe

# How tall the page is when Jupyter shows it inline (it scrolls and zooms inside).
NOTEBOOK_HEIGHT_PX = 640


class Viewer:
    """An HTML page (its text in `.html`): Jupyter shows it inline, `save(path)` writes it."""

    def __init__(self, page: str, n_nodes: int, n_ticks: int):
        self.html = page
        self.n_nodes = n_nodes
        self.n_ticks = n_ticks

    @property
    def nbytes(self) -> int:
        """Size of the page in bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to `path` atomically; returns the path."""
        return atomic_write_bytes(Path(path), self.html.encode("utf-8"))

    def _repr_html_(self) -> str:
        # In an iframe the page's CSS, ids and script cannot clash with the notebook's.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                f'style="width:100%;height:{NOTEBOOK_HEIGHT_PX}px;border:1px solid #ccc" '
                'sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        return (f"<tinygrad_bn.viz.Viewer: {self.n_nodes} nodes, {self.n_ticks} backward steps, "
                f"{self.nbytes / 1e3:.0f} kB; .save('graph.html') writes it>")


def to_html(root: Tensor, *, title: str | None = None, bins: int = panels.HISTOGRAM_BINS,
            **options: Any) -> Viewer:
    """The interactive viewer of the graph behind `root` (draw_graph's keyword options).

    Pan and zoom, search, backward step by step with the gradient each op received
    and sent, a panel per node (values, gradients, saved tensors), foldable boxes,
    forward/backward views. Needs Graphviz's `dot` to lay the graph out.
    """
    return _page(plan([root], None, options, "to_html"), title, bins, "to_html")


def to_html_comparison(a: Tensor, b: Tensor, labels: tuple[str, str] = ("composed", "fused"), *,
                       title: str | None = None, bins: int = panels.HISTOGRAM_BINS,
                       **options: Any) -> Viewer:
    """Two graphs side by side in one viewer, stepping together where they share tensors."""
    return _page(plan([a, b], labels, options, "to_html_comparison"), title, bins,
                 "to_html_comparison")


def _page(p: Plan, title: str | None, bins: Any, api: str) -> Viewer:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"{api}: bins must be a positive int, got {bins!r}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{api}: title must be a string, got {type(title).__name__}")
    svgs = {view: _inline_svg(pipe(emit(p, view), "svg", api=api).decode("utf-8"))
            for view in VIEWS}
    nodes, clusters = [], []
    for side, (model, prefix) in enumerate(zip(p.models, p.prefixes, strict=True)):
        nodes += panels.model_records(model, prefix, side, bins)
        clusters += panels.cluster_records(model, prefix)
    if len(p.models) == 1:
        ticks = timeline.ticks([[n.id for n in timeline.backward_order(p.models[0])]])
    else:
        ticks = timeline.synchronised(p.models[0], p.models[1], ("a_", "b_"))
    if title is None:
        root_name = p.models[0].root.name
        title = (f"{p.labels[0]} vs {p.labels[1]}" if p.labels
                 else f"backward of {root_name}" if root_name else "backward, step by step")
    data = {
        "title": title, "view": p.view, "sides": list(p.labels or [""]),
        "nodes": nodes, "clusters": clusters, "ticks": ticks,
        "hasGrads": any(m.has_grads for m in p.models),
    }
    page = _asset("viewer.html").format(
        title=html.escape(title), css=_asset("viewer.css"), js=_asset("viewer.js"),
        svg_backward=svgs["backward"], svg_forward=svgs["forward"],
        data=_script_json(data), n_ticks=len(ticks),
    )
    n_drawn = len({n["el"] for n in nodes if n["drawn"]})  # a folded box counts once
    return Viewer(page, n_drawn, len(ticks))


def _asset(name: str) -> str:
    return resources.files("tinygrad_bn.viz").joinpath(name).read_text(encoding="utf-8")


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: '</' cannot close the element early."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


_XML_NOISE = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)
# Graphviz numbers its elements node1, edge1, ... in each SVG: two SVGs in one page would
# repeat them, and the viewer finds elements by their <title> anyway.
_ELEMENT_IDS = re.compile(r' id="(?:graph|node|edge|clust|a_node|a_edge)\d+[^"]*"')
_SIZE = re.compile(r'<svg width="[^"]*" height="[^"]*"')


def _inline_svg(svg: str) -> str:
    """Graphviz's SVG document as an element to inline in HTML, sized by the page."""
    svg = _XML_NOISE.sub("", svg)
    svg = _ELEMENT_IDS.sub("", svg)
    svg = _SIZE.sub('<svg preserveAspectRatio="xMidYMid meet"', svg, count=1)
    return re.sub(r">\s+<", "><", svg).strip()
