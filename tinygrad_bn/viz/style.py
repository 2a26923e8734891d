"""How drawings look: the gradient colour scale, node styles per kind, label text.

Fill colour means one thing only, the size of the gradient at that tensor; the
kind of a node (op, fused kernel, parameter, input, constant, folded module) is
carried by its shape and border, so both read at once.
"""

from __future__ import annotations

import html
import math

import numpy as np

FONT = "Helvetica"

# ---------------------------------------------------------------- gradient colour scale

# The scale spans log10(max |g|) from 1e-8 to 1e6. Gradients of a healthy net trained
# with a mean-reduced loss sit around 1e-3..1 (logit gradients are ~1/batch), so the
# neutral pale yellow is centred at 1e-1; blue below ~1e-5 means vanishing, red above
# ~1e3 means exploding.
SCALE_LOW, SCALE_HIGH = -8, 6
# ColorBrewer RdYlBu (11 classes), reversed so that small is blue and large is red.
_PALETTE = (
    "#313695", "#4575b4", "#74add1", "#abd9e9", "#e0f3f8", "#ffffbf",
    "#fee090", "#fdae61", "#f46d43", "#d73027", "#a50026",
)
NO_GRAD_FILL = "#ffffff"
ZERO_GRAD_FILL = "#d9d9d9"  # exactly zero: grey, not the darkest blue
NONFINITE_FILL = "#000000"  # nan or inf: black, impossible to miss


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def grad_colour(max_abs: float) -> str:
    """Fill colour for a gradient whose largest magnitude is `max_abs` (log scale)."""
    if not math.isfinite(max_abs):
        return NONFINITE_FILL
    if max_abs == 0.0:
        return ZERO_GRAD_FILL
    t = (math.log10(max_abs) - SCALE_LOW) / (SCALE_HIGH - SCALE_LOW)
    t = min(max(t, 0.0), 1.0) * (len(_PALETTE) - 1)
    i = min(int(t), len(_PALETTE) - 2)
    frac = t - i
    lo, hi = _rgb(_PALETTE[i]), _rgb(_PALETTE[i + 1])
    return _hex(tuple(a + (b - a) * frac for a, b in zip(lo, hi, strict=True)))  # type: ignore[arg-type]


def text_colour(fill: str) -> str:
    """Black on light fills, white on dark ones (relative luminance threshold)."""
    r, g, b = _rgb(fill)
    return "#ffffff" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else "#000000"


# ---------------------------------------------------------------- node kinds

# kind -> (graphviz node attributes, legend caption)
KIND_STYLE: dict[str, dict[str, str]] = {
    "op": {"shape": "box", "style": "rounded,filled", "color": "#404040", "penwidth": "1"},
    "fused": {
        "shape": "box", "style": "filled,bold", "color": "#d95f02", "penwidth": "2.5",
        "peripheries": "2",
    },
    "parameter": {"shape": "box", "style": "filled,bold", "color": "#1b7837", "penwidth": "2"},
    "input": {"shape": "box", "style": "filled,diagonals", "color": "#2166ac", "penwidth": "1.5"},
    "constant": {
        "shape": "box", "style": "dashed,filled", "color": "#8c8c8c", "fontcolor": "#555555",
        "fontsize": "9",
    },
    "folded": {
        "shape": "box3d", "style": "filled", "color": "#762a83", "penwidth": "2",
        "margin": "0.15,0.1",  # clear of the box's 3-d rim
    },
}
KIND_CAPTION = {
    "op": "op (primitive)",
    "fused": "fused kernel\\n(hand-derived backward)",  # DOT's own line-break escape
    "parameter": "parameter",
    "input": "input",
    "constant": "constant",
    "folded": "folded module",
}
KIND_ORDER = ("op", "fused", "folded", "parameter", "input", "constant")

CLUSTER_FILLS = ("#f4f4f4", "#e8e8e8", "#dcdcdc")  # nested modules get darker backgrounds
COMPOSITE_FILL = "#fbfbf6"  # a composite's box (F.cross_entropy): lighter, dashed border
FORWARD_EDGE = "#404040"
GRADIENT_EDGE = "#b2182b"
NO_GRADIENT_EDGE = "#a0a0a0"


# ---------------------------------------------------------------- text

def esc(text: str) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=True)


def fmt_num(value: float) -> str:
    """A number in 3 significant digits, compact (1e-05, 0.0312, 123)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value + 0.0:.3g}"  # + 0.0 turns -0.0 into 0


def fmt_shape(shape: tuple[int, ...]) -> str:
    """(32, 10) for arrays, 'scalar' for 0-d."""
    if len(shape) == 0:
        return "scalar"
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_bytes(n: int) -> str:
    """Byte counts for humans: 512 B, 1.5 kB, 2.3 MB."""
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def grad_stats(g: np.ndarray) -> tuple[float, float]:
    """(L2 norm, max |g|) in float64, so float32 squares cannot overflow."""
    if g.size == 0:
        return 0.0, 0.0
    g64 = np.asarray(g, dtype=np.float64)
    return float(np.sqrt(np.sum(g64 * g64))), float(np.max(np.abs(g64)))


def value_summary(x: np.ndarray) -> str:
    """'mean 0.01 std 0.99 [-2.1, 2.3]' for float arrays, a short note otherwise."""
    if x.size == 0:
        return "empty"
    if x.dtype.kind not in "fiub":
        return f"dtype {x.dtype}"
    x64 = np.asarray(x, dtype=np.float64)
    if x.size == 1:
        return f"value {fmt_num(float(x64.reshape(-1)[0]))}"
    return (
        f"mean {fmt_num(float(x64.mean()))} std {fmt_num(float(x64.std()))} "
        f"[{fmt_num(float(x64.min()))}, {fmt_num(float(x64.max()))}]"
    )


def html_label(title: str, lines: list[str], note: str | None = None, size: int = 9) -> str:
    """A node label: bold title, smaller detail lines (already escaped), optional grey note."""
    parts = [f"<b>{title}</b>"]
    if note:
        # italic rather than grey: the fill may be dark, and the font colour follows it
        parts[0] += f' <font point-size="{size}"><i>{note}</i></font>'
    parts.extend(f'<font point-size="{size}">{line}</font>' for line in lines)
    return "<" + "<br/>".join(parts) + ">"
