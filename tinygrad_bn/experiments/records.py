"""Results on disk and on screen: JSON-safe values, atomic JSON and CSV files, plain-text tables.

Everything here is a pure helper with no knowledge of presets, so the run
directory (`store`), the runner and every preset share one way of writing files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_bn._io import atomic_write_bytes


def json_safe(value: Any) -> Any:
    """Numpy scalars/arrays to Python; NaN and inf to None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def json_text(payload: Any, indent: int | None = 1) -> str:
    """`payload` as strict JSON text (non-finite floats become null)."""
    return json.dumps(json_safe(payload), indent=indent, allow_nan=False)


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as strict, indented JSON, atomically."""
    return atomic_write_bytes(path, (json_text(payload) + "\n").encode())


def fingerprint(payload: Any) -> str:
    """A short stable hash of `payload`'s canonical JSON (key order does not matter)."""
    text = json.dumps(json_safe(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write dict rows as CSV atomically: one column per key (first-seen order); None is empty."""
    rows = [json_safe(row) for row in rows]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return atomic_write_bytes(path, buffer.getvalue().encode())


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: right-aligned columns, floats with 3 decimals, None as '-'."""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.3e}" if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4) else f"{v:.3f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
