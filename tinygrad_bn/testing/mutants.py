"""Mutants: realistic wrong versions of every registered kernel, which the checks must catch.

Each mutant is one mistake a person deriving or writing the backward by hand
makes, written as a subclass of the real kernel (or, for running statistics,
of the real layer) that differs from it in that one place. A check that lets
a mutant through is a check you cannot trust:

    from tinygrad_bn.testing.mutants import MUTANTS, check_mutant
    for mutant in MUTANTS:
        verdict = check_mutant(mutant)      # the fixed protocol of testing.kernels
        assert verdict.caught, mutant.id

`tinygrad-bn check --mutants` prints which check caught which mutant. Importing
this module registers nothing: a mutant replaces its kernel in the registry only
inside `with mutant.installed():` (one thread at a time).

The backward formulas the mutants get wrong, per normalised group of n values,
with xhat = (x - mean) r, r = 1/sqrt(var + eps) and the incoming gradient g:

    BatchNorm   dx = gamma r (g - mean(g) - xhat mean(g xhat))      dgamma = sum(g xhat), dbeta = sum(g)
    LayerNorm   dx = r (d - mean(d) - xhat mean(d xhat)), d = g gamma
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.autograd import Context, Function, is_grad_enabled
from tinygrad_bn.kernel_registry import KERNELS, register_kernel
from tinygrad_bn.kernels.batchnorm import BatchNormFused
from tinygrad_bn.kernels.cross_entropy import CrossEntropyFused
from tinygrad_bn.kernels.layernorm import LayerNormFused
from tinygrad_bn.kernels.linear import LinearFused
from tinygrad_bn.tensor import Tensor
from tinygrad_bn.testing import conv_mutants as cm
from tinygrad_bn.testing.kernels import CHECKS, CaseResult, kernel_cases, run_cases

# Where a mutant's bug is confined, when it is: the checks must catch it there and only there.
FAST, DIFFERENTIABLE, FLOAT32, FOUR_D = "fast path", "differentiable path", "float32", "4-D"


@dataclass(frozen=True)
class Mutant:
    """A wrong kernel (or fused layer): what it gets wrong, and the code that gets it wrong."""

    kernel: str  # the registered kernel it replaces
    name: str
    mistake: str  # the mistake, as its author would have written it
    function: type[Function] | None = None  # replaces the kernel's Function in the registry
    layer: Callable[[type, int], Any] | None = None  # (layer class, features) -> the fused layer
    only: str | None = None  # FAST, DIFFERENTIABLE, FLOAT32 or FOUR_D: where the bug is confined

    @property
    def id(self) -> str:
        return f"{self.kernel}/{self.name}"

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Run the block with this mutant in place of the real kernel (the registry restored after).

        Every entry that runs the same Function is replaced (instance_norm runs group_norm's),
        on every backend: the mutant is numpy code.
        """
        real = KERNELS[self.kernel].kernel
        replaced = [e for e in KERNELS.values() if e.kernel is real] if self.function is not None else []
        for entry in replaced:
            register_kernel(dataclasses.replace(entry, kernel=self.function, backends={}), replace=True)
        try:
            yield
        finally:
            for entry in replaced:
                register_kernel(entry, replace=True)


@dataclass
class MutantVerdict:
    """What the protocol's checks said about one mutant."""

    mutant: Mutant
    results: list[CaseResult] = field(default_factory=list)

    def caught_by(self, check: str) -> list[str]:
        """'case: finding' for every case where `check` failed."""
        return [f"{r.case}: {finding}" for r in self.results for finding in r.findings(check)]

    @property
    def caught(self) -> bool:
        return any(self.caught_by(check) for check in CHECKS)


def check_mutant(mutant: Mutant, numerical: bool = True) -> MutantVerdict:
    """Run the fixed protocol of testing.kernels (default settings) on one mutant."""
    with mutant.installed():
        cases = kernel_cases(mutant.kernel, fused_layer=mutant.layer)
        return MutantVerdict(mutant, run_cases(cases, "numpy", numerical=numerical))


