"""Writing drawings to files: SVG/PNG/PDF through Graphviz's `dot`, or the DOT text itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import graphviz

from tinygrad_bn._io import atomic_write_bytes

FORMATS = ("svg", "png", "pdf", "dot")

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), `conda install -c conda-forge graphviz` (conda), or see https://graphviz.org/download/"
)


class DotNotFoundError(RuntimeError):
    """Rendering an image needs Graphviz's `dot` program, and it is not on PATH."""


def dot_available() -> bool:
    """True when Graphviz's `dot` program is on PATH (needed for SVG/PNG/PDF, not for DOT)."""
    return shutil.which("dot") is not None


def _missing_dot(fmt: str) -> DotNotFoundError:
    return DotNotFoundError(
        f"render: writing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH; "
        f"{INSTALL_HINT}. Without it you can still write the DOT text (format='dot') or use "
        "graph.source."
    )


def render(graph: Any, path: str | os.PathLike, format: str | None = None) -> Path:  # noqa: A002
    """Write `graph` (a graphviz.Digraph) to `path` as svg, png, pdf or dot; returns the path.

    The format defaults to the file's suffix. The file is written atomically (temp file,
    then rename), so a failed render never leaves a half-written image behind.
    """
    if not isinstance(graph, graphviz.Digraph | graphviz.Graph | graphviz.Source):
        raise TypeError(
            f"render: graph must be a graphviz.Digraph (e.g. from draw_graph), got "
            f"{type(graph).__name__}"
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
    if format == "dot":
        data = graph.source.encode("utf-8")
    else:
        if not dot_available():
            raise _missing_dot(format)
        try:
            data = graph.pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise _missing_dot(format) from None
        except (graphviz.CalledProcessError, subprocess.CalledProcessError) as err:
            detail = (err.stderr or b"").decode("utf-8", "replace").strip()
            raise RuntimeError(
                f"render: Graphviz `dot` failed to draw {format}: {detail}"
            ) from None
    return atomic_write_bytes(path, data)
