"""Testing helpers for layers and kernels (loads hypothesis).

    check_fused.py   check_fused: a fused kernel against its composed twin
    kernels.py       the generic checks every registered kernel gets
    strategies.py    hypothesis strategies of arrays, shapes and kernel arguments
"""

from tinygrad_bn.testing.check_fused import FUSED_ATOL, FUSED_RTOL, FusedCheckReport, check_fused

__all__ = ["FUSED_ATOL", "FUSED_RTOL", "FusedCheckReport", "check_fused"]