# ---------------------------------------------------------------- BatchNorm


@dataclass
class _Parts:
    """A norm node's backward ingredients, as arrays (fast path) or as Tensors (differentiable path)."""

    g: Any  # the incoming gradient
    r: Any  # 1 / sqrt(var + eps), broadcastable against x
    xhat: Any
    weight: Any  # gamma, broadcastable against x
    axes: tuple[int, ...]  # the axes one statistic covers
    n: int  # values per statistic

    def mean(self, a: Any) -> Any:
        return a.sum(axis=self.axes, keepdims=True) * (1.0 / self.n)


def _bn_parts(ctx: Context, g: Tensor, count: int | None = None) -> _Parts:
    x, weight, inv_std = ctx.saved_tensors
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    n = ctx.layout[0] * ctx.layout[2] if count is None else count
    if is_grad_enabled():  # rebuilt from x with Tensor ops, as the kernel's differentiable path does
        centred = x - x.sum(axis=axes, keepdims=True) * (1.0 / n)
        r = ((centred * centred).sum(axis=axes, keepdims=True) * (1.0 / n) + ctx.eps) ** -0.5
        return _Parts(g, r, centred * r, weight.reshape(*shape), axes, n)
    r = inv_std.data.reshape(shape)
    centre = ctx.k.reshape(shape) + ctx.shift.reshape(shape)  # the kernel's mean, k + shift
    xhat = ((x.data - centre) * r).astype(x.dtype)
    return _Parts(g.data, r, xhat, weight.data.reshape(shape), axes, n)


def _bn_dx(p: _Parts) -> Any:
    """The right dx, for mutants whose mistake is elsewhere."""
    return p.weight * p.r * (p.g - p.mean(p.g) - p.xhat * p.mean(p.g * p.xhat))


class BNDxMissingMeanTerm(BatchNormFused):
    """dx = gamma r (g - xhat mean(g xhat)): forgot that the mean depends on x."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        p = _bn_parts(ctx, g)
        return p.weight * p.r * (p.g - p.xhat * p.mean(p.g * p.xhat)), dgamma, dbeta


class BNDxMissingXhatTerm(BatchNormFused):
    """dx = gamma r (g - mean(g)): forgot that the variance depends on x."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        p = _bn_parts(ctx, g)
        return p.weight * p.r * (p.g - p.mean(p.g)), dgamma, dbeta


class BNGammaMissingFromDx(BatchNormFused):
    """dx = r (g - mean(g) - xhat mean(g xhat)): dropped gamma, as if d(y)/d(xhat) were 1."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        p = _bn_parts(ctx, g)
        return p.r * (p.g - p.mean(p.g) - p.xhat * p.mean(p.g * p.xhat)), dgamma, dbeta


class BNDgammaWithoutInvStd(BatchNormFused):
    """dgamma = sum(g (x - mean)): multiplied by the centred input instead of xhat."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, _, dbeta = BatchNormFused.backward(ctx, g)
        p = _bn_parts(ctx, g)
        return dx, (p.g * p.xhat / p.r).sum(axis=p.axes), dbeta


class BNDbetaChannelsLast(BatchNormFused):
    """dbeta = g.reshape(-1, C).sum(0): summed as if channels were the last axis (right only for 2-D)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, dgamma, _ = BatchNormFused.backward(ctx, g)
        grad = g if is_grad_enabled() else g.data
        return dx, dgamma, grad.reshape(-1, dgamma.shape[0]).sum(axis=0)


def _channel_variance(x: np.ndarray) -> np.ndarray:
    """The biased batch variance per channel, in float64."""
    axes = (0,) + tuple(range(2, x.ndim))
    return np.var(x.astype(np.float64), axis=axes)


def _with_inv_std(ctx: Context, x: Tensor, bias: Tensor, eps: float, out: np.ndarray,
                  inv_std: np.ndarray) -> np.ndarray:
    """The forward redone with another inverse standard deviation (for mistakes made in forward)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    right = 1.0 / np.sqrt(_channel_variance(x.data) + eps)
    b = bias.data.reshape(shape)
    out = ((out - b) * (inv_std / right).reshape(shape) + b).astype(out.dtype)
    saved = ctx.saved_tensors  # nothing is saved when no graph is recorded
    if saved:
        ctx.save_for_backward(*saved[:2], inv_std.astype(x.dtype))
    return out


