"""The README's quick start and CI stay in sync."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```(?:bash)?\n(.*?)```", section, re.S)
    assert block, "README's Quick start has no code block"
    return [line.strip() for line in block.group(1).strip().splitlines()]


def test_quick_start_has_exactly_two_commands_demo_then_tests():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("tinygrad-bn demo")
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _quick_start_commands()[1]
    assert f"TEST_COMMAND='{test_command}'" in ci


def test_ten_line_example_prints_what_its_comments_say(tmp_path, monkeypatch, capsys):
    import shutil

    import pytest

    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Ten lines.*?```python\n(.*?)```", text, re.S).group(1)
    if shutil.which("dot") is None:
        pytest.skip("the example renders an SVG, which needs Graphviz's dot program")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    expected = re.findall(r"print\(.*\)  # (.*)", code)
    for got, want in zip(printed, " ".join(expected).split()):
        assert abs(float(got) - float(want)) <= 1e-12 * max(1.0, abs(float(want)))
    assert (tmp_path / "bn.svg").read_text().startswith("<?xml")


def test_relative_links_in_readme_and_docs_point_to_existing_files():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
