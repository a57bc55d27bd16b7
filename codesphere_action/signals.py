"""Cancellation: the runner sends SIGINT, then SIGTERM 7.5 s later, then kills.

The first signal raises ``Cancelled`` wherever the main thread is (a sleep, a
socket read), so waiting stops at once. Inside ``shield()`` (the domain
switch) it is held back until the block ends: a switch is never cut in half.
Once cancelling, later signals are ignored so the cleanup can finish.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .errors import Cancelled


class CancelGuard:
    def __init__(self) -> None:
        self.cancelling = False
        self.pending: str | None = None
        self._shield_depth = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced (for callers that go on)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.cancelling:
            return
        if self._shield_depth:
            self.pending = name
            return
        self.cancelling = True
        raise Cancelled(name)

    def quiet(self) -> None:
        """From now on signals change nothing (the run is reporting its end)."""
        self.cancelling = True

    @contextmanager
    def shield(self) -> Iterator[None]:
        self._shield_depth += 1
        try:
            yield
        finally:
            self._shield_depth -= 1
        if not self._shield_depth and self.pending and not self.cancelling:
            self.cancelling = True
            raise Cancelled(self.pending)