class BNEpsOutsideSqrt(BatchNormFused):
    """r = 1 / (sqrt(var) + eps) in forward (and so in the fast backward): eps outside the square root."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float,
                stats: dict | None = None) -> np.ndarray:
        out = BatchNormFused.forward(ctx, x, weight, bias, eps, stats)
        return _with_inv_std(ctx, x, bias, eps, out, 1.0 / (np.sqrt(_channel_variance(x.data)) + eps))


class BNNormalisesWithUnbiasedVar(BatchNormFused):
    """Normalises with the unbiased variance (N-1), as Tensor.var() returns by default: N expected."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float,
                stats: dict | None = None) -> np.ndarray:
        out = BatchNormFused.forward(ctx, x, weight, bias, eps, stats)
        n = x.data.size // x.data.shape[1]
        unbiased = _channel_variance(x.data) * n / (n - 1)
        return _with_inv_std(ctx, x, bias, eps, out, 1.0 / np.sqrt(unbiased + eps))


class BNStatsVarUnbiased(BatchNormFused):
    """Reports the unbiased variance for the running statistics, which the layer unbiases again."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float,
                stats: dict | None = None) -> np.ndarray:
        out = BatchNormFused.forward(ctx, x, weight, bias, eps, stats)
        if stats is not None:
            stats["var"] = stats["var"] * (stats["count"] / (stats["count"] - 1))
        return out


class BNFastPathXhatTermOverNMinus1(BatchNormFused):
    """Fast path only: dx's xhat term divides by N-1 (sum(g xhat) / (n - 1)); the Tensor-op path is right."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        if is_grad_enabled():
            return dx, dgamma, dbeta
        p = _bn_parts(ctx, g)
        projection = (p.g * p.xhat).sum(axis=p.axes, keepdims=True) / (p.n - 1)
        return p.weight * p.r * (p.g - p.mean(p.g) - p.xhat * projection), dgamma, dbeta


class BNDifferentiablePathUnbiasedVar(BatchNormFused):
    """Differentiable path only: recomputes r with x.var(), unbiased by default, instead of the biased one."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        if not is_grad_enabled():
            return BatchNormFused.backward(ctx, g)
        p = _bn_parts(ctx, g)
        x = ctx.saved_tensors[0]
        centred = x - p.mean(x)
        p.r = (centred.var(dim=p.axes, keepdim=True) + ctx.eps) ** -0.5
        p.xhat = centred * p.r
        return _bn_dx(p), (p.g * p.xhat).sum(axis=p.axes), p.g.sum(axis=p.axes)


class BNCountForgetsLastAxis(BatchNormFused):
    """The values per channel counted as N * H, forgetting W (right for 2-D and 3-D input, wrong for 4-D)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, dgamma, dbeta = BatchNormFused.backward(ctx, g)
        x = ctx.saved_tensors[0]
        if x.ndim != 4:
            return dx, dgamma, dbeta
        p = _bn_parts(ctx, g)
        p.n = x.shape[0] * x.shape[2]
        return _bn_dx(p), dgamma, dbeta


