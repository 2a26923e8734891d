"""Basic layers: Linear, Dropout, Flatten, Unflatten, Embedding, Sequential.

Random initialisation and dropout masks draw from `rng` when given (a
tinygrad_bn.Generator, a numpy Generator or an int seed), else from the
default generator (tinygrad_bn.manual_seed), as PyTorch's layers do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from tinygrad_bn import functional as F
from tinygrad_bn.kernel_registry import check_impl
from tinygrad_bn.nn.module import Module, Parameter
from tinygrad_bn.random import numpy_generator
from tinygrad_bn.tensor import Tensor, get_default_dtype


def _positive_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class Linear(Module):
    """y = x @ weight.T + bias, weight shaped (out_features, in_features).

    Initialised with PyTorch's distribution: weight kaiming_uniform_(a=sqrt(5)),
    i.e. uniform in +-1/sqrt(in_features), and bias uniform in the same range.
    impl="composed" records transpose/matmul/add (what graph drawings show);
    impl="fused" one LinearFused node, faster for small layers.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, rng: Any = None, impl: str = "composed"):
        super().__init__()
        check_impl("Linear", impl)
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        self.impl = impl
        dtype = get_default_dtype() if dtype is None else dtype
        gen = numpy_generator(rng, "Linear")
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(gen.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(gen.uniform(-bound, bound, out_features).astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, impl={self.impl!r}")


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default every dim after the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(self.dim, self.unflattened_size)


class Dropout(Module):
    """Inverted dropout with drop probability p, active only in training mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng: Any = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace
        self.rng = numpy_generator(rng, "Dropout")  # a numpy Generator: the Trainer checkpoints it

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, generator=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table: integer indices -> rows of `weight` (num_embeddings, embedding_dim), init N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 device: Any = None, dtype: Any = None, *, rng: Any = None):
        super().__init__()
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        dtype = get_default_dtype() if dtype is None else dtype
        weight = numpy_generator(rng, "Embedding").standard_normal((num_embeddings, embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0.0  # PyTorch starts the padding row at zero
        self.weight = Parameter(weight.astype(dtype))

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Sequential(Module):
    """Modules applied in order; children are named '0', '1', ..."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
