"""A failed step's log: its last lines, read within a few seconds whatever the
stream does (ends, stays open, breaks)."""

from __future__ import annotations

from collections import deque

from ..context import Context
from ..errors import ActionError, TransportError
from ..timings import LOG_QUIET_SECONDS, LOG_READ_SECONDS, Deadline

LOG_TAIL_LINES = 100


def read_step_log(
    ctx: Context, workspace_id: int, stage: str, step: int, server: str = ""
) -> list[tuple[str, str]]:
    """The last lines of one step's log, [] if unavailable. Bounded in time
    whatever the stream does: up to ``LOG_READ_SECONDS`` for the answer and the
    lines, ending at the stream's end or after ``LOG_QUIET_SECONDS`` without a
    line. A stream that breaks before its first line is opened once more."""
    deadline = ctx.deadline(LOG_READ_SECONDS)
    tail: deque[tuple[str, str]] = deque(maxlen=LOG_TAIL_LINES)
    for attempt in (1, 2):
        try:
            if _read_into(ctx, tail, workspace_id, stage, step, server, deadline) or attempt == 2:
                break
        except ActionError as exc:
            if attempt == 2 or deadline.expired:
                ctx.reporter.warning(f"could not read the log of {stage} step {step + 1}: {exc}")
                break
    return list(tail)


def _read_into(
    ctx: Context,
    tail: deque[tuple[str, str]],
    workspace_id: int,
    stage: str,
    step: int,
    server: str,
    deadline: Deadline,
) -> bool:
    """Read one stream of the step into ``tail``; True once it gave a line."""
    clock = ctx.clock
    stream = ctx.client.open_log_stream(
        workspace_id, stage, step, idle_timeout=LOG_READ_SECONDS, deadline=deadline, server=server
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
