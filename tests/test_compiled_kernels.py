"""The compiled (numba) kernels against the numpy kernels, the composed twins and a float64 truth.

Every comparison covers outputs, first-order gradients through the fast path
(grad recording off), double backward (create_graph=True, which the compiled
kernels hand to the numpy kernels' Tensor-op formula) and BatchNorm's batch
statistics, over hypothesis-drawn shapes and values: (N, C), (N, C, L),
(N, C, H, W), offsets up to 1e4, tiny spreads, zero gamma, two rows.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

numba = pytest.importorskip("numba", reason="compiled kernels need numba: pip install 'tinygrad_bn[fast]'")

import tinygrad_bn as tg  # noqa: E402
from tinygrad_bn import Tensor  # noqa: E402
from tinygrad_bn import functional as F  # noqa: E402
from tinygrad_bn.gradcheck import gradcheck, gradgradcheck  # noqa: E402
from tinygrad_bn.kernels import BatchNormFused, CrossEntropyFused, LayerNormFused, compiled  # noqa: E402
from tinygrad_bn.kernels.compiled import _jit, _simd  # noqa: E402
from tinygrad_bn.testing import strategies as tst  # noqa: E402

NUMPY = {"batch_norm": BatchNormFused, "layer_norm": LayerNormFused, "cross_entropy": CrossEntropyFused}
# The normalisation and loss kernels; the convolution and pooling ones: tests/test_compiled_conv.py.
COMPILED = {name: kernel for name, kernel in compiled.load().items() if name in NUMPY}
# float64: the fused kernels agree with their composed twins to ~1e-10 of each
# quantity's scale (gradcheck.FUSED_RTOL); an absolute floor covers quantities that
# are pure rounding noise, e.g. dx of a two-value channel (mathematically 0).
# The noise is the mean's rounding error, relative to |x|: the floor is ATOL64 for
# |x| ~ 10 (gradcheck.FUSED_ATOL's derivation) and grows with max |x|.
RTOL64, ATOL64 = 1e-10, 1e-11
# float32: judged against a float64 evaluation of the same inputs. The compiled
# kernel may not be worse than FACTOR32 times the numpy kernel's error, plus a
# floor of a few float32 ulps of the quantity's scale (the numpy kernel may be
# lucky on one quantity) and an absolute 1e-6 for quantities that are noise.
FACTOR32, ULPS32, ATOL32 = 4.0, 32 * np.finfo(np.float32).eps, 1e-6
EXP_ULPS = 1.5  # the bound _simd's docstring states (measured: 1.05 and 0.9)


# ---------------------------------------------------------------- running one kernel


def _bn(kernel, impl_composed=False):
    def call(x, w, b, eps, stats):
        if impl_composed:
            return F.batch_norm(x, None, None, w, b, training=True, eps=eps, impl="composed")
        return kernel.apply(x, w, b, eps=eps, stats=stats)

    return call


def _ln(kernel, impl_composed=False):
    def call(x, w, b, eps, stats):
        if impl_composed:
            return F.layer_norm(x, w.shape, w, b, eps=eps, impl="composed")
        return kernel.apply(x, w, b, k=w.ndim, eps=eps)

    return call


def _ce(kernel, reduction, impl_composed=False):
    def call(z, labels, stats):
        if impl_composed:
            return F.cross_entropy(z, labels, reduction=reduction, impl="composed")
        return kernel.apply(z, labels=labels, reduction=reduction)

    return call


def evaluate(call, arrays, extra, cotangent, projections, double_backward=True):
    """{quantity: float64 array} of one implementation on its own copies of the inputs."""
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    stats: dict = {}
    out = call(*tensors, *extra, stats)
    result = {"output": out.data}
    result.update({f"stats[{k}]": np.asarray(v) for k, v in stats.items() if k != "count"})
    # First order: backward runs with grad recording off, the kernels' fast path.
    first = tg.grad(out, tensors, [cotangent.astype(out.dtype)], retain_graph=True)
    result.update({f"grad[{i}]": g.data for i, g in enumerate(first)})
    if double_backward:
        grads = tg.grad(out, tensors, [cotangent.astype(out.dtype)], create_graph=True)
        total = sum(((g * Tensor(p.astype(g.dtype))).sum() for g, p in zip(grads, projections)), Tensor(0.0))
        second = tg.grad(total, tensors, allow_unused=True)
        result.update({f"gradgrad[{i}]": np.zeros(t.shape) if g is None else g.data
                       for i, (g, t) in enumerate(zip(second, tensors))})
    return {k: np.asarray(v, dtype=np.float64) for k, v in result.items()}


def random_directions(seed, arrays, out_shape):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(out_shape), [rng.standard_normal(a.shape) for a in arrays]


def assert_close64(a: dict, b: dict, label: str, x_max: float = 10.0) -> None:
    atol = ATOL64 * max(1.0, x_max / 10.0)
    for key in a:
        scale = max(np.abs(a[key]).max(initial=0.0), np.abs(b[key]).max(initial=0.0))
        err = np.abs(a[key] - b[key]).max(initial=0.0)
        assert err <= RTOL64 * scale + atol, f"{label} {key}: error {err:.3g}, scale {scale:.3g}"


def assert_no_worse32(compiled_r: dict, numpy_r: dict, truth: dict, label: str) -> None:
    for key in truth:
        scale = np.abs(truth[key]).max(initial=0.0)
        err_c = np.abs(compiled_r[key] - truth[key]).max(initial=0.0)
        err_n = np.abs(numpy_r[key] - truth[key]).max(initial=0.0)
        bound = FACTOR32 * err_n + ULPS32 * scale + ATOL32
        assert err_c <= bound, f"{label} {key}: compiled error {err_c:.3g} > {bound:.3g} (numpy {err_n:.3g})"


# ---------------------------------------------------------------- strategies


@st.composite
def norm_cases(draw, kind: str, dtype: str):
    """[x, weight, bias], eps for batch norm (per channel) or layer norm (per example)."""
    n = draw(st.integers(2, 6)) if kind == "batch_norm" else draw(st.integers(1, 6))
    c = draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (3,), (2, 3), (9,)]))
    shape = (n, c, *spatial)
    offset = draw(st.sampled_from([0.0, 3.0, -5.0, 1e4]))
    spread = draw(st.sampled_from([1e-3, 1e-1, 1.0, 10.0]))
    if dtype == "float64" and abs(offset) / spread > 1e4:
        # Beyond this conditioning the composed twin's own rounding (~1e-16 x offset /
        # spread, squared in double backward) exceeds RTOL64: the comparison would
        # measure the twin. (Measured: offset 1e4, spread 0.02 -> 2e-10 in gradgrad.)
        spread = abs(offset) * 1e-4
    base = draw(tst.arrays(shape, "float64", -2.0, 2.0))
    x = base * spread + offset
    # Distinct values per group: a constant group normalises rounding noise only.
    x = x + np.linspace(0.0, spread, x.size).reshape(shape)
    param_shape = (c,) if kind == "batch_norm" else shape[1:]
    w = draw(tst.arrays(param_shape, "float64", -2.0, 2.0))
    if draw(st.booleans()):
        w = np.where(np.arange(w.size).reshape(param_shape) % 2 == 0, 0.0, w)  # zero gamma
    b = draw(tst.arrays(param_shape, "float64", -2.0, 2.0))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.5]))
    return [a.astype(dtype) for a in (x, w, b)], eps


@st.composite
def ce_cases(draw, dtype: str):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 9))
    offset = draw(st.sampled_from([0.0, 50.0, -1e3]))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    z = draw(tst.arrays((n, c), "float64", -3.0, 3.0)) * scale + offset
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return z.astype(dtype), labels, reduction


def _norm_calls(kind):
    wrap = _bn if kind == "batch_norm" else _ln
    return wrap(COMPILED[kind]), wrap(NUMPY[kind]), wrap(None, impl_composed=True)


# ---------------------------------------------------------------- float64: agreement


@pytest.mark.parametrize("kind", ["batch_norm", "layer_norm"])
@given(data=st.data())
def test_compiled_norm_matches_numpy_kernel_and_composed_float64(kind, data):
    arrays, eps = data.draw(norm_cases(kind, "float64"))
    cot, proj = random_directions(0, arrays, arrays[0].shape)
    ours, numpy_kernel, composed = (evaluate(f, arrays, [eps], cot, proj) for f in _norm_calls(kind))
    x_max = float(np.abs(arrays[0]).max())
    assert_close64(ours, numpy_kernel, "vs numpy kernel", x_max)
    assert_close64({k: ours[k] for k in composed}, composed, "vs composed", x_max)


@given(case=ce_cases("float64"))
def test_compiled_cross_entropy_matches_numpy_kernel_and_composed_float64(case):
    z, labels, reduction = case
    out_shape = (z.shape[0],) if reduction == "none" else ()
    cot, proj = random_directions(1, [z], out_shape)
    results = [evaluate(_ce(k, reduction, k is None), [z], [labels], cot, proj)
               for k in (COMPILED["cross_entropy"], NUMPY["cross_entropy"], None)]
    x_max = float(np.abs(z).max())
    assert_close64(results[0], results[1], "vs numpy kernel", x_max)
    assert_close64(results[0], results[2], "vs composed", x_max)


# ---------------------------------------------------------------- float32: error against a float64 truth


@pytest.mark.parametrize("kind", ["batch_norm", "layer_norm"])
@given(data=st.data())
def test_compiled_norm_float32_error_is_no_worse_than_numpy_kernel(kind, data):
    arrays, eps = data.draw(norm_cases(kind, "float32"))
    cot, proj = random_directions(2, arrays, arrays[0].shape)
    cot32 = cot.astype(np.float32).astype(np.float64)  # the same cotangent on both sides
    ours_fn, numpy_fn, _ = _norm_calls(kind)
    truth = evaluate(numpy_fn, [a.astype(np.float64) for a in arrays], [eps], cot32, proj)
    ours = evaluate(ours_fn, arrays, [eps], cot32, proj)
    numpy_kernel = evaluate(numpy_fn, arrays, [eps], cot32, proj)
    assert_no_worse32(ours, numpy_kernel, truth, kind)


@given(case=ce_cases("float32"))
def test_compiled_cross_entropy_float32_error_is_no_worse_than_numpy_kernel(case):
    z, labels, reduction = case
    out_shape = (z.shape[0],) if reduction == "none" else ()
    cot, proj = random_directions(3, [z], out_shape)
    cot32 = cot.astype(np.float32).astype(np.float64)
    truth = evaluate(_ce(NUMPY["cross_entropy"], reduction), [z.astype(np.float64)], [labels], cot32, proj)
    ours = evaluate(_ce(COMPILED["cross_entropy"], reduction), [z], [labels], cot32, proj)
    numpy_kernel = evaluate(_ce(NUMPY["cross_entropy"], reduction), [z], [labels], cot32, proj)
    assert_no_worse32(ours, numpy_kernel, truth, "cross_entropy")


def test_batch_norm_float32_with_offset_1e4_beats_a_naive_mean():
    # The shift correction at work: values 1e4 + N(0, 1e-2) (100 ulps of 1e4 apart).
    rng = np.random.default_rng(4)
    x = (1e4 + rng.normal(0, 1e-2, (512, 3))).astype(np.float32)
    arrays = [x, np.ones(3, np.float32), np.zeros(3, np.float32)]
    cot, proj = random_directions(4, arrays, x.shape)
    wide = [a.astype(np.float64) for a in arrays]
    truth = evaluate(_bn(NUMPY["batch_norm"]), wide, [1e-5], cot, proj, False)
    ours = evaluate(_bn(COMPILED["batch_norm"]), arrays, [1e-5], cot, proj, False)
    assert np.abs(ours["output"] - truth["output"]).max() < 1e-3  # a float32 mean alone errs by ~0.05
    assert np.abs(ours["stats[mean]"] - truth["stats[mean]"]).max() <= np.spacing(np.float32(1e4))


# ---------------------------------------------------------------- larger shapes: blocks, tiles, paths


BLOCKED_CASES = [
    ("batch_norm", (300, 70)),  # five row blocks
    ("batch_norm", (70, 1100)),  # two column tiles
    ("batch_norm", (130, 5, 40)),
    ("batch_norm", (6, 3, 1100)),  # (N, C, L) with two column tiles per channel
    ("batch_norm", (9, 2, 4, 5)),
    ("layer_norm", (150, 300)),
    ("cross_entropy", (150, 37)),
]


def _blocked_inputs(kind, shape, dtype):
    rng = np.random.default_rng(5)
    if kind == "cross_entropy":
        return [rng.normal(0, 3, shape).astype(dtype)], [rng.integers(0, shape[1], shape[0])], "mean"
    params = (shape[1],) if kind == "batch_norm" else shape[1:]
    arrays = [rng.normal(2.0, 3.0, shape), rng.normal(1, 0.5, params), rng.normal(0, 0.5, params)]
    return [a.astype(dtype) for a in arrays], [1e-5], None


def _call_for(kind, kernel, reduction):
    if kind == "cross_entropy":
        return _ce(kernel, reduction)
    return _bn(kernel) if kind == "batch_norm" else _ln(kernel)


@pytest.mark.parametrize("kind,shape", BLOCKED_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_are_identical_for_every_thread_count_and_path(kind, shape, dtype):
    arrays, extra, reduction = _blocked_inputs(kind, shape, dtype)
    out_shape = () if kind == "cross_entropy" else shape
    cot, proj = random_directions(6, arrays, out_shape)
    call = _call_for(kind, COMPILED[kind], reduction)
    with _jit.force_threads(False):
        serial = evaluate(call, arrays, extra, cot, proj, double_backward=False)
    default = numba.get_num_threads()
    try:
        for threads in range(1, min(numba.config.NUMBA_NUM_THREADS, 4) + 1):
            numba.set_num_threads(threads)
            with _jit.force_threads(True):
                threaded = evaluate(call, arrays, extra, cot, proj, double_backward=False)
            for key in serial:
                assert np.array_equal(serial[key], threaded[key]), f"{key} differs on {threads} thread(s)"
    finally:
        numba.set_num_threads(default)


def _digest(kind, shape, dtype) -> str:
    """sha256 of one case's outputs and gradients on the current thread settings."""
    import hashlib

    arrays, extra, reduction = _blocked_inputs(kind, shape, dtype)
    cot, proj = random_directions(6, arrays, () if kind == "cross_entropy" else shape)
    call = _call_for(kind, COMPILED[kind], reduction)
    result = evaluate(call, arrays, extra, cot, proj, double_backward=False)
    return hashlib.sha256(b"".join(result[k].tobytes() for k in sorted(result))).hexdigest()


