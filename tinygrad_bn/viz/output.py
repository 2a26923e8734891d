"""Running Graphviz's `dot`: images from DOT text, and a clear error when it is missing."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import graphviz

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), `conda install -c conda-forge graphviz` (conda), or see https://graphviz.org/download/"
)


class DotNotFoundError(RuntimeError):
    """Rendering an image needs Graphviz's `dot` program, and it is not on PATH."""


def dot_available() -> bool:
    """True when Graphviz's `dot` program is on PATH (needed for SVG/PNG/PDF, not for DOT)."""
    return shutil.which("dot") is not None


def missing_dot(fmt: str, api: str = "render") -> DotNotFoundError:
    """The error for writing `fmt` without `dot`, with how to install it."""
    return DotNotFoundError(
        f"{api}: writing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH; "
        f"{INSTALL_HINT}. Without it you can still write the DOT text (format='dot') or use "
        "graph.source."
    )


def pipe(graph: Any, fmt: str, api: str = "render") -> bytes:
    """`graph` laid out and drawn by `dot` as `fmt` bytes; DotNotFoundError without `dot`."""
    if not dot_available():
        raise missing_dot(fmt, api)
    try:
        return graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise missing_dot(fmt, api) from None
    except (graphviz.CalledProcessError, subprocess.CalledProcessError) as err:
        detail = (err.stderr or b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"{api}: Graphviz `dot` failed to draw {fmt}: {detail}") from None
