"""examples/custom_layer.py runs, its fused RMSNorm checks pass, and its broken kernel is caught."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_bn as tg
from tinygrad_bn import Tensor
from tinygrad_bn.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_bn.testing import check_fused

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_layer.py"
DOC = ROOT / "docs" / "custom-layers.md"


def _load_example():
    spec = importlib.util.spec_from_file_location("custom_layer_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture(scope="module")
def reports():
    # Reduced configuration: a small input; hypothesis' example count comes from tests/conftest.py.
    return example.main(shape=(3, 4), seed=1)


def test_main_reports_fused_matches_composed_to_float64_rounding(reports):
    fixed = reports["fixed"]
    assert fixed.passed
    assert set(fixed.errors()) == {
        "output[0]", "grad[input 0] (fast path)", "grad[input 1] (fast path)",
        "grad[input 0] (differentiable path)", "grad[input 1] (differentiable path)",
        "gradgrad[input 0]", "gradgrad[input 1]",
    }
    assert all(rel <= 1e-12 for _, rel in fixed.errors().values())


def test_main_judges_float32_against_the_float64_truth(reports):
    low = reports["float32"]
    assert low.passed and low.against_truth
    rows = [r for r in low.rows if not r.quantity.endswith(" in float64")]
    assert rows and all(r.composed_err is not None and r.rel_err < 1e-5 for r in rows)


def test_main_property_checks_many_drawn_examples(reports):
    assert reports["property"] >= 5


def test_main_gradchecks_pass_for_both_inputs(reports):
    for name in ("gradcheck", "gradgradcheck"):
        report = reports[name]
        assert report.passed
        assert [r.index for r in report.inputs] == [0, 1]


def test_main_reports_the_broken_kernel_failing_on_dx_only(reports):
    errors = reports["broken"].errors()
    assert not reports["broken"].passed
    for path in ("fast path", "differentiable path"):  # the mistake is in the formula: both paths
        assert errors[f"grad[input 0] ({path})"][1] > 1e-2  # an O(1) error, not rounding
        assert errors[f"grad[input 1] ({path})"][1] <= 1e-12
    assert errors["output[0]"][1] <= 1e-12


def test_main_prints_every_report(capsys):
    example.main(shape=(2, 3), seed=2)
    out = capsys.readouterr().out
    for header in ("== fixed: passed", "== float32: passed", "== property: fused matches composed on",
                   "== gradcheck: passed", "== gradgradcheck: passed", "== broken: FAILED"):
        assert header in out
    assert "grad[input 0]" in out and "NO" in out


def test_broken_kernel_raises_when_exceptions_are_on():
    x, gamma = np.random.default_rng(3).normal(size=(4, 5)), np.ones(5)
    broken = example.RMSNormForgetsR.apply
    with pytest.raises(GradcheckError, match=r"grad\[input 0\] \(fast path\)"):
        check_fused(example.rms_norm, broken, [x, gamma], double_backward=False)


def test_fused_rmsnorm_is_one_fused_node_and_composed_is_primitives():
    x = Tensor(np.random.default_rng(4).normal(size=(2, 3)), requires_grad=True)
    gamma = Tensor(np.ones(3), requires_grad=True)
    node = example.fused(x, gamma)._ctx
    assert node.fn.name == "rms_norm_fused" and node.fn.fused
    assert [p is x or p is gamma for p in node.parents] == [True, True]
    composed_node = example.rms_norm(x, gamma)._ctx
    assert composed_node.fn.name in tg.PRIMITIVES and not composed_node.fn.fused


def test_fused_rmsnorm_keeps_float32():
    x = Tensor(np.random.default_rng(5).normal(size=(4, 6)).astype(np.float32), requires_grad=True)
    gamma = Tensor(np.ones(6, np.float32), requires_grad=True)
    out = example.fused(x, gamma)
    out.backward(np.random.default_rng(6).normal(size=(4, 6)).astype(np.float32))
    assert out.dtype == x.grad.dtype == gamma.grad.dtype == np.float32


@pytest.fixture
def restored_hypothesis_profile():
    """The doc loads a hypothesis profile; the rest of the session keeps the suite's own."""
    from hypothesis import settings

    settings.register_profile("tinygrad_bn-before-doc", settings.default)
    yield
    settings.load_profile("tinygrad_bn-before-doc")


def test_custom_layers_doc_snippets_run_in_order(tmp_path, monkeypatch, capsys, restored_hypothesis_profile):
    from tinygrad_bn.viz import dot_available

    if not dot_available():
        pytest.skip("the doc's last snippet renders an SVG, which needs Graphviz's dot")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    # Indented blocks are excerpts of a method shown in place; the rest run top to bottom.
    runnable = [b for b in blocks if not b.startswith(" ")]
    assert len(runnable) >= 10
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in runnable:
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "grad[input 0] (fast path)                1.743e+00    4.054e-01  NO" in out
    assert "[]" in out.splitlines()  # no mutant missed
    namespace["test_rmsnorm_fused_matches_composed"]()  # the documented property test passes
    assert (tmp_path / "rmsnorm.svg").stat().st_size > 0


def test_the_docs_reports_are_what_the_checks_print_today():
    spec = importlib.util.spec_from_file_location("make_check_tables", ROOT / "docs" / "make_check_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    page = DOC.read_text()
    assert set(m.group("name") for m in tables.BLOCK.finditer(page)) == set(tables.TABLES)
    assert tables.stale_tables(page) == [], "run: python docs/make_check_tables.py"


def test_the_documented_property_test_passes_under_hypothesis_default_settings(restored_hypothesis_profile):
    from hypothesis import settings

    settings.load_profile("default")  # hypothesis's own: a 200 ms deadline, 100 examples
    assert settings.default.deadline is not None
    assert check_fused(example.rms_norm, example.fused, example.cases()).passed
    inputs = example.cases(max_side=3)  # and the numerical checks over the same strategy
    assert gradcheck(example.fused, inputs).passed and gradgradcheck(example.fused, inputs).passed
