"""Hypothesis settings for gradient checks: profiles users load in one line, and the runner the checks use.

    from tinygrad_bn.testing import load_profile
    load_profile()            # or settings.load_profile("tinygrad_bn") once tinygrad_bn.testing is imported

One example of a gradient check runs a layer forward and backward several times
(a numerical check: twice per input element), from a few ms to a second, so
hypothesis's default 200 ms deadline fails correct code at random, and its
health checks about slow or large data trip on arrays. The profiles turn those
off and differ only in how many examples they draw:

    tinygrad_bn             hypothesis's own default count (100 examples)
    tinygrad_bn-fast        15 examples: this repository's test suite by default
    tinygrad_bn-ci          tinygrad_bn-fast, derandomized (the same examples every run)
    tinygrad_bn-thorough    400 examples

check_fused, gradcheck and gradgradcheck given a strategy run under the loaded
profile with these relaxations added, so they pass under hypothesis's default
settings too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings

from tinygrad_bn.gradcheck import StateSnapshot, state_slots

# too_slow / data_too_large / large_base_example: array strategies draw a lot of data and
# a gradient check is slow by nature; filter_too_much: strategies keep values away from
# kinks (relu at 0) and ties (max) with filters.
GRADIENT_CHECK_HEALTH_CHECKS = (HealthCheck.too_slow, HealthCheck.filter_too_much,
                                HealthCheck.data_too_large, HealthCheck.large_base_example)

_RELAXED = dict(deadline=None, suppress_health_check=GRADIENT_CHECK_HEALTH_CHECKS)
PROFILES: dict[str, dict[str, Any]] = {
    "tinygrad_bn": dict(_RELAXED),
    "tinygrad_bn-fast": dict(_RELAXED, max_examples=15),
    "tinygrad_bn-ci": dict(_RELAXED, max_examples=15, derandomize=True, print_blob=True),
    "tinygrad_bn-thorough": dict(_RELAXED, max_examples=400),
}


def register_profiles() -> None:
    """Register PROFILES with hypothesis (loading none of them)."""
    for name, options in PROFILES.items():
        settings.register_profile(name, **options)


def load_profile(name: str = "tinygrad_bn") -> None:
    """Make profile `name` (one of PROFILES) hypothesis's default settings."""
    if name not in PROFILES:
        raise ValueError(f"load_profile: unknown profile {name!r}; known: {sorted(PROFILES)}")
    register_profiles()
    settings.load_profile(name)


def gradient_check_settings() -> settings:
    """The loaded profile with no deadline and the health checks gradient checks trip suppressed."""
    current = settings.default
    suppressed = tuple(dict.fromkeys((*current.suppress_health_check, *GRADIENT_CHECK_HEALTH_CHECKS)))
    return settings(current, deadline=None, suppress_health_check=suppressed)


def for_each_example(strategy: Any, check: Callable[[Any], Any], restore: Iterable[Any] = ()) -> list[Any]:
    """Run check(example) on every example hypothesis draws from `strategy`; the results, in order.

    `restore` names state (Modules, Tensors, arrays, dicts) put back before each
    example and at the end, so examples do not see each other's side effects.
    A failing example raises as a hypothesis test does, after shrinking.
    """
    snapshots = [StateSnapshot(state_slots(s)) for s in restore]
    results: list[Any] = []

    @gradient_check_settings()
    @given(strategy)
    def property_test(example: Any) -> None:
        for snapshot in snapshots:
            snapshot.restore()
        results.append(check(example))

    try:
        property_test()
    finally:
        for snapshot in snapshots:
            snapshot.restore()
    return results


register_profiles()  # names only: nothing is loaded until load_profile() or settings.load_profile()
