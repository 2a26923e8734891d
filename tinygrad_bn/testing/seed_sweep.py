"""Run property tests under many hypothesis seeds and count what passed: green for every seed, not one.

    python -m tinygrad_bn.testing.seed_sweep --seeds 20                 # tests/ files that use hypothesis
    python -m tinygrad_bn.testing.seed_sweep --seeds 5 tests/test_kernels.py

Each seed is one pytest run in a subprocess with `--hypothesis-seed=S` and the
randomized tinygrad_bn-fast profile (CI's derandomized profile ignores seeds).
Prints one line per seed and the totals; the exit status is 1 if any test failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

_COUNT = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def property_test_files(tests: Path) -> list[str]:
    """The test files under `tests` that import hypothesis, tinygrad_bn's strategies or check_fused."""
    return sorted(str(p) for p in tests.glob("test_*.py")
                  if re.search(r"^from hypothesis|^import hypothesis|testing import (strategies|check_fused)",
                               p.read_text(), re.M))


def run_seed(seed: int, files: list[str]) -> dict[str, int]:
    """pytest on `files` with one hypothesis seed: {"passed": n, "failed": n, ...}."""
    env = dict(os.environ, TINYGRAD_BN_HYPOTHESIS_PROFILE="default", CI="")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--hypothesis-seed={seed}",
           *files]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for number, kind in _COUNT.findall(summary):
        counts["error" if kind.startswith("error") else kind] += int(number)
    if counts["failed"] or counts["error"]:
        failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
        counts["lines"] = failed  # type: ignore[assignment]
    return counts


def main(argv: list[str] | None = None) -> int:
    """Sweep the seeds; print per-seed counts and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="test files (default: the property-test files in tests/)")
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    args = parser.parse_args(argv)
    files = args.files or property_test_files(Path("tests"))
    if not files:
        parser.error("no test files given and none found under tests/")
    print(f"{len(files)} files: {' '.join(Path(f).name for f in files)}")
    totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for seed in range(args.first, args.first + args.seeds):
        start = time.perf_counter()
        counts = run_seed(seed, files)
        for key in totals:
            totals[key] += counts[key]
        print(f"seed {seed:>4}: {counts['passed']:>5} passed {counts['failed']:>3} failed "
              f"{counts['error']:>3} errors {counts['skipped']:>3} skipped  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        for line in counts.get("lines", []):
            print(f"           {line}")
    print(f"{args.seeds} seeds: {totals['passed']} passed, {totals['failed']} failed, "
          f"{totals['error']} errors, {totals['skipped']} skipped")
    return 1 if totals["failed"] or totals["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