def test_results_are_identical_with_three_threads_in_a_fresh_process():
    # Three threads split the blocks unevenly; a subprocess, because numba fixes its
    # largest thread count when it first launches threads.
    code = (
        "import numba\n"
        "from tinygrad_bn.kernels.compiled import _jit\n"
        "import tests.test_compiled_kernels as t\n"
        "print(numba.get_num_threads())\n"
        "with _jit.force_threads(True):\n"
        "    print(' '.join(t._digest(k, s, d) for k, s in t.BLOCKED_CASES\n"
        "                   for d in ('float32', 'float64')))\n"
    )
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert result.returncode == 0, result.stderr
    with _jit.force_threads(False):
        serial = [_digest(k, s, d) for k, s in BLOCKED_CASES for d in ("float32", "float64")]
    threads, *digests = result.stdout.split()
    assert threads == "3" and digests == serial


@pytest.mark.parametrize("kind,shape", BLOCKED_CASES)
def test_blocked_shapes_match_numpy_kernel_float64(kind, shape):
    arrays, extra, reduction = _blocked_inputs(kind, shape, "float64")
    out_shape = () if kind == "cross_entropy" else shape
    cot, proj = random_directions(7, arrays, out_shape)
    ours = evaluate(_call_for(kind, COMPILED[kind], reduction), arrays, extra, cot, proj)
    theirs = evaluate(_call_for(kind, NUMPY[kind], reduction), arrays, extra, cot, proj)
    assert_close64(ours, theirs, f"{kind} {shape}")