class BNFloat32OnePassVariance(BatchNormFused):
    """float32 only: the variance in one pass, mean(x^2) - mean(x)^2, which cancels far from zero."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor, eps: float,
                stats: dict | None = None) -> np.ndarray:
        out = BatchNormFused.forward(ctx, x, weight, bias, eps, stats)
        if x.dtype != np.float32:
            return out
        axes = (0,) + tuple(range(2, x.ndim))
        var = np.maximum(np.mean(x.data * x.data, axis=axes) - np.mean(x.data, axis=axes) ** 2, 0)
        inv_std = (1.0 / np.sqrt(var + np.float32(eps))).astype(np.float32)
        return _with_inv_std(ctx, x, bias, eps, out, inv_std)


class _BatchNormLayer:
    """Mixin base of hand-written fused BatchNorm layers (the running-statistics mutants)."""

    def _axes(self, x: Tensor) -> tuple[int, ...]:
        return (0,) + tuple(range(2, x.ndim))


class _RunningVarBiased(_BatchNormLayer):
    def forward(self, x: Tensor) -> Tensor:
        self.num_batches_tracked.data += 1
        out = F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        m, axes = self.momentum, self._axes(x)
        self.running_mean.data = (1 - m) * self.running_mean.data + m * x.data.mean(axis=axes)
        self.running_var.data = (1 - m) * self.running_var.data + m * x.data.var(axis=axes)  # ddof=0: N
        return out


class _MomentumInverted(_BatchNormLayer):
    def forward(self, x: Tensor) -> Tensor:
        self.num_batches_tracked.data += 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=True,
                            momentum=1 - self.momentum, eps=self.eps)


@functools.cache
def _layer_class(mixin: type, base: type) -> type:
    return type(f"{mixin.__name__.strip('_')}{base.__name__}", (mixin, base), {})


def _layer(mixin: type) -> Callable[[type, int], Any]:
    """(layer class, features) -> a float64 fused layer whose forward is the mixin's."""
    return lambda base, features: _layer_class(mixin, base)(features, dtype=np.float64)


# ---------------------------------------------------------------- LayerNorm


def _ln_parts(ctx: Context, g: Tensor) -> _Parts:
    x, weight, xhat, inv_std = ctx.saved_tensors
    axes = tuple(range(x.ndim - ctx.k, x.ndim))
    if is_grad_enabled():
        centred = x - x.sum(axis=axes, keepdims=True) * (1.0 / ctx.m)
        r = ((centred * centred).sum(axis=axes, keepdims=True) * (1.0 / ctx.m) + ctx.eps) ** -0.5
        return _Parts(g, r, centred * r, weight, axes, ctx.m)
    r = inv_std.data.reshape(x.shape[: x.ndim - ctx.k] + (1,) * ctx.k)
    return _Parts(g.data, r, xhat.data.reshape(x.shape), weight.data, axes, ctx.m)


def _over_rows(ctx: Context, a: Any) -> Any:
    """Sum over the leading (batch) axes: the reduction of dgamma and dbeta."""
    lead = tuple(range(a.ndim - ctx.k))
    return a.sum(axis=lead) if lead else a


class LNDxMissingMeanTerm(LayerNormFused):
    """dx = r (d - xhat mean(d xhat)): forgot that the mean depends on x."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = LayerNormFused.backward(ctx, g)
        p = _ln_parts(ctx, g)
        d = p.g * p.weight
        return p.r * (d - p.xhat * p.mean(d * p.xhat)), dgamma, dbeta


class LNDxMissingXhatTerm(LayerNormFused):
    """dx = r (d - mean(d)): forgot that the variance depends on x."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = LayerNormFused.backward(ctx, g)
        p = _ln_parts(ctx, g)
        d = p.g * p.weight
        return p.r * (d - p.mean(d)), dgamma, dbeta


class LNGammaOutsideProjection(LayerNormFused):
    """dx = gamma r (g - mean(g) - xhat mean(g xhat)): BatchNorm's formula (gamma constant per group)."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, dgamma, dbeta = LayerNormFused.backward(ctx, g)
        p = _ln_parts(ctx, g)
        return p.weight * p.r * (p.g - p.mean(p.g) - p.xhat * p.mean(p.g * p.xhat)), dgamma, dbeta


class LNDbetaMeanOverRows(LayerNormFused):
    """dbeta = mean of g over the rows instead of the sum."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, dgamma, _ = LayerNormFused.backward(ctx, g)
        rows = int(np.prod(g.shape[: g.ndim - ctx.k], dtype=np.int64))
        return dx, dgamma, _over_rows(ctx, g if is_grad_enabled() else g.data) * (1.0 / rows)


