"""Hypothesis profiles: the ones tinygrad_bn.testing ships to users (see tinygrad_bn/testing/profiles.py).

default   tinygrad_bn-fast: 15 examples, so the whole suite runs in a few minutes on 2 cores
ci        tinygrad_bn-ci: the same, derandomized (same examples every run), picked when CI=true
thorough  tinygrad_bn-thorough: 400 examples: TINYGRAD_BN_HYPOTHESIS_PROFILE=thorough pytest
"""

import os
import sys

# Our matmuls are small (at most a few hundred wide): one BLAS thread is faster
# than two that spin against each other and against pytest on a 2-core machine.
# It must be set before numpy loads its BLAS.
if "numpy" not in sys.modules:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

from tinygrad_bn.testing import load_profile  # noqa: E402 - after the BLAS setting above

_PROFILES = {"default": "tinygrad_bn-fast", "ci": "tinygrad_bn-ci", "thorough": "tinygrad_bn-thorough"}
_profile = os.environ.get("TINYGRAD_BN_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() == "true" else "default"
)
load_profile(_PROFILES.get(_profile, _profile))
