"""Waiting for Codesphere: the polling schedule and "is this stage done / failed".

Three rules make a wait right and quick:
1. Recognise the run we started. Right after a start the status may still
   show the previous run for a while, or reset at once to ``waiting`` with no
   ``startedAt``; ``startedAt`` and ``finishedAt`` are optional; entries come
   in any order and replica ids may be pod names that change per run.
   ``StageTracker`` compares each entry with the ``Baseline`` (the status
   before the start, taken once no earlier run is in progress, every entry as
   last seen across the reads before the start: a landscape deploy hides the
   stopped run's entries for a moment, then shows them again): an
   entry is ours when its key is new, when its ``startedAt`` differs, or, with
   no ``startedAt``, when anything about it changed other than a previous run
   coming to its end. What no status can tell (a run with no timestamps that
   came and went between two polls, its status as before) is bounded by the
   caller: no sign of the run for a while is an error, never a success.
2. Poll on a schedule that starts well under a second and grows to a cap
   (``PollPolicy``), and poll at once when a cue says something ended.
3. Every wait has a deadline; a status call that keeps failing counts against
   it (the official CLI loops forever there).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from .clock import Clock
from .errors import ActionError, ApiError, TransportError, WaitTimeout
from .github import format_seconds
from .models import StageEntry, StageState
from .timings import QUICK, STAGE, Deadline, PollPolicy

IDE_SERVER = "codesphere-ide"
TERMINAL = frozenset({"success", "failure", "aborted"})
FAILED = frozenset({"failure", "aborted"})
T = TypeVar("T")
Key = tuple[str, str]


def is_active(entry: StageEntry) -> bool:
    """A run in progress: running, or waiting after it started (run servers coming
    up: a ``startedAt`` without ``finishedAt``, or, without timestamps, steps that
    have begun). A state the spec does not list counts as waiting: not finished,
    in progress once it shows that it began."""
    if entry.state == "running":
        return True
    if entry.state not in (StageState.WAITING, StageState.UNLISTED):
        return False
    if entry.started_at is not None:
        return entry.finished_at is None
    return any(step.state in ("running", "success") for step in entry.steps)


def relevant(stage: str, entries: list[StageEntry]) -> list[StageEntry]:
    """prepare and test run on the IDE server; run is about the customer servers."""
    if stage == "run":
        return [e for e in entries if e.server != IDE_SERVER]
    return [e for e in entries if e.server == IDE_SERVER]


@dataclass(frozen=True)
class Baseline:
    """The stage's status right before we started it: what "the previous run" looks like."""

    entries: dict[Key, StageEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, *reads: list[StageEntry]) -> Baseline:
        """The previous run from every read of the status before the start, oldest
        first: a later read of an entry wins, and an entry a later read left out
        is kept as last seen. A landscape deploy lists no customer server for a
        moment, then the stopped run's entries come back: they are the previous
        run's, not ours."""
        return cls({e.key: e for entries in reads for e in entries})


@dataclass(frozen=True)
class Progress:
    state: Literal["pending", "running", "success", "failed"]
    detail: str
    failed_server: str = ""
    failed_step: int | None = None
    failed_replica: str = ""  # the failed entry's replica id
    # Whether that id names the entry alone (a pod name), as the replica log route
    # needs; index ids ("0", "1") are every server's.
    replica_unique: bool = False
    seen: bool = False  # some entry of our run has shown up
    servers: bool = True  # run: the status lists at least one customer server