class LNFastPathMeanOverBatch(LayerNormFused):
    """Fast path only: mean(d) taken over the batch axis (axis=0) instead of per row."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        dx, dgamma, dbeta = LayerNormFused.backward(ctx, g)
        if is_grad_enabled():
            return dx, dgamma, dbeta
        p = _ln_parts(ctx, g)
        d = p.g * p.weight
        return p.r * (d - d.mean(axis=0, keepdims=True) - p.xhat * p.mean(d * p.xhat)), dgamma, dbeta


class LNDifferentiablePathUnbiasedVar(LayerNormFused):
    """Differentiable path only: recomputes r with x.var(), unbiased by default, instead of the biased one."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        if not is_grad_enabled():
            return LayerNormFused.backward(ctx, g)
        p = _ln_parts(ctx, g)
        x = ctx.saved_tensors[0]
        centred = x - p.mean(x)
        p.r = (centred.var(dim=p.axes, keepdim=True) + ctx.eps) ** -0.5
        p.xhat = centred * p.r
        d = p.g * p.weight
        dx = p.r * (d - p.mean(d) - p.xhat * p.mean(d * p.xhat))
        return dx, _over_rows(ctx, p.g * p.xhat), _over_rows(ctx, p.g)


# ---------------------------------------------------------------- Linear


def _linear_grads(ctx: Context, g: Tensor) -> tuple[Any, Any, Any, Any]:
    """(rows of g, x, weight, the real gradients as a list) on the path backward is running."""
    grads = list(LinearFused.backward(ctx, g))
    x, weight = ctx.saved_tensors
    if is_grad_enabled():
        return g.reshape(-1, weight.shape[0]), x, weight, grads
    return g.data.reshape(-1, weight.shape[0]), x.data, weight.data, grads


class LinearDweightMisflattened(LinearFused):
    """dW = G.T @ x.reshape(in, -1).T: the input's leading axes flattened in the wrong order."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        rows, x, weight, grads = _linear_grads(ctx, g)
        grads[1] = rows.T @ x.reshape(weight.shape[1], -1).T
        return tuple(grads)


class LinearDbiasMean(LinearFused):
    """db = mean of G over the rows instead of the sum."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        rows, _, _, grads = _linear_grads(ctx, g)
        grads[2] = rows.sum(axis=0) * (1.0 / rows.shape[0])
        return tuple(grads)


class LinearFastPathDbiasOffByOne(LinearFused):
    """Fast path only: db sums rows[:-1], an off-by-one in the row range."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        rows, _, _, grads = _linear_grads(ctx, g)
        if not is_grad_enabled():
            grads[2] = rows[:-1].sum(axis=0)
        return tuple(grads)


class LinearDifferentiablePathDetachedWeight(LinearFused):
    """Differentiable path only: dx = g @ weight.detach() (to save memory): no second derivative in W."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> tuple:
        _, _, weight, grads = _linear_grads(ctx, g)
        if is_grad_enabled():
            grads[0] = g @ weight.detach()
        return tuple(grads)


# ---------------------------------------------------------------- cross-entropy


def _ce_parts(ctx: Context, g: Tensor) -> tuple[Any, np.ndarray, Any, int]:
    """(probabilities, one-hot labels, the per-row scale of the gradient, N) on the running path."""
    logits, probs = ctx.saved_tensors
    n = logits.shape[0]
    onehot = np.zeros(probs.shape, probs.dtype)
    onehot[np.arange(n), ctx.labels] = 1.0
    scale = g.reshape(n, 1) if ctx.reduction == "none" else g * (1.0 / n) if ctx.reduction == "mean" else g
    if is_grad_enabled():
        e = (logits - logits.detach().amax(dim=1, keepdim=True)).exp()
        return e / e.sum(axis=1, keepdims=True), onehot, scale, n
    return probs.data, onehot, scale.data, n


