"""Hypothesis profiles.

default   fast enough that the whole suite runs in a few minutes on 2 cores
ci        the default, derandomized (same examples every run), picked when CI=true
thorough  many more examples: TINYGRAD_BN_HYPOTHESIS_PROFILE=thorough pytest
"""

import os
import sys

# Our matmuls are small (at most a few hundred wide): one BLAS thread is faster
# than two that spin against each other and against pytest on a 2-core machine.
# It must be set before numpy loads its BLAS.
if "numpy" not in sys.modules:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("default", max_examples=15, **_common)
settings.register_profile("ci", max_examples=15, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=400, **_common)

_profile = os.environ.get("TINYGRAD_BN_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() == "true" else "default"
)
settings.load_profile(_profile)
