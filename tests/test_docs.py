"""Every ```python block in docs/ runs, page by page, as the API changes.

Blocks of one page share a namespace and run in order in a scratch directory (so
files they write go nowhere). Doctest blocks (`>>>`) are run by doctest in the
tests of the page's module, which also compares their output; pages checked
elsewhere say where.
"""

import contextlib
import io
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# Pages whose python blocks are checked elsewhere, or need what a test machine lacks.
ELSEWHERE = {
    "custom-layers.md": "tests/test_examples_custom_layer.py runs its snippets in order",
    "visualising.md": "tests/test_viz.py checks the gallery code against the pictures",
    "data.md": "its blocks download or read datasets the test machine does not have",
    "experiments.md": "its block runs a full sweep (minutes)",
    "training.md": "its blocks train for many epochs; tests/test_train.py covers the same calls",
}
PAGES = sorted(p.name for p in DOCS.glob("*.md") if BLOCK.search(p.read_text()) and p.name not in ELSEWHERE)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for code in BLOCK.findall((DOCS / page).read_text()):
        if code.lstrip().startswith(">>>"):
            continue  # doctests: run by the modules' own doctest tests
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"{page} block", "exec"), namespace)  # noqa: S102 - our own docs


def test_every_page_with_code_is_run_here_or_says_where_it_is_checked():
    with_code = {p.name for p in DOCS.glob("*.md") if BLOCK.search(p.read_text())}
    assert with_code == set(PAGES) | (with_code & set(ELSEWHERE))