class CEGradientSignFlipped(CrossEntropyFused):
    """dz = onehot - p: the sign of the softmax-cross-entropy gradient flipped."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        p, onehot, scale, _ = _ce_parts(ctx, g)
        return (onehot - p) * scale


class CEMeanWithout1OverN(CrossEntropyFused):
    """For reduction 'mean' the gradient is not divided by N."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        p, onehot, _, _ = _ce_parts(ctx, g)
        return (p - onehot) * (g if is_grad_enabled() else g.data)


class CESoftmaxOverBatchAxis(CrossEntropyFused):
    """The backward's softmax normalised over the batch axis (axis=0) instead of the classes."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        _, onehot, scale, _ = _ce_parts(ctx, g)
        logits = ctx.saved_tensors[0]
        if is_grad_enabled():
            e = (logits - logits.detach().amax(dim=0, keepdim=True)).exp()
        else:
            e = np.exp(logits.data - logits.data.max(axis=0))
        return (e / e.sum(axis=0, keepdims=True) - onehot) * scale


class CEFastPathIgnoresIncomingGradient(CrossEntropyFused):
    """Fast path only: (p - onehot) / N, right for loss.backward() but wrong for any other incoming g."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        p, onehot, scale, n = _ce_parts(ctx, g)
        if is_grad_enabled():
            return (p - onehot) * scale
        return (p - onehot) * (1.0 / n)


class CEDifferentiablePathSoftmaxOverAll(CrossEntropyFused):
    """Differentiable path only: the recomputed softmax divides by the sum over every row at once."""

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Any:
        p, onehot, scale, _ = _ce_parts(ctx, g)
        if is_grad_enabled():
            logits = ctx.saved_tensors[0]
            e = (logits - logits.detach().amax()).exp()
            p = e / e.sum()
        return (p - onehot) * scale


# ---------------------------------------------------------------- the catalogue

