"""A step's log: its last lines, read within a few seconds whatever the stream
does (ends, stays open, breaks), and shown in a collapsed group: the failing
step's always, and with ``show-logs: always`` every step's of every stage that
ran (``show_stage_logs``); of a stage that timed out, the step's that was
running (``show_timed_out_logs``). Either way the lines are the last
``LOG_TAIL_LINES``, each cut to the reporter's line bound, with every secret
masked and workflow commands switched off.

Where a step's log is: prepare and test at ``logs/{stage}/{step}``; the run
stage of a single-server workspace there too; the run stage of a multi-server
workspace (a landscape) per replica, ``logs/run/{step}/replica/{replica}``
with the replica id the status gives (as the official CLI reads it), else per
server, ``logs/run/{step}/server/{server}`` (all its replicas): the spec's
routes for Multi Server Deployments, whose plain run route answers 400.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..context import Context
from ..errors import ActionError, ApiError, BadAnswer, TransportError
from ..github import count
from ..models import StageEntry
from ..timings import (
    LOG_QUIET_SECONDS,
    LOG_READ_SECONDS,
    SHOW_LOGS_SECONDS,
    TIMED_OUT_LOGS_SECONDS,
    Deadline,
)
from ..waiting import running_step

LOG_TAIL_LINES = 100
Lines = list[tuple[str, str]]  # (kind, text): "E" or "I", as the stream gives them


@dataclass(frozen=True)
class LogSource:
    """Which log of one step to read: ``server``/``replica`` ("" for none) pick a
    multi-server run's per-server or per-replica route."""

    stage: str
    step: int
    server: str = ""
    replica: str = ""

    @classmethod
    def of(cls, stage: str, step: int, server: str, replica: str, *, multi: bool) -> LogSource:
        """The log of ``server`` (``replica``, when its id names it alone) on a
        multi-server run; the step's plain log otherwise."""
        if stage != "run" or not multi:
            return cls(stage, step)
        return cls(stage, step, server, replica)

    def fallback(self) -> LogSource | None:
        """The server's log, for a replica's that could not be read."""
        return LogSource(self.stage, self.step, self.server) if self.replica else None


def show_stage_logs(
    ctx: Context, workspace_id: int, stage: str, entries: list[StageEntry], *, multi: bool
) -> None:
    """With ``show-logs: always``: the log of every step of a stage that ran,
    each in a group of its own, in ``SHOW_LOGS_SECONDS`` at most (``entries``:
    the run's status entries of the stage, which say its steps and servers)."""
    deadline = ctx.deadline(SHOW_LOGS_SECONDS)
    for source in stage_sources(stage, entries, multi=multi):
        if not reads_every_log(ctx):
            return
        if deadline.expired:
            ctx.reporter.info(
                f"The other logs of {stage} are not shown: reading them took "
                f"{SHOW_LOGS_SECONDS:.0f} s already (show-logs: always)"
            )
            return
        show_step_log(ctx, workspace_id, source, deadline.within(LOG_READ_SECONDS))


def show_timed_out_logs(
    ctx: Context, workspace_id: int, stage: str, entries: list[StageEntry], *, multi: bool
) -> list[tuple[str, str]]:
    """A stage that timed out: the log of the step that was running (each server's,
    on a landscape), as a failing step's is shown; with ``show-logs: always`` the
    logs of the steps before it too. All within ``TIMED_OUT_LOGS_SECONDS``: the
    running step's read first, the others in what is left; shown in step order.
    Return the running step's lines (the first server's)."""
    wanted = [
        (source, running)
        for source, running in timed_out_sources(stage, entries, multi=multi)
        if running or reads_every_log(ctx)
    ]
    deadline = ctx.deadline(TIMED_OUT_LOGS_SECONDS)
    read: dict[LogSource, Lines | None] = {}
    late = False
    for source, running in sorted(wanted, key=lambda item: not item[1]):  # running first
        late = late or deadline.expired
        if not late and (running or reads_every_log(ctx)):
            read[source] = read_step_log(
                ctx, workspace_id, source, deadline.within(LOG_READ_SECONDS)
            )
    for source, running in wanted:
        if source in read:
            where = f" on {source.server}" if source.server else ""
            _show(
                ctx, source, read[source], where + (", running at the timeout" if running else "")
            )
    if late:
        ctx.reporter.info(
            f"The other logs of {stage} are not shown: reading them took "
            f"{TIMED_OUT_LOGS_SECONDS:.0f} s already"
        )
    return next((read.get(source) or [] for source, running in wanted if running), [])


def reads_every_log(ctx: Context) -> bool:
    """Whether every step's log is read (``show-logs: always``): until the log
    route answers with an error (it answers every step alike). A failing or
    timed-out step's log is read all the same: that one holds the cause."""
    return ctx.config.show_logs == "always" and not ctx.log_route_refused


def timed_out_sources(
    stage: str, entries: list[StageEntry], *, multi: bool
) -> list[tuple[LogSource, bool]]:
    """Each step's log up to the one running (True with it), in order: per server
    on a landscape's run stage (its first replica's steps), else the stage's."""
    if stage == "run" and multi:
        firsts = {e.server: e for e in reversed(entries)}  # each server's first entry
        heads = [(server, firsts[server]) for server in dict.fromkeys(e.server for e in entries)]
    else:
        heads = [("", entries[0])] if entries else []
    sources: list[tuple[LogSource, bool]] = []
    for server, entry in heads:
        running = running_step(entry)
        last = len(entry.steps) - 1 if running is None else running
        sources += [(LogSource(stage, k, server), k == running) for k in range(last + 1)]
    return sources


