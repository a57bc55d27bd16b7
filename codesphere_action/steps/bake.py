"""The bake: watch a release for ``bake-time`` after its switch, then complete
it or undo it on its own (issue 22).

zero-downtime bakes after its switch and its check through the domain, the
previous workspaces left as they are; canary after the new workspace joined
the path beside the workspaces serving it.

A round every ``BAKE_CHECK_SECONDS`` (5 s), the first at once, the last at the
end of bake-time:
- one read of the domain's map (one attempt: a failed read is shown in the
  timeline and is no reason to stop): when someone else changed the path (it no
  longer lists exactly what this release wrote), the bake stops and writes
  nothing over that change (other paths may change as they like); when that
  was a newer release of this repository (``find_newer``), the run is
  superseded (exit code 0), as if it had come before the switch;
- one GET of ``health-check-path`` on the new workspace's dev domain (the token
  along, to that host only, as the health check sends it);
- through the domain (with ``health-check-domain`` and ``domain-path`` ``/``, as
  the domain check), one GET per workspace on the path, each a new visitor (no
  cookie), so a balancer that places new visitors in turn reaches each. With N
  workspaces serving beside it, a canary gets about 1 in N+1 of them (there are
  no weights); the dev domain is the check that surely reaches it.
Each answer is judged as the health check judges it (``health-check-status``,
never Codesphere's placeholder page) and awaited ``BAKE_ANSWER_SECONDS``. A
round's requests end with bake-time: what its end cuts off is not counted (the
timeline says so); the last round, due at the end, has
``BAKE_END_GRACE_SECONDS`` for its own.

The rule, which tolerates a single blip: the bake fails when one target (the
dev domain, or the domain) gives ``FAILURES`` (2) answers that are not accepted
within ``WINDOW`` (3) consecutive rounds. A lone one is a blip, forgotten once
it is three rounds old. After a round with an answer that was not accepted the
next one comes ``BAKE_RECHECK_SECONDS`` (1 s) later, so a failing app is
undone about a second after its first failed check; a blip in the last round
gets that one round more.

- Failure: the path is pointed back at what served it before
  (``verify.switch_back``, never over a change that came in meanwhile), and
  BakeFailed says what was restored; the flow's cleanup deletes the new
  workspace under the deletion rule.
- Cancel: the same, within the runner's cancel budget; then the cancel goes on.
  ``undone_if_cancelled`` does it, around everything from the switch (a
  canary's join) to the end of the bake (a canary's completion): a cancel
  during the switch (held back until it is whole), the check through the
  domain or the restore after a failure is undone the same way.
- A clean bake: a canary completes, in a read-check-write like the switch's:
  the path is pointed at the new workspace alone, unless it changed since the
  join; zero-downtime has nothing to write. The flow then marks the release
  released and applies ``delete-previous``. Nothing undoes it after that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from ..context import Context
from ..errors import ActionError, ApiError, BakeFailed, Cancelled
from ..github import count, format_seconds
from ..health import Answer, HealthCheck
from ..models import DomainMap, Workspace
from ..timeline import Round, Timeline
from ..timings import (
    BAKE_ANSWER_SECONDS,
    BAKE_CHECK_SECONDS,
    BAKE_END_GRACE_SECONDS,
    BAKE_RECHECK_SECONDS,
    SWITCH_READ_SECONDS,
    SWITCH_SECONDS,
    Deadline,
)
from .creation import State, ids
from .domain import domain_map, write_map
from .fresh import own_release
from .superseded import Newer, find_newer, superseded
from .verify import health_check, switch_back

FAILURES, WINDOW = 2, 3
LOG_EVERY = 60.0  # seconds between the log's progress lines while every round passes


class _Target:
    """The not-accepted answers of one target in its last ``WINDOW`` rounds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.recent: deque[tuple[int, str]] = deque(maxlen=WINDOW)

    def failed(self, count: int, answer: str) -> bool:
        self.recent.append((count, answer))
        return sum(n for n, _ in self.recent) >= FAILURES

    def why(self) -> str:
        answers = "; ".join(dict.fromkeys(a for n, a in self.recent if n))
        first = next(i for i, (n, _) in enumerate(self.recent) if n)
        rounds = len(self.recent) - first  # from the first failed answer to this one
        return (
            f"{self.name} gave {sum(n for n, _ in self.recent)} answers that were not accepted "
            f"within {count(rounds, 'round')} ({answers})"
        )