MUTANTS: tuple[Mutant, ...] = (
    Mutant("batch_norm", "dx_missing_mean_term", "dx = gamma r (g - xhat mean(g xhat))", BNDxMissingMeanTerm),
    Mutant("batch_norm", "dx_missing_xhat_term", "dx = gamma r (g - mean(g))", BNDxMissingXhatTerm),
    Mutant("batch_norm", "gamma_missing_from_dx", "dx = r (g - mean(g) - xhat mean(g xhat))",
           BNGammaMissingFromDx),
    Mutant("batch_norm", "eps_outside_sqrt", "r = 1 / (sqrt(var) + eps)", BNEpsOutsideSqrt),
    Mutant("batch_norm", "dgamma_without_inv_std", "dgamma = sum(g (x - mean))", BNDgammaWithoutInvStd),
    Mutant("batch_norm", "dbeta_over_wrong_axes", "dbeta = g.reshape(-1, C).sum(0) (channels-last)",
           BNDbetaChannelsLast),
    Mutant("batch_norm", "normalises_with_n_minus_1", "var = sum((x - mean)^2) / (N - 1) in forward",
           BNNormalisesWithUnbiasedVar),
    Mutant("batch_norm", "running_var_with_n", "running_var updated with var(x) (ddof=0, N)",
           layer=_layer(_RunningVarBiased)),
    Mutant("batch_norm", "running_var_n_minus_1_twice", "the kernel reports the unbiased variance, "
           "which the layer unbiases again", BNStatsVarUnbiased),
    Mutant("batch_norm", "momentum_inverted", "momentum=1 - momentum: running = m running + (1 - m) batch",
           layer=_layer(_MomentumInverted)),
    Mutant("batch_norm", "fast_path_only", "fast path: dx's xhat term divides by N - 1",
           BNFastPathXhatTermOverNMinus1, only=FAST),
    Mutant("batch_norm", "differentiable_path_only", "differentiable path: r from x.var() (unbiased)",
           BNDifferentiablePathUnbiasedVar, only=DIFFERENTIABLE),
    Mutant("batch_norm", "4d_only", "values per channel counted as N*H, forgetting W",
           BNCountForgetsLastAxis, only=FOUR_D),
    Mutant("batch_norm", "float32_only", "float32: var = mean(x^2) - mean(x)^2 (one pass)",
           BNFloat32OnePassVariance, only=FLOAT32),
    Mutant("layer_norm", "dx_missing_mean_term", "dx = r (d - xhat mean(d xhat))", LNDxMissingMeanTerm),
    Mutant("layer_norm", "dx_missing_xhat_term", "dx = r (d - mean(d))", LNDxMissingXhatTerm),
    Mutant("layer_norm", "gamma_outside_projection", "dx = gamma r (g - mean(g) - xhat mean(g xhat))",
           LNGammaOutsideProjection),
    Mutant("layer_norm", "dbeta_mean_over_rows", "dbeta = mean of g over rows", LNDbetaMeanOverRows),
    Mutant("layer_norm", "fast_path_only", "fast path: mean(d) over axis 0 (the batch)",
           LNFastPathMeanOverBatch, only=FAST),
    Mutant("layer_norm", "differentiable_path_only", "differentiable path: r from x.var() (unbiased)",
           LNDifferentiablePathUnbiasedVar, only=DIFFERENTIABLE),
    Mutant("linear", "dweight_misflattened", "dW = G.T @ x.reshape(in, -1).T", LinearDweightMisflattened),
    Mutant("linear", "dbias_mean", "db = mean of G over rows", LinearDbiasMean),
    Mutant("linear", "fast_path_only", "fast path: db = G[:-1].sum(0) (off by one)",
           LinearFastPathDbiasOffByOne, only=FAST),
    Mutant("linear", "differentiable_path_only", "differentiable path: dx = g @ weight.detach()",
           LinearDifferentiablePathDetachedWeight, only=DIFFERENTIABLE),
    Mutant("cross_entropy", "gradient_sign_flipped", "dz = onehot - softmax(z)", CEGradientSignFlipped),
    Mutant("cross_entropy", "mean_without_1_over_n", "dz = softmax(z) - onehot, not divided by N",
           CEMeanWithout1OverN),
    Mutant("cross_entropy", "softmax_over_batch_axis", "backward's softmax over axis 0",
           CESoftmaxOverBatchAxis),
    Mutant("cross_entropy", "fast_path_only", "fast path: dz = (p - onehot) / N, ignoring the incoming g",
           CEFastPathIgnoresIncomingGradient, only=FAST),
    Mutant("cross_entropy", "differentiable_path_only", "differentiable path: softmax over all rows at once",
           CEDifferentiablePathSoftmaxOverAll, only=DIFFERENTIABLE),
    Mutant("conv2d", "col2im_assigns", "fast path: col2im writes acc[...] = slab, not +=",
           cm.ConvCol2imAssigns, only=FAST),
    Mutant("conv2d", "dbias_mean", "db = mean of G_y over (n, p, q)", cm.ConvDbiasMean),
    Mutant("conv2d", "dweight_first_image_only", "fast path: dW = G_y X^T over image 0's columns",
           cm.ConvDweightFirstImageOnly, only=FAST),
    Mutant("conv2d", "differentiable_path_only", "differentiable path: dx from weight.detach()",
           cm.ConvDifferentiablePathDetachedWeight, only=DIFFERENTIABLE),
    Mutant("conv1d", "col2im_assigns", "fast path: col2im writes acc[...] = slab, not +=",
           cm.ConvCol2imAssigns, only=FAST),
    Mutant("conv1d", "dbias_mean", "db = mean of G_y over (n, l)", cm.ConvDbiasMean),
    Mutant("unfold", "adjoint_assigns", "fast path: the adjoint assigns overlapping windows, not adds",
           cm.UnfoldBackwardAssigns, only=FAST),
    Mutant("fold", "adjoint_flipped_kernel", "the adjoint reads kernel elements in reverse order",
           cm.FoldBackwardFlippedKernel),
    Mutant("max_pool2d", "gradient_to_first_element", "each window's gradient to its first element",
           cm.MaxPoolFirstElement),
    Mutant("max_pool2d", "overlaps_assigned", "fast path: dx[index] = g, so shared maxima get one share",
           cm.MaxPoolOverlapsAssigned, only=FAST),
    Mutant("avg_pool2d", "fast_path_without_divisor", "fast path: g copied without 1 / divisor",
           cm.AvgPoolFastPathWithoutDivisor, only=FAST),
    Mutant("avg_pool2d", "differentiable_path_only", "differentiable path: g copied without 1 / divisor",
           cm.AvgPoolDifferentiablePathWithoutDivisor, only=DIFFERENTIABLE),
    Mutant("adaptive_avg_pool2d", "without_average", "fast path: g copied to the window, not averaged",
           cm.AdaptivePoolWithoutAverage, only=FAST),
    Mutant("group_norm", "stats_per_channel", "fast path: dx's means per channel, not per group",
           cm.GroupNormStatsPerChannel, only=FAST),
    Mutant("group_norm", "dx_missing_xhat_term", "fast path: dx = r (d - mean_g(d))",
           cm.GroupNormDxMissingXhatTerm, only=FAST),
    Mutant("group_norm", "differentiable_path_only", "differentiable path: r from the unbiased variance",
           cm.GroupNormDifferentiablePathUnbiasedVar, only=DIFFERENTIABLE),
    Mutant("instance_norm", "dgamma_without_inv_std", "fast path: dgamma = sum(g (x - mean))",
           cm.InstanceNormDgammaWithoutInvStd, only=FAST),
)