def test_launch_measures_both_paths_and_keeps_the_results():
    # Enough calls at a size above the threshold for the chooser to try both paths.
    x = np.random.default_rng(8).normal(size=(1024, 256))
    kernel = COMPILED["batch_norm"]
    w, b = np.ones(256), np.zeros(256)
    outs = [kernel.apply(Tensor(x), Tensor(w), Tensor(b), eps=1e-5).data for _ in range(4)]
    assert all(np.array_equal(outs[0], o) for o in outs)
    traffic = 3 * x.nbytes  # what the forward call declares: read x twice, write y
    speeds = _jit.path_speeds()[f"_forward_2d@{2 ** (traffic.bit_length() - 1)}B"]
    assert speeds["serial"] > 0 and speeds["threaded"] > 0


# ---------------------------------------------------------------- the Function contract


@pytest.mark.parametrize("kind", sorted(COMPILED))
def test_compiled_kernel_has_the_numpy_kernels_signature_and_flags(kind):
    import inspect

    ours, theirs = COMPILED[kind], NUMPY[kind]
    assert inspect.signature(ours.forward) == inspect.signature(theirs.forward)
    assert ours.fused and ours.backend == "numba" and theirs.backend == "numpy"
    assert ours.name == theirs.name  # the same op, whichever backend computes it


