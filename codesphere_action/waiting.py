"""Waiting for Codesphere: the polling schedule and "is this stage done / failed".

Three rules make a wait right and quick:
1. Recognise the run we started. Right after a start request the status may
   still show the previous run (an old ``success``, or ``aborted`` after a
   stop). ``Baseline`` records each entry's ``startedAt`` before the start; an
   entry counts only once its ``startedAt`` differs, or once it was seen
   active after the start (for servers that report no ``startedAt``).
2. Poll on a schedule that starts well under a second and grows to a cap
   (``PollPolicy``), and poll at once when a cue says something ended.
3. Every wait has a deadline; a status call that keeps failing counts against
   it (the official CLI loops forever there).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .clock import Clock
from .errors import ActionError, ApiError, TransportError, WaitTimeout
from .github import format_seconds

IDE_SERVER = "codesphere-ide"
TERMINAL = frozenset({"success", "failure", "aborted"})
FAILED = frozenset({"failure", "aborted"})
T = TypeVar("T")


@dataclass(frozen=True)
class PollPolicy:
    """When to poll: ``first`` after the start, each wait ``factor`` times the one
    before, never more than ``cap``, each one jittered by +-``jitter`` (a fraction)
    so many runners never poll in lockstep, and never past the deadline."""

    first: float = 0.25
    factor: float = 1.5
    cap: float = 3.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.cap and self.factor >= 1 and 0 <= self.jitter < 1):
            raise ValueError(f"inconsistent poll policy: {self}")

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(self.cap, delay * self.factor)


# Waits with no signal of their end (a workspace starting, run servers coming
# up): poll soon and often at first, so a short wait is noticed within a
# fraction of a second, then settle at the cap.
QUICK = PollPolicy(first=0.1, factor=1.3, cap=3.0)
# Waits with a cue (the log stream of the running step ends when it ends): the
# cue ends the wait; polls are the safety net and bound the lag should the cue
# never come, so they can grow faster and cost fewer requests.
CUED = PollPolicy(first=0.25, factor=2.0, cap=3.0)

Key = tuple[str, str]


def _key(entry: dict[str, Any]) -> Key:
    return (str(entry.get("server", "")), str(entry.get("replica", "")))


@dataclass(frozen=True)
class Baseline:
    """The stage's status before we started it: what "the previous run" looks like."""

    started_at: dict[Key, str | None] = field(default_factory=dict)
    states: dict[Key, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: list[dict[str, Any]]) -> Baseline:
        return cls(
            {_key(e): e.get("startedAt") for e in entries},
            {_key(e): str(e.get("state", "")) for e in entries},
        )


@dataclass(frozen=True)
class Progress:
    state: Literal["pending", "running", "success", "failed"]
    detail: str
    failed_server: str = ""
    failed_step: int | None = None


def relevant(stage: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """prepare and test run on the IDE server; run is about the customer servers."""
    if stage == "run":
        return [e for e in entries if e.get("server") != IDE_SERVER]
    return [e for e in entries if e.get("server") == IDE_SERVER]


class StageTracker:
    """Follows one stage run from its start to its end, across polls."""

    def __init__(self, stage: str, baseline: Baseline) -> None:
        self.stage = stage
        self.baseline = baseline
        self.seen_active: set[Key] = set()

    def is_ours(self, entry: dict[str, Any]) -> bool:
        key = _key(entry)
        started = entry.get("startedAt")
        if started and started != self.baseline.started_at.get(key):
            return True
        if key in self.seen_active:
            return True
        state = str(entry.get("state", ""))
        # No startedAt to go by: an entry that turns active after the start is ours.
        if state in ("running", "waiting") and self.baseline.states.get(key) in TERMINAL:
            self.seen_active.add(key)
            return True
        return False

    def evaluate(self, entries: list[dict[str, Any]]) -> Progress:
        mine = relevant(self.stage, entries)
        if not mine:
            return Progress("pending", "no servers reported yet")
        ours = [e for e in mine if self.is_ours(e)]
        for entry in ours:
            if entry.get("state") in FAILED:
                step = first_failed_step(entry)
                steps = len(entry.get("steps") or [])
                verb = "failed" if entry.get("state") == "failure" else "was aborted"
                where = f" at step {step + 1} of {steps}" if step is not None else ""
                return Progress(
                    "failed",
                    f"{verb}{where} on {entry.get('server')}",
                    failed_server=str(entry.get("server", "")),
                    failed_step=step,
                )
        if len(ours) < len(mine):
            return Progress("pending", "waiting for the new run to start")
        states = [str(e.get("state")) for e in ours]
        if self.stage == "run":
            if all(s in ("running", "success") for s in states):
                return Progress("success", "servers running")
            return Progress("running", f"{states.count('running')} of {len(states)} servers up")
        if all(s == "success" for s in states):
            return Progress("success", "done")
        return Progress("running", step_detail(ours[0]))


def first_failed_step(entry: dict[str, Any]) -> int | None:
    for index, step in enumerate(entry.get("steps") or []):
        if step.get("state") == "failure":
            return index
    return None


def step_detail(entry: dict[str, Any]) -> str:
    steps = entry.get("steps") or []
    for index, step in enumerate(steps):
        if step.get("state") == "running":
            return f"step {index + 1} of {len(steps)} running"
    return str(entry.get("state", "running"))


def is_transient(error: ActionError) -> bool:
    """A poll that failed this way may succeed next time."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, ApiError) and error.status_code in (429, 500, 502, 503, 504)


@dataclass
class WaitStats:
    polls: int = 0
    seconds: float = 0.0


class Waiter:
    """Runs polls on a ``PollPolicy`` against a deadline, with an optional cue."""

    def __init__(
        self,
        clock: Clock,
        policy: PollPolicy = QUICK,
        cued_policy: PollPolicy = CUED,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.cued_policy = cued_policy
        self.rng = rng or random.Random()

    def poll(
        self,
        check: Callable[[float], T | None],
        *,
        timeout: float,
        what: str,
        cue: threading.Event | None = None,
        stats: WaitStats | None = None,
        last_state: Callable[[], str] = lambda: "",
    ) -> T:
        """Call ``check(deadline)`` on the schedule until it returns a value; with a
        ``cue``, on the relaxed schedule, and at once whenever the cue is set.

        Raises WaitTimeout when the deadline passes first (also when the status
        calls kept failing until then); errors that are not transient propagate.
        """
        stats = stats if stats is not None else WaitStats()
        start = self.clock.now()
        deadline = start + timeout
        last_error: ActionError | None = None
        policy = self.policy if cue is None else self.cued_policy
        for delay in policy.delays(self.rng):
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                break
            if self.clock.sleep(min(delay, remaining), cue) and cue is not None:
                cue.clear()
            stats.polls += 1
            try:
                result = check(deadline)
            except ActionError as exc:
                if not is_transient(exc):
                    raise
                last_error = exc
                continue
            finally:
                stats.seconds = self.clock.now() - start
            if result is not None:
                return result
        state = last_state()
        message = f"{what} did not finish within {format_seconds(timeout)}"
        if state:
            message += f" (last state: {state})"
        if last_error is not None:
            message += f"; the last status request failed: {last_error}"
        raise WaitTimeout(message)
