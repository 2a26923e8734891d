"""Random number generators: a default one every random op uses, and `manual_seed`.

As in PyTorch, random layers, initialisers and factories draw from one default
generator unless given their own (`generator=`). A `Generator` wraps numpy's
PCG64 `np.random.Generator` (available as `.numpy`); ops also accept a numpy
Generator directly. Same seed, same numbers, on every platform numpy supports.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Generator:
    """A seedable random stream (PyTorch's torch.Generator, backed by numpy's PCG64)."""

    def __init__(self, seed: int | None = None):
        self.manual_seed(np.random.SeedSequence().entropy if seed is None else seed)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from `seed`; returns self, as PyTorch's does."""
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
        self._seed = int(seed)
        fresh = np.random.PCG64(self._seed)
        if hasattr(self, "numpy"):  # reseed in place: modules holding self.numpy follow the new seed
            self.numpy.bit_generator.state = fresh.state
        else:
            self.numpy = np.random.Generator(fresh)
        return self

    def initial_seed(self) -> int:
        """The seed the stream started from."""
        return self._seed

    def get_state(self) -> dict[str, Any]:
        """The stream's position (a dict numpy can restore)."""
        return self.numpy.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a position returned by get_state()."""
        self.numpy.bit_generator.state = state

    def __repr__(self) -> str:
        return f"Generator(initial_seed={self._seed})"


_default = Generator(0)  # seeded, so a program that never seeds still repeats itself


def default_generator() -> Generator:
    """The generator random ops use when not given one."""
    return _default


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (PyTorch's torch.manual_seed); returns it."""
    return _default.manual_seed(seed)


def initial_seed() -> int:
    """The default generator's seed."""
    return _default.initial_seed()


def numpy_generator(generator: Any = None, op: str = "random") -> np.random.Generator:
    """The numpy Generator behind `generator`: ours, numpy's, a seed (int), or None (the default)."""
    if generator is None:
        return _default.numpy
    if isinstance(generator, Generator):
        return generator.numpy
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{op}: generator must be a tinygrad_bn.Generator, a numpy Generator, a seed "
                    f"or None, got {type(generator).__name__}")
