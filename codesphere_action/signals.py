"""Cancellation: the runner sends SIGINT, then SIGTERM 7.5 s later, then kills.

The first signal raises ``Cancelled`` wherever the main thread is (a sleep, a
socket read), so waiting stops at once. Inside ``shield()`` (the domain
switch) it is held back until the block ends: a switch is never cut in half.

Every signal also sets the cancel budget: the moment by which the run must
have cleaned up, so that it can still write its outputs before the runner's
next step (SIGINT: 7.5 s to SIGTERM; SIGTERM: 2.5 s to the kill), minus
``RESERVE`` for the reporting. The client cuts every request to it
(``deadline``), so a cleanup retries for as long as that allows and no longer.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .errors import Cancelled
from .timings import GRACE, RESERVE


class CancelGuard:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.cancelling = False
        self.pending: str | None = None
        self.deadline: float | None = None  # the cancel budget, once a signal came
        self._shield_depth = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in GRACE:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced (for callers that go on)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signalled(signal.Signals(signum))

    def signalled(self, sig: signal.Signals) -> None:
        """What a signal does: tighten the budget; raise Cancelled unless held back."""
        budget = self.now() + GRACE[sig] - RESERVE
        self.deadline = budget if self.deadline is None else min(self.deadline, budget)
        if self.cancelling:
            return
        if self._shield_depth:
            self.pending = sig.name
            return
        self.cancelling = True
        raise Cancelled(sig.name)

    def quiet(self) -> None:
        """From now on signals only tighten the budget (the run is reporting its end)."""
        self.cancelling = True

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within, after ``quiet``: a first signal raises Cancelled again, so a
        call in flight (the GitHub calls at the run's end) is cut at once
        rather than left to its read timeout. When a signal came already, its
        budget cuts every call, and nothing changes."""
        if self.deadline is not None:
            yield
            return
        self.cancelling = False
        try:
            yield
        finally:
            self.cancelling = True

    def budget(self) -> float | None:
        """The instant the cancel budget ends, None while no signal came."""
        return self.deadline

    def remaining(self) -> float | None:
        """Seconds left in the cancel budget, None while no signal came."""
        return None if self.deadline is None else max(0.0, self.deadline - self.now())

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
