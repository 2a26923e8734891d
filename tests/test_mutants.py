"""The mutant catalogue: every wrong kernel is caught, where its bug lives; the real kernels pass."""

import dataclasses
import subprocess
import sys

import pytest

from tinygrad_bn.cli import main
from tinygrad_bn.kernel_registry import KERNELS
from tinygrad_bn.kernels import LinearFused
from tinygrad_bn.testing import mutants as mutants_module
from tinygrad_bn.testing.kernels import CHECKS, backends_of, kernel_cases, run_cases
from tinygrad_bn.testing.mutants import (
    DIFFERENTIABLE,
    FAST,
    FLOAT32,
    FOUR_D,
    MUTANTS,
    Mutant,
    check_mutant,
    verdict_table,
)

# The issue's list for BatchNorm; every registered kernel has mutants of its own.
ISSUE_BATCHNORM_MISTAKES = {
    "dx_missing_mean_term", "dx_missing_xhat_term", "running_var_with_n", "running_var_n_minus_1_twice",
    "gamma_missing_from_dx", "eps_outside_sqrt", "dgamma_without_inv_std", "dbeta_over_wrong_axes",
    "momentum_inverted", "fast_path_only", "differentiable_path_only", "4d_only", "float32_only",
}


@pytest.fixture(scope="module")
def verdicts():
    return {m.id: check_mutant(m) for m in MUTANTS}


# Every kernel tinygrad_bn ships has realistic mutants (kernels registered by users or by other
# test modules are checked with the sensitivity mutants, mutants.scaled_gradient, instead).
SHIPPED_KERNELS = {name for name, entry in KERNELS.items()
                   if entry.kernel.__module__.startswith("tinygrad_bn.kernels")}


def test_the_catalogue_covers_the_shipped_kernels_and_the_issues_batchnorm_list():
    covered = {m.kernel for m in MUTANTS}
    assert len(SHIPPED_KERNELS) >= 12  # batch/layer/group/instance norm, linear, CE, convs, pools, fold
    assert SHIPPED_KERNELS <= covered, f"no mutants yet for {sorted(SHIPPED_KERNELS - covered)}"
    assert covered <= set(KERNELS)
    assert ISSUE_BATCHNORM_MISTAKES <= {m.name for m in MUTANTS if m.kernel == "batch_norm"}
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        assert (m.function is None) != (m.layer is None) and m.mistake
        if m.function is not None:  # a subclass of the real kernel, one place changed
            assert issubclass(m.function, KERNELS[m.kernel].kernel)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_every_mutant_is_caught(mutant, verdicts):
    verdict = verdicts[mutant.id]
    assert verdict.caught, f"{mutant.id} ({mutant.mistake}) passed every check"
    findings = [f for check in CHECKS for f in verdict.caught_by(check)]
    if mutant.only == FAST:  # the Tensor-op backward and its derivative are right
        assert not any("(differentiable path)" in f or "gradgrad[" in f for f in findings)
        assert not verdict.caught_by("gradgradcheck")
    elif mutant.only == DIFFERENTIABLE:  # the backward training runs is right
        assert not any("(fast path)" in f for f in findings) and not verdict.caught_by("gradcheck")
    elif mutant.only == FLOAT32:
        assert all(f.startswith("float32") and " in float64" not in f for f in findings)
    elif mutant.only == FOUR_D:
        assert all("(3, 2, 2, 2)" in f or "BatchNorm2d" in f for f in findings)


def test_only_check_fused_catches_a_consistently_wrong_differentiable_path(verdicts):
    # gradgradcheck differentiates the differentiable path numerically: a wrong formula that is
    # differentiated consistently passes it, and the fast path is right, so gradcheck passes too.
    verdict = verdicts["batch_norm/differentiable_path_only"]
    assert verdict.caught_by("check_fused") and not verdict.caught_by("gradgradcheck")


def test_running_statistics_mistakes_are_caught_by_the_state_rows(verdicts):
    for name in ("running_var_with_n", "running_var_n_minus_1_twice", "momentum_inverted"):
        findings = verdicts[f"batch_norm/{name}"].caught_by("check_fused")
        assert findings and all("state[running_" in f for f in findings)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_the_real_kernels_pass_the_protocol_on_every_backend(name):
    for backend in backends_of(name):
        results = run_cases(kernel_cases(name), backend)
        assert results and all(r.passed for r in results), [(r.case, r.errors) for r in results]


def test_importing_the_catalogue_changes_nothing():
    code = ("import tinygrad_bn.kernels as k; before = {n: e.kernel for n, e in k.KERNELS.items()}; "
            "import hypothesis; default = hypothesis.settings.default; "
            "import tinygrad_bn.testing.mutants; "
            "assert {n: e.kernel for n, e in k.KERNELS.items()} == before; "
            "assert hypothesis.settings.default == default")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_installed_mutant_is_removed_even_when_the_block_raises():
    mutant = next(m for m in MUTANTS if m.id == "linear/dbias_mean")
    with pytest.raises(RuntimeError), mutant.installed():
        assert KERNELS["linear"].kernel is mutant.function
        raise RuntimeError("inside")
    assert KERNELS["linear"].kernel is LinearFused


def test_check_mutants_prints_which_check_caught_each_and_exits_0(capsys):
    assert main(["check", "--mutants", "--kernel", "linear"]) == 0
    out = capsys.readouterr().out
    assert "linear/dbias_mean" in out and "grad[input 2] (fast path)" in out
    assert "4 of 4 mutants caught; real kernels pass" in out


def test_check_mutants_exits_1_when_a_mutant_is_missed(capsys, monkeypatch):
    not_a_bug = Mutant("linear", "not_a_bug", "the real kernel, under another name", LinearFused)
    monkeypatch.setattr(mutants_module, "MUTANTS", (not_a_bug,))
    assert main(["check", "--mutants", "--kernel", "linear"]) == 1
    out = capsys.readouterr().out
    assert "MISSED: linear/not_a_bug" in out and "0 of 1 mutants caught" in out


def test_the_verdict_table_has_one_row_per_mutant_in_text_and_markdown(verdicts):
    chosen = [verdicts["linear/dbias_mean"], verdicts["cross_entropy/gradient_sign_flipped"]]
    text, markdown = verdict_table(chosen), verdict_table(chosen, markdown=True)
    assert len(text.splitlines()) == 3 and len(markdown.splitlines()) == 4
    assert markdown.splitlines()[0] == "| mutant | mistake | check_fused | gradcheck | gradgradcheck |"


def test_a_mutant_replaces_every_entry_that_runs_the_same_function():
    # instance_norm-style: two entries share one Function, and the fused path of one runs the other's.
    from tinygrad_bn.kernel_registry import register_kernel, unregister_kernel
    from tinygrad_bn.testing.mutants import FAST, scaled_gradient

    linear = KERNELS["linear"]
    alias = register_kernel(dataclasses.replace(linear, name="linear_alias_for_test"))
    try:
        mutant = scaled_gradient("linear_alias_for_test", 0, FAST)
        with mutant.installed():
            assert KERNELS["linear"].kernel is KERNELS["linear_alias_for_test"].kernel is mutant.function
        assert KERNELS["linear"] is linear and KERNELS["linear_alias_for_test"] is alias
    finally:
        unregister_kernel("linear_alias_for_test")
