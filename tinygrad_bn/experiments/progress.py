"""Progress of a sweep across all its workers: tasks done, running, failed, and the ETA.

On a terminal with tqdm installed, a bar on stderr (log lines are printed above
it); otherwise each log line starts with `[done/total]` and, once a task of
this run has finished, an ETA. With no log function nothing is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def wants_bar(log: Callable[[str], None] | None) -> bool:
    """A bar when something is logged, stderr is a terminal and tqdm is installed."""
    return log is not None and sys.stderr.isatty() and _tqdm() is not None


class Progress:
    """Counts of one sweep, shown as a tqdm bar or as prefixes of the log lines."""

    def __init__(self, total: int, skipped: int, log: Callable[[str], None] | None,
                 running: Callable[[], int], bar: bool | None = None) -> None:
        self.total, self.skipped, self.done, self.failed = total, skipped, skipped, 0
        self.log, self.running = log, running
        self.start = time.perf_counter()
        use_bar = wants_bar(log) if bar is None else bar and log is not None and _tqdm() is not None
        self.bar = _tqdm()(total=total, initial=skipped, unit="task", file=sys.stderr,
                           dynamic_ncols=True, leave=True) if use_bar else None
        self.refresh()

    def say(self, line: str) -> None:
        """A log line, with the counts in front when there is no bar."""
        if self.log is None:
            return
        if self.bar is not None:
            self.bar.write(line.strip(), file=sys.stderr)
        else:
            self.log(f"{self._counts()} {line.strip()}")

    def task_done(self, line: str | None) -> None:
        """One more task finished (with its log line)."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        if line:
            self.say(line)
        self.refresh()

    def task_failed(self, line: str, final: bool) -> None:
        """A task failed; `final` when it will not be retried."""
        self.failed += final
        self.say(line)
        self.refresh()

    def eta_seconds(self) -> float | None:
        """Seconds left at this run's rate so far, or None before its first task."""
        ran = self.done - self.skipped
        if ran <= 0:
            return None
        left = self.total - self.done - self.failed
        return (time.perf_counter() - self.start) / ran * left

    def _counts(self) -> str:
        width = len(str(self.total))
        text = f"[{self.done:>{width}}/{self.total}"
        eta = self.eta_seconds()
        if eta is not None and self.done < self.total:
            text += f", ETA {_clock(eta)}"
        return text + "]"

    def refresh(self) -> None:
        """Redraw the bar's counts (a no-op without a bar)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"running {self.running()}, failed {self.failed}")

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