def test_batch_norm_stats_match_numpy_kernel():
    x = np.random.default_rng(9).normal(3.0, 2.0, (7, 3, 5))
    stats = [{}, {}]
    for kernel, s in zip((COMPILED["batch_norm"], NUMPY["batch_norm"]), stats):
        kernel.apply(Tensor(x), Tensor(np.ones(3)), Tensor(np.zeros(3)), eps=1e-5, stats=s)
    assert stats[0]["count"] == stats[1]["count"] == 35
    for key in ("mean", "var"):
        np.testing.assert_allclose(stats[0][key], stats[1][key], rtol=1e-12)


@pytest.mark.parametrize("kind", ["batch_norm", "layer_norm"])
def test_only_the_parameters_gradients_when_x_needs_none(kind):
    arrays, extra, _ = _blocked_inputs(kind, (6, 4), "float64")
    x = Tensor(arrays[0])  # no grad for x: backward skips the dx pass
    w, b = (Tensor(a, requires_grad=True) for a in arrays[1:])
    results = []
    for kernel in (COMPILED[kind], NUMPY[kind]):
        out = _call_for(kind, kernel, None)(x, w, b, *extra, {})
        cot = np.arange(out.numel(), dtype=np.float64).reshape(out.shape)
        results.append([g.data for g in tg.grad(out, [w, b], [cot])])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_non_contiguous_input_and_broadcast_cotangent():
    x = np.random.default_rng(10).normal(size=(5, 8)).T  # (8, 5), Fortran order
    for kernel in (COMPILED["batch_norm"], NUMPY["batch_norm"]):
        t = Tensor(x, requires_grad=True)
        (kernel.apply(t, Tensor(np.ones(5)), Tensor(np.zeros(5)), eps=1e-5) * 2.0).sum().backward()
        # an all-twos cotangent is projected out entirely: dx = 0
        np.testing.assert_allclose(t.grad.data, 0.0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(COMPILED))