def bake(ctx: Context, state: State, workspace: Workspace, *, complete: bool) -> None:
    """With ``bake-time``: watch the release (module docstring); ``complete``:
    then point the path at ``workspace`` alone (a canary). Raises BakeFailed
    after undoing a failed bake, ActionError when the path was changed by
    someone else; a cancel is undone by ``undone_if_cancelled`` around it."""
    config = ctx.config
    if not config.bake_time:
        return
    timeline = Timeline(config.bake_time, BAKE_CHECK_SECONDS, started=ctx.clock.now())
    if config.health.domain and config.domain_path == "/":
        timeline.through = f"GET https://{config.domain}{config.health.path}"
    else:
        why = "domain-path is not /" if config.health.domain else "health-check-domain: false"
        timeline.why_not = why
    ctx.result.bake = timeline
    with ctx.phase("Bake") as phase:
        through = timeline.through or f"not through the domain ({timeline.why_not})"
        ctx.reporter.info(
            f"Baking for {format_seconds(config.bake_time)}: every "
            f"{format_seconds(BAKE_CHECK_SECONDS)}, GET {config.health.path} on workspace "
            f"{workspace.id}'s dev domain, and {through}; {FAILURES} answers that are not "
            f"accepted within {WINDOW} rounds undo the release"
        )
        checker = health_check(ctx)
        try:
            failure = _watch(ctx, state, workspace, checker, timeline)
        finally:
            checker.close()
        if failure:
            _undo(ctx, state, timeline, failure)
        blips = timeline.failed_rounds
        phase.detail = count(len(timeline.rounds), "round") + (
            f", {blips} with a blip" if blips else ""
        )
    if complete:
        with ctx.phase("Complete canary") as phase:
            _complete(ctx, state, workspace.id, timeline)
            phase.detail = f"workspace {workspace.id} alone"
    else:
        state.settled = True
        timeline.decide(f"passed after {format_seconds(config.bake_time)}: the switch stands")


@contextmanager
def undone_if_cancelled(ctx: Context, state: State, *, enabled: bool = True) -> Iterator[None]:
    """Around a release on trial, from its switch (a canary's join) until it
    stands (``state.settled``; a canary without a bake: until it serves beside):
    a cancel points the path back at what served it before, as a cancel during
    the bake does (``verify.switch_back``: never over a change that came in
    meanwhile; within the cancel budget), then goes on; the flow's cleanup
    deletes the new workspace. What could not be undone goes to the aftermath.
    ``enabled`` False: a cancel is left to the cleanup (zero-downtime without a
    bake: the switch stands)."""
    try:
        yield
    except Cancelled:
        if enabled and state.switched and not state.settled:
            _undo_cancelled(ctx, state)
        raise


def _watch(
    ctx: Context, state: State, workspace: Workspace, checker: HealthCheck, timeline: Timeline
) -> str:
    """Rounds until bake-time is over: "" when the bake passed, else why it failed.
    Every round's requests end with bake-time (``_round``); the last round is
    due when it is over and has ``BAKE_END_GRACE_SECONDS`` for its own."""
    clock = ctx.clock
    start = timeline.started
    end, logged = start + ctx.config.bake_time, start
    dev, domain = _Target("the dev domain"), _Target(f"{ctx.config.domain_url}")
    at = start
    while True:
        clock.sleep(max(0.0, at - clock.now()))
        begun, last = clock.now(), at >= end
        limit = ctx.deadline(BAKE_END_GRACE_SECONDS if last else max(0.0, end - begun))
        checked = _round(ctx, state, checker, workspace, timeline, begun - start, limit)
        judged = [(dev, checked.dev_failures, checked.dev)] if checked.dev_checked else []
        if checked.domain_total:
            judged.append((domain, checked.domain_failures, checked.domain_failed))
        failed = [target for target, n, answer in judged if target.failed(n, answer)]
        rule = "failed" if failed else "a blip" if checked.failures else ""
        timeline.add(replace(checked, note="; ".join(n for n in (rule, checked.note) if n)))
        if checked.failures or checked.note or begun - logged >= LOG_EVERY:
            logged = begun
            ctx.reporter.info(timeline.line())
        if failed:
            return "; ".join(target.why() for target in failed)
        if checked.failures:
            at = clock.now() + BAKE_RECHECK_SECONDS
        elif last:
            ctx.reporter.info(
                f"Bake passed: {count(len(timeline.rounds), 'round')} in {_took(ctx, timeline)}"
            )
            return ""
        else:
            at = min(begun + BAKE_CHECK_SECONDS, end)


