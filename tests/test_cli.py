"""The command line: dispatch, --help, one-line errors, and `tinygrad-bn check`."""

import pytest

from tinygrad_bn.cli import COMMANDS, build_parser, main


def test_every_available_subcommand_has_help(capsys):
    parser = build_parser()
    names = [a for a in parser._subparsers._group_actions[0].choices]
    assert set(names) <= set(COMMANDS) and "check" in names
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: tinygrad-bn" in capsys.readouterr().out


def test_check_passes_for_every_kernel(capsys):
    assert main(["check", "--shape", "5,3"]) == 0
    out = capsys.readouterr().out
    assert "batch_norm" in out and "layer_norm" in out and "all checks passed" in out


def test_check_float32_reports_its_tolerance(capsys):
    assert main(["check", "--kernel", "batch_norm", "--dtype", "float32", "--shape", "6,2,3"]) == 0
    assert "fused err <= 32 x max(composed err, sensitivity" in capsys.readouterr().out


def test_bad_argument_is_one_clear_line_not_a_traceback(capsys):
    assert main(["check", "--shape", "8,x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shape must be comma-separated integers" in err


def test_check_names_the_backend_and_function_that_ran_each_kernel(capsys):
    assert main(["check", "--backend", "numpy", "--kernel", "batch_norm", "--shape", "5,3"]) == 0
    assert "== batch_norm [numpy]: BatchNormFused vs composed" in capsys.readouterr().out


def test_check_on_numba_runs_the_compiled_kernel(capsys):
    pytest.importorskip("numba")
    assert main(["check", "--backend", "numba", "--kernel", "layer_norm", "--shape", "5,3"]) == 0
    assert "== layer_norm [numba]: NumbaLayerNormFused vs composed" in capsys.readouterr().out


def test_bench_kernels_names_the_function_behind_every_row():
    from tinygrad_bn.commands.bench import load_benchmark
    from tinygrad_bn.kernel_registry import use_backend

    bench_kernels, _ = load_benchmark("kernels")

    with use_backend("numpy"):
        text = bench_kernels.describe_backends(["batch_norm", "cross_entropy"])
    assert "backend of impl='fused' here: numpy" in text
    assert "impl='fused' runs BatchNormFused [numpy]" in text
    assert "numpy rows CrossEntropyFused" in text
    if bench_kernels.compiled.available():
        assert "numba rows NumbaBatchNormFused" in text
