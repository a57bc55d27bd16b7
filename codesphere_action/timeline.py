"""The bake as a timeline: its rounds of checks over time and its decision, as
the job summary shows them (``steps/bake.py`` fills it).

Standard library only. Bounded whatever bake-time is: consecutive rounds that
passed are one row, and at most ``MAX_ROWS`` rows are shown (the first and
the last ones, the ones between counted in a row of their own), each cell
cut to ``MAX_CELL`` characters (after the reporter redacted it), so a six-hour
bake's summary stays a screenful.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .github import count, format_seconds

MAX_ROWS = 24
HEAD_ROWS = 8  # of MAX_ROWS, from the start; the rest from the end
MAX_CELL = 120


@dataclass(frozen=True)
class Round:
    """One round of the bake's checks, ``at`` seconds into the bake: the dev
    domain's answer ("" when accepted, else the answer in a few words), and of
    ``domain_total`` answers through the domain (0: not checked there) how many
    were accepted, with the first that was not; ``note`` also says when the map
    could not be read or the end of bake-time cut checks off."""

    at: float
    dev: str = ""
    domain_passed: int = 0
    domain_total: int = 0
    domain_failed: str = ""
    note: str = ""  # what the rule made of it ("a blip", "failed"), what was not read
    dev_checked: bool = True  # False: the end of bake-time cut the dev domain's check off

    @property
    def dev_failures(self) -> int:
        return 1 if self.dev else 0

    @property
    def domain_failures(self) -> int:
        return self.domain_total - self.domain_passed

    @property
    def failures(self) -> int:
        return self.dev_failures + self.domain_failures


@dataclass
class Timeline:
    """``seconds``: bake-time; ``interval``: between rounds; ``through``: what
    the checks through the domain GET ("" when they are off, ``why_not``
    says why)."""

    seconds: float
    interval: float
    started: float = 0.0  # the bake's start, on the run's clock
    through: str = ""
    why_not: str = ""
    rounds: list[Round] = field(default_factory=list)
    decision: str = ""

    def add(self, round_: Round) -> None:
        self.rounds.append(round_)

    def decide(self, decision: str) -> None:
        self.decision = decision

    def line(self) -> str:
        """The last round, for the log."""
        last = self.rounds[-1]
        checked = "ok" if last.dev_checked else "not checked"
        dev = f"not accepted: {last.dev}" if last.dev else checked
        through = (
            f"{last.domain_passed} of {last.domain_total} ok"
            + (f" ({last.domain_failed})" if last.domain_failed else "")
            if last.domain_total
            else "not checked"
        )
        note = f": {last.note}" if last.note else ""
        return f"  bake at {at_time(last.at)}: dev domain {dev}, domain {through}{note}"

    @property
    def failed_rounds(self) -> int:
        return sum(1 for r in self.rounds if r.failures)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(time, dev domain, through the domain, note): runs of rounds that
        passed merged into one row, bounded to ``MAX_ROWS``."""
        rows: list[tuple[str, str, str, str]] = []
        run: list[Round] = []
        for round_ in self.rounds:
            if not round_.failures and not round_.note:
                run.append(round_)
                continue
            if run:
                rows.append(self._passed(run))
                run = []
            rows.append(self._one(round_))
        if run:
            rows.append(self._passed(run))
        if len(rows) <= MAX_ROWS:
            return rows
        tail = MAX_ROWS - HEAD_ROWS - 1
        left_out = len(rows) - HEAD_ROWS - tail
        gap = ("…", f"{left_out} rows left out", "", "")
        return [*rows[:HEAD_ROWS], gap, *rows[-tail:]]

    def _passed(self, run: list[Round]) -> tuple[str, str, str, str]:
        first, last = run[0].at, run[-1].at
        when = at_time(first) if len(run) == 1 else f"{at_time(first)} to {at_time(last)}"
        domain = sum(r.domain_total for r in run)
        through = f"✅ {domain} of {domain}" if domain else self._off()
        return when, f"✅ {len(run)} of {len(run)}", through, ""

    def _one(self, round_: Round) -> tuple[str, str, str, str]:
        dev = f"❌ {round_.dev}" if round_.dev else "✅" if round_.dev_checked else "not checked"
        if not round_.domain_total:
            through = self._off()
        elif round_.domain_failures:
            through = f"❌ {round_.domain_passed} of {round_.domain_total}: {round_.domain_failed}"
        else:
            through = f"✅ {round_.domain_total} of {round_.domain_total}"
        return at_time(round_.at), dev, through, round_.note

    def _off(self) -> str:
        return f"not checked ({self.why_not})" if self.why_not else "not checked"

    def markdown(self, cell: Callable[[str], str], redact: Callable[[str], str] = str) -> list[str]:
        """The summary's section; ``cell`` escapes a table cell; ``redact``: the
        reporter's, applied before a cell is cut (an answer may echo a secret, and
        a cut must never leave part of one)."""

        def shown(text: str, limit: int = MAX_CELL) -> str:
            return cell(_cut(redact(text), limit))

        rounds = len(self.rounds)
        lines = [
            f"#### Bake: {format_seconds(self.seconds)}, a round every "
            f"{format_seconds(self.interval)}",
            "",
            f"{count(rounds, 'round')} of checks (times from the bake's start, m:ss), "
            f"{self.failed_rounds} with an answer that was not accepted. "
            f"Through the domain: {cell(redact(self.through)) or self._off()}.",
            "",
        ]
        rows = self.rows()
        if rows:
            lines += ["| Time | Dev domain | Through the domain | |", "|---|---|---|---|"]
            lines += ["| " + " | ".join(shown(c) for c in row) + " |" for row in rows]
            lines.append("")
        lines += [f"**Decision:** {shown(self.decision or 'none (the run ended first)', 600)}"]
        return [*lines, ""]


def at_time(seconds: float) -> str:
    """A moment of the bake, ``m:ss`` from its start (``0:00``, ``1:05``, ``62:30``)."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _cut(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
