"""Weight initialisation with torch.nn.init's names, fan rules and gains.

Every function fills a Tensor in place (no graph is recorded; its version is
bumped) and returns it. Random ones draw from `generator` (a
np.random.Generator) or, without one, from `_default_generator()`. Values are
drawn in float64 and rounded to the tensor's dtype, so one seed gives the same
numbers (to rounding) in float32 and float64.

Fans, for a weight of shape (out, in, *kernel): fan_in = in * prod(kernel),
fan_out = out * prod(kernel). Xavier/Glorot (Glorot & Bengio 2010) keeps the
variance of activations and gradients: std = gain * sqrt(2 / (fan_in + fan_out)).
Kaiming/He (He et al. 2015) keeps it through ReLUs: std = gain / sqrt(fan), with
fan = fan_in ('fan_in', forward pass) or fan_out ('fan_out', backward pass). A
uniform distribution in [-sqrt(3) std, sqrt(3) std] has standard deviation std.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from tinygrad_bn.tensor import Tensor

_GENERATOR: list[np.random.Generator] = []  # created on first use: importing changes nothing


def _default_generator() -> np.random.Generator:
    """The Generator the init functions draw from when they are not given one."""
    if not _GENERATOR:
        _GENERATOR.append(np.random.default_rng())
    return _GENERATOR[0]


# ---------------------------------------------------------------- fans and gains

_GAIN_ONE = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance through `nonlinearity` (PyTorch's table).

    1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope = param, default 0.01), 3/4 for selu.
    """
    if nonlinearity in _GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            param = 0.01
        if isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + param**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{[*_GAIN_ONE, 'tanh', 'relu', 'leaky_relu', 'selu']}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out_features, in_features, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ---------------------------------------------------------------- filling


def _fill(name: str, tensor: Tensor, draw: Callable[[tuple[int, ...]], np.ndarray]) -> Tensor:
    """Write draw(shape) into tensor's array in place, as a change to the tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float tensor, got dtype {tensor.dtype}")
    tensor.data[...] = draw(tensor.shape)
    tensor._bump_version()  # a graph that saved the old values now refuses backward
    return tensor


def _rng(generator: np.random.Generator | None, name: str) -> np.random.Generator:
    if generator is None:
        return _default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"{name}: generator must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {type(generator).__name__}")
    return generator


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: np.random.Generator | None = None) -> Tensor:
    """Fill with values drawn uniformly from [a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    rng = _rng(generator, "uniform_")
    return _fill("uniform_", tensor, lambda shape: rng.uniform(a, b, shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: np.random.Generator | None = None) -> Tensor:
    """Fill with values drawn from the normal distribution N(mean, std^2)."""
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    rng = _rng(generator, "normal_")
    return _fill("normal_", tensor, lambda shape: rng.normal(mean, std, shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    return _fill("constant_", tensor, lambda shape: val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return _fill("zeros_", tensor, lambda shape: 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill("ones_", tensor, lambda shape: 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: np.random.Generator | None = None) -> Tensor:
    """Uniform in +-gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: np.random.Generator | None = None) -> Tensor:
    """Normal with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(name: str, tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    """gain / sqrt(fan), or None (with PyTorch's warning) for a tensor with no elements."""
    if 0 in tensor.shape:
        warnings.warn(f"{name}: initializing a zero-element tensor is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> Tensor:
    """Uniform in +-sqrt(3) * gain / sqrt(fan) (He et al. 2015); `a` is leaky_relu's negative slope."""
    std = _kaiming_std("kaiming_uniform_", tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> Tensor:
    """Normal with std = gain / sqrt(fan) (He et al. 2015); `a` is leaky_relu's negative slope."""
    std = _kaiming_std("kaiming_normal_", tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


# ---------------------------------------------------------------- the truncated normal

_MIN_ACCEPTANCE = 1e-3  # below this, rejection sampling would need over 1000 draws per value
_BATCH_LIMIT = 1 << 22  # candidates drawn per round, to bound memory


def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(x: float) -> float:
    return (1 + math.erf(x / math.sqrt(2))) / 2


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: np.random.Generator | None = None) -> Tensor:
    """Fill with N(mean, std^2) values conditioned on lying in [a, b] (rejection sampling).

    Candidates come from N(mean, std^2), or uniformly from [a, b] when that
    wastes fewer (a window narrow next to std, or in the tail); either way the
    accepted values have exactly the truncated distribution.
    """
    if not std > 0 or not a < b:
        raise ValueError(f"trunc_normal_: expected std > 0 and a < b, got std={std}, a={a}, b={b}")
    rng = _rng(generator, "trunc_normal_")
    lo, hi = (a - mean) / std, (b - mean) / std  # the window in standard units
    mass = _normal_cdf(hi) - _normal_cdf(lo)
    # A uniform candidate x is kept with probability phi(x) / phi_max, phi_max at the point nearest 0.
    uniform_acceptance = mass / ((hi - lo) * _phi(min(max(0.0, lo), hi)))
    acceptance = max(mass, uniform_acceptance)
    if acceptance < _MIN_ACCEPTANCE:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] is so far in the tail of N({mean}, {std}^2) "
                         f"that sampling would keep under {_MIN_ACCEPTANCE:.0e} of the draws")
    phi_max = _phi(min(max(0.0, lo), hi))

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        n, kept = math.prod(shape), []
        while n > 0:
            count = min(_BATCH_LIMIT, int(n / acceptance * 1.2) + 16)
            if mass >= uniform_acceptance:
                x = rng.standard_normal(count)
                x = x[(x >= lo) & (x <= hi)]
            else:
                x = rng.uniform(lo, hi, count)
                x = x[rng.random(count) * phi_max <= np.exp(-x * x / 2) / math.sqrt(2 * math.pi)]
            kept.append(x[:n])
            n -= len(kept[-1])
        x = np.concatenate(kept) if kept else np.empty(0)
        return np.clip(mean + std * x, a, b).reshape(shape)  # the clip only undoes rounding

    return _fill("trunc_normal_", tensor, draw)