def test_gradcheck_and_gradgradcheck_float64(kind):
    rng = np.random.default_rng(11)
    if kind == "cross_entropy":
        labels = rng.integers(0, 4, 5)
        inputs = [Tensor(rng.normal(size=(5, 4)), requires_grad=True)]

        def fn(z):
            return COMPILED[kind].apply(z, labels=labels, reduction="mean")
    else:
        shape = (5, 3, 2) if kind == "batch_norm" else (4, 6)
        params = (shape[1],) if kind == "batch_norm" else shape[1:]
        inputs = [Tensor(rng.normal(size=s), requires_grad=True) for s in (shape, params, params)]
        call = _call_for(kind, COMPILED[kind], None)

        def fn(x, w, b):
            return call(x, w, b, 1e-3, {})
    gradcheck(fn, inputs)
    gradgradcheck(fn, inputs, atol=1e-4)


def test_importing_the_package_does_not_import_numba():
    code = ("import sys, tinygrad_bn, tinygrad_bn.kernels.compiled as c; "
            "print('numba' in sys.modules, c.available())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


# ---------------------------------------------------------------- the SIMD helpers


@numba.njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = _simd.exp(x[i])


@pytest.mark.parametrize("dtype,low,high", [("float32", -87.3, 88.7), ("float64", -708.0, 709.7)])
def test_exp_is_within_its_stated_ulps(dtype, low, high):
    x = np.concatenate([np.linspace(low, high, 200_001), np.random.default_rng(12).uniform(-30, 5, 50_000)])
    x = x.astype(dtype)
    out = np.empty_like(x)
    _exp_all(x, out)
    truth = np.exp(x.astype(np.longdouble))
    ulps = np.abs(out - truth) / np.spacing(truth.astype(dtype)).astype(np.longdouble)
    assert float(ulps.max()) <= EXP_ULPS
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -1e4, 1e4], dtype)
    out = np.empty_like(specials)
    _exp_all(specials, out)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 0.0 and out[3] == 1.0
    assert out[4] == 0.0 and out[5] == np.inf


