"""The seed sweep: one pytest run per hypothesis seed, counted."""

import textwrap

from tinygrad_bn.testing.seed_sweep import main, property_test_files, run_seed


def test_property_test_files_are_the_ones_that_use_hypothesis(tmp_path):
    (tmp_path / "test_prop.py").write_text("from hypothesis import given\n")
    (tmp_path / "test_kernels.py").write_text("from tinygrad_bn.testing import check_fused\n")
    (tmp_path / "test_plain.py").write_text("def test_x():\n    pass\n")
    found = [p.rsplit("/", 1)[-1] for p in property_test_files(tmp_path)]
    assert found == ["test_kernels.py", "test_prop.py"]


def test_each_seed_is_counted_and_a_failure_sets_the_exit_status(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test = tmp_path / "test_drawn.py"
    test.write_text(textwrap.dedent("""
        from hypothesis import given, settings, strategies as st

        @settings(database=None)
        @given(st.integers(0, 10))
        def test_small(n):
            assert n <= 10

        @settings(database=None)
        @given(st.integers(0, 10))
        def test_wrong(n):
            assert n < 5
    """))
    counts = run_seed(3, [str(test)])
    assert counts["passed"] == 1 and counts["failed"] == 1
    assert any("test_wrong" in line for line in counts["lines"])
    assert main(["--seeds", "2", str(test)]) == 1
    out = capsys.readouterr().out
    assert "seed    1:" in out and "2 seeds: 2 passed, 2 failed" in out