def _round(
    ctx: Context,
    state: State,
    checker: HealthCheck,
    workspace: Workspace,
    timeline: Timeline,
    at: float,
    limit: Deadline,
) -> Round:
    """One round ``at`` seconds into the bake, its requests within ``limit``
    (the round's end): the map read (``_check_map``), one GET on the dev domain,
    and one through the domain per workspace on the path (none when the checks
    through the domain are off). What the round's end cuts off (not sent, or
    no answer by then while its own wait had not run out) is not counted: the
    note says so, and the last round comes at the end."""
    assert workspace.dev_domain  # the health check before the switch made sure
    dev_domain = workspace.dev_domain
    unread = _check_map(ctx, state, timeline, limit)
    total = len(state.targets) if timeline.through else 0
    cut = "cut off by the end of bake-time"
    answer = _ask(lambda d: checker.workspace_once(dev_domain, d), limit)
    if answer is None:
        return Round(at, dev_checked=False, note=_notes(unread, f"{cut}: not checked"))
    dev = "" if checker.accepts(answer) else _short(answer)
    passed, asked, first = 0, 0, ""
    for _ in range(total):
        through = _ask(checker.domain_once, limit)
        if through is None:
            break
        asked += 1
        if checker.accepts(through):
            passed += 1
        elif not first:
            first = _short(through)
    rest = f"{cut}: {total - asked} of {total} through the domain not checked"
    note = _notes(unread, rest if asked < total else "")
    return Round(at, dev, passed, asked, first, note=note)


def _ask(get: Callable[[Deadline], Answer], limit: Deadline) -> Answer | None:
    """One request of a round, awaited ``BAKE_ANSWER_SECONDS`` within ``limit``;
    None when the round's end cut it off (no time left to send it, or no answer
    by then while its own wait had not run out: that is no answer of the app's)."""
    if limit.expired:
        return None
    cut_short = limit.left() < BAKE_ANSWER_SECONDS
    answer = get(limit.within(BAKE_ANSWER_SECONDS))
    if answer.status is None and cut_short and limit.expired:
        return None
    return answer


def _notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _check_map(ctx: Context, state: State, timeline: Timeline, limit: Deadline) -> str:
    """Stop the bake when someone else changed the path. A map that cannot be
    read now is no reason to stop (the next round and the completion read it
    again), so it is read once, without retries, within the round's ``limit``;
    return why it was not read ("" when it was), for the timeline."""
    config = ctx.config
    assert config.team_id is not None
    if limit.expired:
        return "map not read: the end of bake-time came"
    try:
        current = ctx.client.get_domain(
            config.team_id,
            config.domain,
            deadline=limit.within(BAKE_ANSWER_SECONDS),
            read_timeout=SWITCH_READ_SECONDS,
            retries=False,
        ).workspaces
    except ActionError as exc:
        ctx.reporter.info(f"  could not read the domain's map ({exc}); the bake goes on")
        if isinstance(exc, ApiError):
            return f"map not read: {exc.status_code} {exc.problem_title}"
        return f"map not read: {exc}"
    if not current.lists(state.path, state.targets):
        raise _changed(ctx, state, timeline, current)
    return ""


def _changed(ctx: Context, state: State, timeline: Timeline, current: DomainMap) -> ActionError:
    """The path no longer lists what this release wrote: leave it as it is. When a
    newer release of this repository serves it now (``find_newer``), this run is
    superseded (exit code 0), as if that release had come before its switch."""
    config = ctx.config
    now = ids(current.ids(state.path)) or "nothing"
    state.switched = False  # the path is not this release's any more
    newer = _newer(ctx, state, current)
    if newer is not None:
        state.domain_note = (
            f"the domain {config.domain} was left to the newer release ({current.describe()})"
        )
        timeline.decide(
            f"stopped after {_took(ctx, timeline)}: a newer release of this repository "
            f"(workspace {newer.workspace_id}, run {newer.mark.run}) changed {state.path} to "
            f"{now}; superseded, nothing was written over it"
        )
        done = "so this run stopped its bake and wrote nothing over it"
        return superseded(ctx, newer, state.mark.start, own_release(state), done)
    state.domain_note = (
        f"the domain {config.domain} was left as another change set it ({current.describe()})"
    )
    timeline.decide(
        f"stopped after {_took(ctx, timeline)}: someone else changed {state.path} to {now}; "
        "nothing was written over that change"
    )
    return ActionError(
        f"the bake stopped after {_took(ctx, timeline)}: {config.domain_url} was changed by "
        f"someone else during the bake; it points at {now}, not at {ids(state.targets)} as "
        "this release left it. Nothing was written over that change, so the release was "
        "neither completed nor undone"
    )