@numba.njit
def _max_of(a):
    return _simd.row_max(a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(values=st.lists(st.floats(-(2.0**100), 2.0**100, width=32), min_size=1, max_size=40))
def test_row_max_matches_numpy(dtype, values):
    a = np.array(values, dtype)
    assert _max_of(a) == a.max()


# ---------------------------------------------------------------- the disk cache


def _run_python(code: str, **env_vars: str) -> subprocess.CompletedProcess:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, **env_vars)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env=env, cwd=root)


def test_a_fresh_process_loads_compiled_code_from_the_disk_cache():
    from tinygrad_bn.kernels.compiled import batchnorm as compiled_bn

    x = Tensor(np.random.default_rng(0).normal(size=(8, 4)), requires_grad=True)
    w, b = (Tensor(np.ones(4), requires_grad=True) for _ in range(2))
    COMPILED["batch_norm"].apply(x, w, b, eps=1e-5).backward(np.ones((8, 4)))  # compiled (or loaded) here
    in_tree = os.access(os.path.dirname(compiled_bn.__file__), os.W_OK)
    if not in_tree and not os.environ.get("NUMBA_CACHE_DIR"):
        pytest.skip("the package directory is read-only here: numba caches in the user's directory")
    assert compiled_bn._forward_2d.stats.cache_path  # jit(cache=True) took effect
    code = (
        "import numpy as np\n"
        "from tinygrad_bn import Tensor\n"
        "from tinygrad_bn.kernels.compiled import batchnorm as m\n"
        "x = Tensor(np.random.default_rng(0).normal(size=(8, 4)), requires_grad=True)\n"
        "w, b = (Tensor(np.ones(4), requires_grad=True) for _ in range(2))\n"
        "m.NumbaBatchNormFused.apply(x, w, b, eps=1e-5).backward(np.ones((8, 4)))\n"
        "for f in (m._forward_2d, m._backward_2d):\n"
        "    print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0", "1", "0"]  # one hit each, nothing compiled


def test_kernels_compile_without_a_cache_when_no_cache_dir_is_writable():
    # NUMBA_CACHE_LOCATOR_CLASSES with only the IPython locator: outside IPython numba
    # finds no cache directory at all, as with a read-only install and no writable home.
    code = (
        "from tinygrad_bn.kernels import compiled\n"
        "from tinygrad_bn.kernels.compiled import _jit\n"
        "kernels = compiled.load()\n"
        "print(_jit.row_sum(__import__('numpy').arange(5.0)))\n"
    )
    result = _run_python(code, NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10.0"]
    assert result.stderr.count("run without a disk cache") == 1  # one warning, not one per kernel


# ---------------------------------------------------------------- without numba


def test_without_numba_the_kernel_tests_run_numpy_and_skip_numba_saying_why():
    # sys.modules["numba"] = None makes both `import numba` and find_spec("numba") fail,
    # as on a machine without it: the numba cases must skip (with the reason), not vanish.
    code = (
        "import sys\n"
        "sys.modules['numba'] = None\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', 'tests/test_kernels.py',\n"
        "                      '-k', 'records_one_kernel_node and (batch_norm or layer_norm)']))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 2 skipped" in result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED [2]")]
    assert len(skipped) == 1 and "numba is not installed: pip install 'tinygrad_bn[fast]'" in skipped[0]


def test_load_lists_exactly_the_registered_numba_backends():
    from tinygrad_bn.kernel_registry import KERNELS

    registered = {name: entry.implementation("numba")
                  for name, entry in KERNELS.items() if "numba" in entry.backends}
    assert registered == compiled.load()
    expected = {"batch_norm", "layer_norm", "cross_entropy", "conv2d", "conv1d", "max_pool2d", "avg_pool2d"}
    assert expected <= set(registered)
