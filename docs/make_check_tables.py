"""Regenerate the check reports shown in docs/custom-layers.md from a real run.

    python docs/make_check_tables.py          # rewrites the generated blocks of the page

Each report sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->`.
tests/test_examples_custom_layer.py calls `stale_tables()` to check that the page
still shows what these checks print (the same rows and verdicts; numbers to
within a factor of 10, since the last digits vary with the machine's BLAS).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "custom-layers.md"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S)


def _example() -> object:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import custom_layer
    finally:
        sys.path.pop(0)
    return custom_layer


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)  # the page's inputs
    return rng.normal(size=(6, 8)), rng.normal(size=8)


def float64_report() -> str:
    from tinygrad_bn.testing import check_fused

    ex, (x, gamma) = _example(), _inputs()
    return str(check_fused(ex.rms_norm, ex.fused, [x, gamma]))


def float32_report() -> str:
    from tinygrad_bn.testing import check_fused

    ex, (x, gamma) = _example(), _inputs()
    return str(check_fused(ex.rms_norm, ex.fused, [x.astype(np.float32), gamma.astype(np.float32)]))


def issue_report() -> str:
    """BatchNorm on the input where a fixed float32 tolerance of 1e-4 raised a false alarm."""
    from tinygrad_bn.kernel_registry import KERNELS
    from tinygrad_bn.testing import check_fused

    x = (20 + np.arange(18).reshape(6, 3) / 17).astype(np.float32)
    x[0, 1], x[0, 2] = 1 / 17, 2 / 17
    zeros = np.zeros(3, np.float32)
    entry = KERNELS["batch_norm"]
    report = check_fused(entry.composed, entry.fused, [x, zeros, zeros, 1e-5])
    lines = str(report).splitlines()
    return "\n".join(line for line in lines if "gradgrad" in line or line.startswith("quantity"))


def gradcheck_reports() -> str:
    from tinygrad_bn import Tensor
    from tinygrad_bn.gradcheck import gradcheck, gradgradcheck

    ex, (x, gamma) = _example(), _inputs()
    inputs = [Tensor(a, requires_grad=True) for a in (x, gamma)]
    return f"{gradcheck(ex.fused, inputs)}\n{gradgradcheck(ex.fused, inputs)}"


def broken_report() -> str:
    from tinygrad_bn.testing import check_fused

    ex, (x, gamma) = _example(), _inputs()
    return str(check_fused(ex.rms_norm, ex.RMSNormForgetsR.apply, [x, gamma],
                           double_backward=False, raise_exception=False))


def mutant_table() -> str:
    from tinygrad_bn.testing.mutants import check_catalogue, verdict_table

    return verdict_table(check_catalogue(), markdown=True)


TABLES: dict[str, Callable[[], str]] = {
    "float64": float64_report, "float32": float32_report, "issue": issue_report,
    "gradcheck": gradcheck_reports, "broken": broken_report, "mutants": mutant_table,
}


def _body(name: str) -> str:
    text = TABLES[name]()
    return text + "\n" if name == "mutants" else f"```\n{text}\n```\n"


def render(page: str) -> str:
    """The page with every generated block replaced by a fresh run."""
    return BLOCK.sub(lambda m: m.group(1) + _body(m.group("name")) + m.group(4), page)


_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?(e[-+]?\d+)?$")


def _same(shown: str, fresh: str) -> bool:
    """Same words and verdicts; numbers within a factor of 10 (or both below 1e-13)."""
    def tokens(text: str) -> list[str]:
        return re.sub(r"\(\+\d+\)", "", text).split()  # "(+12) more findings" counts may differ

    a, b = tokens(shown), tokens(fresh)
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if _NUMBER.match(u) and _NUMBER.match(v) and ("." in u or "e" in u):
            x, y = abs(float(u)), abs(float(v))
            if not (max(x, y) <= 1e-13 or (min(x, y) > 0 and max(x, y) / min(x, y) <= 10)):
                return False
        elif u != v:
            return False
    return True


def stale_tables(page: str) -> list[str]:
    """The names of generated blocks whose content no longer matches a fresh run."""
    return [m.group("name") for m in BLOCK.finditer(page)
            if not _same(m.group("body"), _body(m.group("name")))]


def main() -> None:
    page = render(DOC.read_text())
    fd, tmp = tempfile.mkstemp(dir=DOC.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(page)
    os.replace(tmp, DOC)
    print(f"rewrote {len(BLOCK.findall(page))} generated blocks of {DOC}")


if __name__ == "__main__":
    main()