def _newer(ctx: Context, state: State, current: DomainMap) -> Newer | None:
    """A newer release of this repository on the changed path (the superseded
    rule); None when there is none or a serving workspace's mark cannot be read
    (the change then stands as anyone's)."""
    try:
        return find_newer(
            ctx,
            current,
            state.path,
            state.mark.start,
            ctx.deadline(SWITCH_SECONDS),
            skip={*state.targets, *state.stale},
            read_timeout=SWITCH_READ_SECONDS,
        )
    except ActionError as exc:
        ctx.reporter.info(f"  whether a newer release changed the path is unknown: {exc}")
        return None


def _undo(ctx: Context, state: State, timeline: Timeline, failure: str) -> None:
    """Point the path back after a failed bake; raise BakeFailed saying what was restored."""
    config, took = ctx.config, _took(ctx, timeline)
    previous = ids(state.previous) or "nothing"
    undone = f"failed after {took}: {failure}. Undone: {state.path} -> {previous}"
    try:
        restored = switch_back(ctx, state, f"the bake failed after {took} ({failure})")
    except ActionError as exc:
        timeline.decide(f"failed after {took}: {failure}; not undone: {exc}")
        raise
    except Cancelled:
        # Held back until the restore was whole: when it landed, say so; when
        # the cancel came before it, undone_if_cancelled restores and decides.
        if state.switched_back:
            timeline.decide(f"{undone}; then the run was cancelled")
        raise
    timeline.decide(undone)
    raise BakeFailed(
        f"the bake failed after {took}: {failure}. It was undone: {config.domain_url} points "
        f"at {previous} again ({restored.describe()})"
    )


def _undo_cancelled(ctx: Context, state: State) -> None:
    """The run was cancelled while its release was on trial: point the path
    back, within the cancel budget; what could not be undone goes to the
    aftermath. The bake's timeline, once it started, records the decision."""
    timeline = ctx.result.bake
    took = _took(ctx, timeline) if timeline is not None else ""
    when = f"during the bake ({took} in)" if timeline is not None else "before the bake began"
    if not ctx.config.bake_time:  # a canary without a bake
        when = "before the canary's check through the domain was done"
    try:
        restored = switch_back(ctx, state, f"the run was cancelled {when}")
    except ActionError as exc:
        if timeline is not None:
            timeline.decide(f"cancelled after {took}; not undone: {exc}")
        ctx.result.aftermath.append(str(exc))
        return
    if timeline is not None:
        timeline.decide(f"cancelled after {took}: undone, {restored.describe()}")


def _complete(ctx: Context, state: State, new: int, timeline: Timeline) -> None:
    """A clean bake of a canary: point the path at ``new`` alone, in a
    read-check-write (never over a change since the join)."""
    config, took = ctx.config, format_seconds(ctx.config.bake_time)
    beside = ids(state.previous) or "nothing"
    fix = (
        f"workspace {new} still serves {config.domain_url} beside {beside}: complete it with "
        f"flow: promote and workspace-id {new}, or undo it with flow: rollback"
    )
    with ctx.guard.shield():
        deadline = ctx.deadline(SWITCH_SECONDS)
        try:
            current = domain_map(ctx, deadline, read_timeout=SWITCH_READ_SECONDS)
        except ActionError as exc:
            raise ActionError(
                f"the bake passed, but the domain's map could not be read ({exc}): {fix}"
            ) from None
        if not current.lists(state.path, state.targets):
            raise _changed(ctx, state, timeline, current)
        ctx.reporter.info(
            f"Bake passed: pointing {config.domain_url} at workspace {new} alone "
            f"(was {ids(state.targets)})"
        )
        try:
            write_map(ctx, current.with_path(state.path, [new]), deadline, state.path)
        except ActionError as exc:
            raise ActionError(
                f"the bake passed, but pointing the domain at workspace {new} alone failed "
                f"({exc}): {fix}"
            ) from None
        # Inside the shield: a cancel held back until here finds the decision made.
        state.targets, state.settled = [new], True
        timeline.decide(f"passed after {took}: completed, {state.path} -> {new} alone")


def _took(ctx: Context, timeline: Timeline) -> str:
    """How long the bake has been going."""
    return format_seconds(ctx.clock.now() - timeline.started)


def _short(answer: Answer) -> str:
    """The answer in a few words, for the timeline: its status and reason (no
    body: it may be HTML, and the summary is Markdown)."""
    if answer.status is None:
        return answer.detail[:80]
    words = answer.detail.split(":", 1)[0]
    return f"{words}, Codesphere's placeholder page" if answer.placeholder else words
