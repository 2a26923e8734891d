"""Testing helpers for layers and kernels (loads hypothesis).

    check_fused.py   check_fused: a fused kernel against its composed twin, on every path
    kernels.py       the checks every registered kernel gets, on every backend
    mutants.py       wrong kernels (realistic one-line mistakes) that those checks must catch
    profiles.py      hypothesis profiles for gradient checks: load_profile()
    seed_sweep.py    python -m tinygrad_bn.testing.seed_sweep: property tests under many seeds
    strategies.py    hypothesis strategies of arrays, shapes and kernel arguments
"""

from tinygrad_bn.testing.check_fused import (
    FLOAT32_FACTOR,
    FLOAT32_FLOOR_ULPS,
    FUSED_ATOL,
    FUSED_RTOL,
    FusedCheckReport,
    FusedRow,
    check_fused,
)
from tinygrad_bn.testing.profiles import PROFILES, gradient_check_settings, load_profile

__all__ = [
    "FLOAT32_FACTOR", "FLOAT32_FLOOR_ULPS", "FUSED_ATOL", "FUSED_RTOL", "PROFILES", "FusedCheckReport",
    "FusedRow", "check_fused", "gradient_check_settings", "load_profile",
]
