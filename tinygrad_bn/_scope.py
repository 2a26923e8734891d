"""Where an op ran: the nn.Module calls and functional composites around it, per thread.

Every recorded op keeps a copy of the current scope (`Context.scope`): a tuple,
outermost first, of the Modules whose `__call__` is running and of `Composite`
markers, one per call of a composite such as `cross_entropy` or `softmax`. Graph
drawings box the ops by it. Each thread has its own stack, as in PyTorch, so two
threads running models never see each other's scopes.

Entering a scope costs one tuple concatenation and a thread-local attribute
write (about 0.3 us); the composites it wraps each record several numpy ops of
several microseconds each.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Composite:
    """One call of a functional composite, as it appears in an op's scope.

    `parent` is the scope the call was made in, so a drawing can tell which call
    of an enclosing module the composite's ops belong to.
    """

    __slots__ = ("name", "parent")

    def __init__(self, name: str, parent: tuple = ()):
        self.name = name
        self.parent = parent

    def __repr__(self) -> str:
        return f"<composite {self.name}>"


class _State(threading.local):
    # A class attribute, so every new thread starts with an empty scope.
    scope: tuple = ()


_state = _State()


def current() -> tuple:
    """This thread's scope: Modules and Composite markers, outermost first."""
    return _state.scope


@contextlib.contextmanager
def module_scope(module: Any) -> Iterator[None]:
    """Record `module` as the innermost scope of the ops run inside the block."""
    state = _state
    previous = state.scope
    state.scope = previous + (module,)
    try:
        yield
    finally:
        state.scope = previous


def composite(name: str) -> Callable[[F], F]:
    """Decorator: the ops the function records carry a fresh Composite(name) in their scope."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _state
            previous = state.scope
            # A fresh marker per call, so two calls of softmax are two boxes.
            state.scope = previous + (Composite(name, previous),)
            try:
                return fn(*args, **kwargs)
            finally:
                state.scope = previous

        return wrapper  # type: ignore[return-value]

    return decorate
