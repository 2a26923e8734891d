"""Hypothesis profiles.

default   fast enough that the whole suite runs in a few minutes on 2 cores
ci        the default, derandomized (same examples every run), picked when CI=true
thorough  many more examples: TINYGRAD_BN_HYPOTHESIS_PROFILE=thorough pytest
"""

import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("default", max_examples=15, **_common)
settings.register_profile("ci", max_examples=15, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=400, **_common)

_profile = os.environ.get("TINYGRAD_BN_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() == "true" else "default"
)
settings.load_profile(_profile)
