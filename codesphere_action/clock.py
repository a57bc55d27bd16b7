"""The clock seam: every wait in the action goes through one of these.

Tests inject a fake clock, so waits are checked in microseconds of real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds``; return True when ``wake`` was set first."""


class SystemClock:
    """The real clock. Sleeps are interruptible: a signal handler that raises
    (our cancellation) ends them at once, and so does a set ``wake`` event."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return bool(wake and wake.is_set())
        if wake is None:
            time.sleep(seconds)
            return False
        return wake.wait(seconds)


def utc_stamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as UTC with milliseconds, ``2026-12-03T17:04:05.123Z``:
    the text sorts as the time does. The one wall-clock reading of a run (main
    takes it once, at the start; every other wait uses the monotonic clock)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
