"""Test doubles shared by the unit tests."""

from __future__ import annotations

import io
import threading

from codesphere_action.github import Reporter


class FakeClock:
    """A clock that never sleeps: ``sleep`` advances time and records the wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            self.sleeps.append(0.0)
            return True
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)
        return False


def capture_reporter(debug: bool = False) -> tuple[Reporter, io.StringIO]:
    stream = io.StringIO()
    return Reporter(stream, debug=debug), stream