class StageTracker:
    """Follows one stage run from its start to its end, across polls."""

    def __init__(self, stage: str, baseline: Baseline) -> None:
        self.stage = stage
        self.baseline = baseline
        self.ours: set[Key] = set()

    def is_ours(self, entry: StageEntry) -> bool:
        """Whether ``entry`` belongs to the run we started (once ours, always ours)."""
        if entry.key in self.ours:
            return True
        before = self.baseline.entries.get(entry.key)
        if before is None:
            mine = True  # a server or replica (pod) that was not there before the start
        elif entry.started_at is not None:
            mine = entry.started_at != before.started_at
        else:
            # No startedAt to go by: any change counts, except the previous run
            # ending: it was in progress at the baseline and is over now, or it
            # turned "aborted" (a stop or our start replacing it takes effect late).
            ended = entry.state == "aborted" or (is_active(before) and entry.state in TERMINAL)
            mine = entry.fingerprint != before.fingerprint and not ended
        if mine:
            self.ours.add(entry.key)
        return mine

    def evaluate(self, entries: list[StageEntry]) -> Progress:
        ours = [e for e in entries if self.is_ours(e)]
        # The official CLI fails on failure/aborted of any entry: so do we, but
        # only on entries of our run (an old "aborted" is the previous run's).
        for entry in ours:
            if entry.state in FAILED:
                return self._failed(entry, entries)
        mine = relevant(self.stage, entries)
        mine_ours = [e for e in mine if e.key in self.ours]
        seen = bool(ours)
        if self.stage == "run":
            return self._run(mine, mine_ours, seen, entries)
        if not mine:
            return Progress("pending", "no codesphere-ide entry reported yet", seen=seen)
        if not mine_ours:
            return Progress("pending", "waiting for the new run to show", seen=seen)
        if all(e.state == "success" for e in mine_ours):
            return Progress("success", "done", seen=True)
        return Progress("running", step_detail(mine_ours[0]), seen=True)

    def _run(
        self,
        mine: list[StageEntry],
        mine_ours: list[StageEntry],
        seen: bool,
        entries: list[StageEntry],
    ) -> Progress:
        if not mine:
            return Progress("pending", "no server started yet", seen=seen, servers=False)
        # Every server must show our run on all its replicas: when the replica ids
        # are the same as before (indexes), every entry of the server must be
        # ours; when our run's replicas have new ids (pod names), the entries
        # left over from the previous run's replicas do not count.
        waiting_for = sorted(
            server
            for server in {e.server for e in mine}
            if not self._all_replicas_ours(server, mine, mine_ours)
        )
        if waiting_for:
            return Progress("pending", f"waiting for {', '.join(waiting_for)} to start", seen=seen)
        if all(e.state == "success" for e in mine_ours):
            exited = mine_ours[0]  # its last step's log says how it ended
            return Progress(
                "failed",
                "ended (its servers exited) instead of staying up",
                failed_server=exited.server,
                failed_step=len(exited.steps) - 1 if exited.steps else None,
                failed_replica=exited.replica,
                replica_unique=_unique_replica(exited, entries),
                seen=True,
            )
        up = sum(1 for e in mine_ours if e.state == "running")
        if up == len(mine_ours):
            return Progress("success", f"{up} of {up} server replicas running", seen=True)
        detail = f"{up} of {len(mine_ours)} server replicas running"
        unlisted = Counter(e.raw_state for e in mine_ours if e.state is StageState.UNLISTED)
        if unlisted:  # say what the others are, should it end in a timeout
            detail += "; " + ", ".join(f"{n} {state}" for state, n in sorted(unlisted.items()))
        return Progress("running", detail, seen=True)

    def _all_replicas_ours(
        self, server: str, mine: list[StageEntry], mine_ours: list[StageEntry]
    ) -> bool:
        ours = {e.key for e in mine_ours if e.server == server}
        if not ours:
            return False
        renamed = bool(ours - self.baseline.entries.keys())
        return renamed or all(e.key in ours for e in mine if e.server == server)

    def _failed(self, entry: StageEntry, entries: list[StageEntry]) -> Progress:
        step = first_failed_step(entry)
        verb = "failed" if entry.state == "failure" else "was aborted"
        where = f" at step {step + 1} of {len(entry.steps)}" if step is not None else ""
        server = entry.server
        if entry.server != IDE_SERVER and entry.replica:
            server += f" (replica {entry.replica})"
        return Progress(
            "failed",
            f"{verb}{where} on {server}",
            failed_server=entry.server,
            failed_step=step,
            failed_replica=entry.replica,
            replica_unique=_unique_replica(entry, entries),
            seen=True,
        )


