"""What a flow works with (``Context``) and what it produces (``Result``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clock import Clock
from .config import Config
from .errors import Cancelled, Skipped, WaitTimeout
from .github import Reporter, format_seconds
from .plan import Plan
from .signals import CancelGuard
from .timeline import Timeline
from .timings import DEFAULT_TUNING, Deadline, Tuning

if TYPE_CHECKING:  # the client pulls in requests; imported lazily by main
    from .api.codesphere import Codesphere
    from .waiting import Waiter

# Every output the action declares, so each is written on every run.
OUTPUT_NAMES = (
    "status",
    "workspace-id",
    "workspace-url",
    "deployed-commit",
    "previous-workspace-id",
    "domain-url",
)


@dataclass
class Phase:
    name: str
    seconds: float
    outcome: str  # "success", "failed", "timed out", "skipped", or a short note
    detail: str = ""


@dataclass
class Result:
    """The run's outcome; ``main`` turns it into outputs, a summary and the exit code."""

    flow: str
    status: str = "failed"
    outputs: dict[str, str] = field(default_factory=lambda: dict.fromkeys(OUTPUT_NAMES, ""))
    phases: list[Phase] = field(default_factory=list)
    workspace_name: str = ""
    message: str = ""  # the error annotation's text, when the run failed
    # Sentences saying what state things were left in, for failures after
    # something changed ("the domain now points at 42; ...").
    aftermath: list[str] = field(default_factory=list)
    # The success notice, when the flow says it better than "Released to <url>".
    notice: str = ""
    # The summary's headline on success, when the flow says it better ("Staged").
    done: str = ""
    # For the summary: the health checks that passed ("200 from <url>"), and the
    # commit the run meant to release when another one was deployed.
    health: list[str] = field(default_factory=list)
    commit_expected: str = ""
    # A superseded run: the newer release that serves the path ("run 4711.1, ...").
    superseded_by: str = ""
    # What a dry run would do, or what prune did: a section of the summary.
    plan: Plan | None = None
    # The bake (bake-time): its checks over time and its decision.
    bake: Timeline | None = None

    def set(self, name: str, value: str | int | None) -> None:
        if name not in self.outputs:
            raise KeyError(f"undeclared output {name}")
        self.outputs[name] = "" if value is None else str(value)


@dataclass
class Context:
    config: Config
    client: Codesphere
    reporter: Reporter
    clock: Clock
    waiter: Waiter
    guard: CancelGuard
    result: Result
    tuning: Tuning = DEFAULT_TUNING
    # Learnt during the run: the log streams here end before their step (after
    # the last line, or cut by a proxy), so their ends cue no polls (cues.py).
    streams_end_early: bool = False
    # ... a log could not be read (said once, as a warning: steps/logs.py); the log
    # route answered with an error, so show-logs: always reads no other step's log.
    log_unread_said: bool = False
    log_route_refused: bool = False

    def deadline(self, seconds: float) -> Deadline:
        """The deadline of a phase that owns ``seconds`` from now (cut by the cancel
        budget once the runner signals)."""
        return Deadline.after(seconds, self.clock, self.guard.budget)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """A log group for one phase; its duration goes to the log and the summary."""
        phase = Phase(name, 0.0, "success")
        start = self.clock.now()
        with self.reporter.group(name):
            try:
                yield phase
            except BaseException as exc:
                if phase.outcome == "success":
                    phase.outcome = (
                        "cancelled"
                        if isinstance(exc, Cancelled)
                        else exc.status
                        if isinstance(exc, Skipped)  # superseded, planned: no failure
                        else "timed out"
                        if isinstance(exc, WaitTimeout)  # as the status output says
                        else "failed"
                    )
                raise
            finally:
                phase.seconds = self.clock.now() - start
                self.result.phases.append(phase)
                self.reporter.info(f"{name}: {phase.outcome} in {format_seconds(phase.seconds)}")