def stage_sources(stage: str, entries: list[StageEntry], *, multi: bool) -> list[LogSource]:
    """Each step's log, in order: for the run stage of a multi-server workspace
    per server (all its replicas), in the order the status lists them."""
    if stage == "run" and multi:
        servers = list(dict.fromkeys(e.server for e in entries))
        return [
            LogSource(stage, step, server)
            for server in servers
            for step in range(max(len(e.steps) for e in entries if e.server == server))
        ]
    steps = max((len(e.steps) for e in entries), default=0)
    return [LogSource(stage, step) for step in range(steps)]


def show_step_log(
    ctx: Context, workspace_id: int, source: LogSource, deadline: Deadline, where: str = ""
) -> Lines | None:
    """Read one step's log and show it in a collapsed group titled with the step
    and ``where`` (default: the server, if any); return its lines (None: it
    could not be read, and that was said)."""
    lines = read_step_log(ctx, workspace_id, source, deadline)
    _show(ctx, source, lines, where or (f" on {source.server}" if source.server else ""))
    return lines


def _show(ctx: Context, source: LogSource, lines: Lines | None, where: str) -> None:
    """Show a step's lines in a collapsed group titled with the step and ``where``
    (nothing for a log that could not be read: its warning said so)."""
    if lines is None:
        return
    step = f"{source.stage} step {source.step + 1}{where}"
    if not lines:
        ctx.reporter.info(f"Log of {step}: no lines")
        return
    with ctx.reporter.group(f"Log of {step} (last {count(len(lines), 'line')})"):
        ctx.reporter.untrusted(text for _, text in lines)


def read_step_log(
    ctx: Context, workspace_id: int, source: LogSource, deadline: Deadline
) -> Lines | None:
    """The last lines of one step's log; None when it could not be read (said
    once per run: ``_say_unread``), [] when it gave none in time. Bounded in time
    whatever the stream does: up to ``deadline`` (``LOG_READ_SECONDS`` for one
    log) for the answer and the lines, ending at the stream's end or after
    ``LOG_QUIET_SECONDS`` without a line. A stream that breaks before its first
    line is opened once more (an error answer is not: it would answer the same);
    a replica's log that gives nothing is followed by its server's, in the same
    time."""
    tail: deque[tuple[str, str]] = deque(maxlen=LOG_TAIL_LINES)
    failure: ActionError | None = None
    current: LogSource | None = source
    while current is not None and not deadline.expired:
        failure = _read_source(ctx, tail, workspace_id, current, deadline)
        if tail:
            return list(tail)
        current = current.fallback()
    if failure is not None:
        _say_unread(ctx, source, failure)
        return None
    return list(tail)


def _say_unread(ctx: Context, source: LogSource, failure: ActionError) -> None:
    """Say that a log could not be read: the first time in the run as a warning,
    later as a line of the log (GitHub shows 10 warnings a step: one for each
    step of every stage would crowd the others out). After an error answer (the
    route's 404, a sign-in page: not a stream that broke) ``show-logs: always``
    reads no other log (``reads_every_log``)."""
    what = f"could not read the log of {source.stage} step {source.step + 1}: {failure}"
    if isinstance(failure, (ApiError, BadAnswer)) and not ctx.log_route_refused:
        ctx.log_route_refused = True
        if ctx.config.show_logs == "always":
            what += (
                ". The other steps' logs are not read in this run (show-logs: always); "
                "a failing step's log is still tried"
            )
    if ctx.log_unread_said:
        ctx.reporter.info(what)
        return
    ctx.log_unread_said = True
    ctx.reporter.warning(what)


def _read_source(
    ctx: Context,
    tail: deque[tuple[str, str]],
    workspace_id: int,
    source: LogSource,
    deadline: Deadline,
) -> ActionError | None:
    """Read one source into ``tail`` (twice if its stream broke before a line);
    return the error that kept it from giving a line, if any."""
    for attempt in (1, 2):
        try:
            if _read_into(ctx, tail, workspace_id, source, deadline) or attempt == 2:
                return None
        except ActionError as exc:
            if attempt == 2 or deadline.expired or not isinstance(exc, TransportError):
                return exc
    return None


def _read_into(
    ctx: Context,
    tail: deque[tuple[str, str]],
    workspace_id: int,
    source: LogSource,
    deadline: Deadline,
) -> bool:
    """Read one stream of the step into ``tail``; True once it gave a line."""
    clock = ctx.clock
    stream = ctx.client.open_log_stream(
        workspace_id,
        source.stage,
        source.step,
        idle_timeout=LOG_READ_SECONDS,
        deadline=deadline,
        server=source.server,
        replica=source.replica,
    )
    stream.set_idle(LOG_QUIET_SECONDS)  # the answer came: now lines, or quiet
    last_line = [clock.now()]
    got = False
    try:
        for entry in stream.entries(
            stop=lambda: deadline.expired or clock.now() >= last_line[0] + LOG_QUIET_SECONDS
        ):
            last_line[0] = clock.now()
            got = True
            for text in entry.text.splitlines() or [""]:
                tail.append((entry.kind, text))
    except TransportError as exc:
        if not exc.idle and not got:
            raise
    finally:
        stream.close()
    return got