def _unique_replica(entry: StageEntry, entries: list[StageEntry]) -> bool:
    """Whether no other entry has ``entry``'s replica id: the replica log route
    takes the id alone, so only a unique one names this replica."""
    return bool(entry.replica) and sum(1 for e in entries if e.replica == entry.replica) == 1


def first_failed_step(entry: StageEntry) -> int | None:
    """The failing step: the first in ``failure``, else the first ``aborted``."""
    for wanted in ("failure", "aborted"):
        for index, step in enumerate(entry.steps):
            if step.state == wanted:
                return index
    return None


def running_step(entry: StageEntry) -> int | None:
    """Index of the first step that has not finished, or None when all have."""
    for index, step in enumerate(entry.steps):
        if step.state in ("running", "waiting"):
            return index
    return None


def step_detail(entry: StageEntry) -> str:
    for index, step in enumerate(entry.steps):
        if step.state == "running":
            return f"step {index + 1} of {len(entry.steps)} running"
    return entry.state


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
        cued_policy: PollPolicy = STAGE,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.cued_policy = cued_policy
        self.rng = rng or random.Random()

    def poll(
        self,
        check: Callable[[Deadline], T | None],
        *,
        deadline: Deadline,
        what: str,
        cue: threading.Event | None = None,
        stats: WaitStats | None = None,
        last_state: Callable[[], str] = lambda: "",
        false_cue: Callable[[], bool] = lambda: False,
    ) -> T:
        """Call ``check(deadline)`` on the schedule until it returns a value; with a
        ``cue``, on the stage schedule, and at once whenever the cue is set. A poll
        a cue brought forward leaves the schedule where it was, unless
        ``false_cue()`` says the cue was wrong: then that poll takes its place in
        the schedule (so wrong cues never add polls).

        Raises WaitTimeout when the deadline passes first (also when the status
        calls kept failing until then); errors that are not transient propagate.
        """
        stats = stats if stats is not None else WaitStats()
        start = self.clock.now()
        last_error: ActionError | None = None
        policy = self.policy if cue is None else self.cued_policy
        nominal = policy.first
        delay = policy.stretch(nominal, self.rng)
        last_poll = float("-inf")
        while True:
            remaining = deadline.left()
            if remaining <= 0:
                break
            slept_from = self.clock.now()
            cued = self.clock.sleep(min(delay, remaining), cue) and cue is not None
            if cued and cue is not None:
                cue.clear()
                if getattr(cue, "at", float("inf")) < last_poll:
                    # Set before the last poll began: that poll saw it already.
                    delay = max(0.0, delay - (self.clock.now() - slept_from))
                    continue
            last_poll = self.clock.now()
            stats.polls += 1
            result, last_error = _attempt(check, deadline, last_error)
            stats.seconds = self.clock.now() - start
            if result is not None:
                return result
            if not cued or false_cue():
                # The schedule moves on by the time that passed, not by the polls made.
                nominal = policy.after(nominal, self.clock.now() - start)
                delay = policy.stretch(nominal, self.rng)
        state = last_state()
        message = f"{what} did not finish within {format_seconds(deadline.seconds)}"
        if state:
            message += f" (last state: {state})"
        if last_error is not None:
            message += f"; the last status request failed: {last_error}"
        raise WaitTimeout(message)


def _attempt(
    check: Callable[[Deadline], T | None], deadline: Deadline, last_error: ActionError | None
) -> tuple[T | None, ActionError | None]:
    """One poll: its result, and the last transient error (a poll that failed
    this way may succeed next time; any other error propagates). A poll that the
    wait's own end cut short (not sent, or its answer not awaited any longer) is
    no failure of the status request: the error before it stays the last."""
    try:
        return check(deadline), last_error
    except ActionError as exc:
        if not is_transient(exc):
            raise
        if isinstance(exc, TransportError) and exc.out_of_time:
            return None, last_error
        return None, exc