def scaled_gradient(kernel: str, index: int, path: str, factor: float = 1.001) -> Mutant:
    """A mutant whose gradient of input `index` on `path` (FAST or DIFFERENTIABLE) is `factor` x too large.

    Not a realistic mistake but a measure of sensitivity: the checks must catch a
    0.1% error in any one gradient of any one path.
    """
    real = KERNELS[kernel].kernel

    def backward(ctx: Context, g: Tensor) -> Any:
        grads = real.backward(ctx, g)
        single = not isinstance(grads, tuple | list)
        grads = [grads] if single else list(grads)
        if (path == DIFFERENTIABLE) == is_grad_enabled() and grads[index] is not None:
            grads[index] = grads[index] * factor
        return grads[0] if single else tuple(grads)

    cls = type(f"{real.__name__}Scaled{index}", (real,), {"backward": staticmethod(backward)})
    return Mutant(kernel, f"grad_{index}_x{factor:g}_{path.split()[0]}",
                  f"{path}: gradient of input {index} times {factor:g}", cls, only=path)


# ---------------------------------------------------------------- reporting


def check_catalogue(mutants: tuple[Mutant, ...] = MUTANTS) -> list[MutantVerdict]:
    """check_mutant on every mutant, in catalogue order."""
    return [check_mutant(m) for m in mutants]


def _first(findings: list[str]) -> str:
    if not findings:
        return "-"
    return findings[0] + (f" (+{len(findings) - 1})" if len(findings) > 1 else "")


def verdict_table(verdicts: list[MutantVerdict], markdown: bool = False) -> str:
    """One row per mutant: its mistake and, per check, the first case and row that caught it."""
    head = ["mutant", "mistake", *CHECKS]
    rows = [[v.mutant.id, v.mutant.mistake, *(_first(v.caught_by(c)) for c in CHECKS)] for v in verdicts]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows])
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows])
