"""Steps the release flows share: wake a workspace, run a stage, describe the result."""

from __future__ import annotations

import re
from collections import deque

from .addresses import workspace_url
from .context import Context
from .cues import Cue, StepFollower
from .errors import ActionError, ApiError, StageFailed, TransportError, WaitTimeout
from .models import StageEntry, Workspace
from .waiting import (
    IDE_SERVER,
    Baseline,
    Progress,
    StageTracker,
    WaitStats,
    is_active,
    relevant,
    running_step,
)

# Follow the running step's log stream as an end cue (cues.py); the benchmark's
# reference poller turns it off.
FOLLOW_STEP_LOGS = True
LOG_TAIL_LINES = 100
LOG_READ_SECONDS = 5.0  # reading a failed step's log takes at most this long...
LOG_QUIET_SECONDS = 1.0  # ...and ends once no line came for this long
START_CONFIRM_SECONDS = 5.0
STOP_SETTLE_SECONDS = 60.0  # after a stop, wait this long at most for the old run to end
# A start whose run never shows (the status stays as it was), or a run stage
# that starts no customer server, fails after this long instead of waiting out
# the whole stage-timeout.
NO_SIGN_SECONDS = 60.0
NO_SERVER_SECONDS = 120.0
# A multi-server run stage counts as up once that held this long with the same
# servers: a landscape's servers may appear one after another.
CONFIRM_SECONDS = 1.0
SINGLE_SERVER = re.compile(r"multi.?server", re.IGNORECASE)


def wait_until_running(ctx: Context, workspace_id: int) -> None:
    """Poll ``isRunning`` until true, within ``workspace-timeout``."""

    def check(deadline: float) -> bool | None:
        return True if ctx.client.is_running(workspace_id, deadline=deadline) else None

    ctx.waiter.poll(
        check,
        timeout=ctx.config.workspace_timeout,
        what=f"workspace {workspace_id} starting",
        last_state=lambda: "not running",
    )


def ensure_running(ctx: Context, workspace: Workspace) -> bool:
    """Wake an on-demand workspace the way the official CLI does (PATCH replicas to
    at least 1, then wait for ``isRunning``). Return True when it had to be woken."""
    deadline = ctx.clock.now() + ctx.config.workspace_timeout
    if ctx.client.is_running(workspace.id, deadline=deadline):
        return False
    replicas = max(1, workspace.replicas)
    ctx.reporter.info(f"Workspace {workspace.id} is not running: waking it ({replicas} replica(s))")
    ctx.client.set_replicas(workspace.id, replicas, deadline=deadline)
    wait_until_running(ctx, workspace.id)
    return True


def git_pull(ctx: Context, workspace_id: int) -> None:
    remote, branch = ctx.config.remote, ctx.config.branch
    target = f"{remote}/{branch}" if branch else f"{remote} (current branch)"
    ctx.reporter.info(f"git pull {target}")
    try:
        ctx.client.git_pull(workspace_id, remote, branch)
    except TransportError as exc:
        if not exc.maybe_landed:
            raise
        # The pull may have run. Pulling an up-to-date branch again changes
        # nothing, so repeating it is the way to be sure it happened.
        ctx.reporter.warning(f"git pull may not have completed ({exc}); pulling again")
        ctx.client.git_pull(workspace_id, remote, branch)


def run_stage(ctx: Context, workspace_id: int, stage: str) -> None:
    """Start ``stage`` (with the profile) and wait until it succeeds (prepare, test)
    or its servers run (run). A run of the stage that is still in progress is
    stopped first; the run stage gets its landscape deployed first.

    Raises StageFailed with the failing step's log shown, or when the run never
    shows or the run stage starts no server; WaitTimeout after ``stage-timeout``.
    """
    client, config = ctx.client, ctx.config
    with ctx.phase(f"Stage {stage}") as phase:
        if config.profile:
            phase.detail = f"profile {config.profile}"
        deadline = ctx.clock.now() + config.stage_timeout
        before = client.stage_status(workspace_id, stage, deadline=deadline)
        if any(is_active(e) for e in relevant(stage, before)):
            before = _stop_and_settle(ctx, workspace_id, stage, deadline)
        landscape = stage == "run" and sync_landscape(ctx, workspace_id, deadline)
        if landscape:
            before = client.stage_status(workspace_id, stage, deadline=deadline)
        tracker = StageTracker(stage, Baseline.of(before))
        profile_note = f" (profile {config.profile})" if config.profile else ""
        ctx.reporter.info(f"Starting {stage}{profile_note}")
        _start(ctx, workspace_id, stage, tracker, deadline)
        outcome = _wait(ctx, workspace_id, stage, tracker, deadline, confirm=landscape)
        if outcome.state == "failed":
            phase.outcome = "failed"
            raise StageFailed(stage, _failure_message(ctx, workspace_id, stage, outcome))


def _wait(
    ctx: Context,
    workspace_id: int,
    stage: str,
    tracker: StageTracker,
    deadline: float,
    *,
    confirm: bool = False,
) -> Progress:
    """Poll until the run we started succeeds or fails; see ``run_stage``.
    ``confirm``: a multi-server landscape, whose servers may appear one after
    another: "up" counts once it held, with the same servers, for
    ``CONFIRM_SECONDS``."""
    client = ctx.client
    started = ctx.clock.now()
    last: list[Progress] = [Progress("pending", "started")]
    up_since: list[tuple[float, frozenset[tuple[str, str]]]] = []
    # prepare and test end, and their steps' log streams may end with them. The
    # run stage does not end, so its wait polls on the quick schedule instead.
    cue = Cue() if FOLLOW_STEP_LOGS and stage != "run" else None
    follower = (
        StepFollower(client, workspace_id, stage, cue, trusted=not ctx.streams_end_early)
        if cue
        else None
    )

    unlisted: set[tuple[str, str]] = set()

    def check(limit: float) -> Progress | None:
        entries = client.stage_status(workspace_id, stage, deadline=limit)
        _say_unlisted(ctx, stage, entries, unlisted)
        progress = tracker.evaluate(entries)
        if progress.detail != last[0].detail:
            ctx.reporter.info(f"{stage}: {progress.detail}")
        last[0] = progress
        if progress.state == "success" and confirm:
            keys = frozenset(e.key for e in entries)
            if not up_since or up_since[0][1] != keys:
                up_since[:] = [(ctx.clock.now(), keys)]
            if ctx.clock.now() - up_since[0][0] < CONFIRM_SECONDS:
                return None  # servers may still be appearing: look again
        if progress.state in ("success", "failed"):
            return progress
        if follower is not None:
            follower.want(_running_step(stage, tracker, entries))
        elapsed = ctx.clock.now() - started
        if stage == "run" and not progress.servers and elapsed > NO_SERVER_SECONDS:
            raise StageFailed(stage, _no_server_message(elapsed))
        if not progress.seen and elapsed > NO_SIGN_SECONDS:
            raise StageFailed(stage, _no_sign_message(stage, elapsed))
        return None

    stats = WaitStats()
    try:
        return ctx.waiter.poll(
            check,
            timeout=max(0.0, deadline - started),
            what=f"stage {stage}",
            cue=cue,
            stats=stats,
            last_state=lambda: last[0].detail,
            false_cue=lambda: follower is not None and follower.cue_was_wrong,
        )
    except WaitTimeout:
        elapsed = ctx.clock.now() - started
        if stage == "run" and not last[0].servers:
            raise StageFailed(stage, _no_server_message(elapsed)) from None
        if not last[0].seen:
            raise StageFailed(stage, _no_sign_message(stage, elapsed)) from None
        raise
    finally:
        if follower is not None:
            follower.stop()
            ctx.streams_end_early = ctx.streams_end_early or not follower.cues_trusted
        ctx.reporter.debug(f"stage {stage}: {stats.polls} status polls")


def _say_unlisted(
    ctx: Context, stage: str, entries: list[StageEntry], said: set[tuple[str, str]]
) -> None:
    """Say once per stage wait which states the spec does not list came up, and
    what the wait makes of them (an entry: not finished; a step: not failed)."""
    new = sorted(set().union(*(e.unlisted_states() for e in entries)) - said)
    if not new:
        return
    said.update(new)
    where: dict[str, list[str]] = {}
    for kind, state in new:
        where.setdefault(state, []).append("entries" if kind == "entry" else "steps")
    seen = ", ".join(f"'{state}' ({' and '.join(kinds)})" for state, kinds in where.items())
    ctx.reporter.info(
        f"{stage}: the status shows {seen}, a state the API spec does not list: an entry in "
        "it counts as not finished (the stage-timeout still holds), a step as not failed"
    )


def _running_step(stage: str, tracker: StageTracker, entries: list[StageEntry]) -> int | None:
    ours = [e for e in relevant(stage, entries) if e.key in tracker.ours]
    return running_step(ours[0]) if ours else None


def _no_sign_message(stage: str, elapsed: float) -> str:
    return (
        f"stage {stage} was started, but {elapsed:.0f} s later its status still shows no sign "
        "of the new run (the same entries as before the start). Codesphere may not have "
        "started it: look at the workspace's pipeline in Codesphere and re-run the job"
    )


def _no_server_message(elapsed: float) -> str:
    return (
        f"the run stage started no server within {elapsed:.0f} s: the status lists no server "
        "but codesphere-ide. Check the run section of ci.yml (for the profile in use): it must "
        "define at least one server (a service with its steps)"
    )


def sync_landscape(ctx: Context, workspace_id: int, deadline: float) -> bool:
    """Deploy the landscape (ci.yml's run section, same profile) as the official
    flows do before the run stage: it allocates the servers of a multi-server
    workspace and applies a changed ci.yml. Return False on a single-server
    workspace (the API answers 400 "does not support Multi Server Deployments");
    any other error fails the release with the API's message."""
    profile = ctx.config.profile
    where = f"ci.{profile}.yml" if profile else "ci.yml"
    try:
        ctx.client.deploy_landscape(workspace_id, profile, deadline=deadline)
    except ApiError as exc:
        if exc.status_code == 400 and SINGLE_SERVER.search(f"{exc.problem_title} {exc.detail}"):
            ctx.reporter.info(
                "Landscape: nothing to deploy, this is not a multi-server workspace "
                f"(the API said: {exc.problem_title})"
            )
            return False
        hint = f". Check the run section of {where}" if exc.status_code < 500 else ""
        raise ActionError(
            f"deploying the landscape of workspace {workspace_id} from {where} failed: {exc}{hint}"
        ) from None
    ctx.reporter.info(
        f"Landscape deployed from {'ci.' + profile + '.yml' if profile else 'ci.yml'}"
    )
    return True


def _stop_and_settle(
    ctx: Context, workspace_id: int, stage: str, deadline: float
) -> list[StageEntry]:
    """Stop the run in progress and wait until the status shows it ended, so the
    next start can be told apart from it. Return that status."""
    ctx.reporter.info(f"Stopping the {stage} run in progress")
    try:
        ctx.client.stop_stage(workspace_id, stage, deadline=deadline)
    except ApiError as exc:
        # Nothing to stop answers 400 on some installations; a real problem
        # (workspace down) shows at the start that follows.
        if exc.status_code != 400:
            raise
        ctx.reporter.debug(f"stop {stage}: {exc}")

    def check(limit: float) -> list[StageEntry] | None:
        entries = ctx.client.stage_status(workspace_id, stage, deadline=limit)
        return None if any(is_active(e) for e in relevant(stage, entries)) else entries

    try:
        return ctx.waiter.poll(
            check,
            timeout=max(0.0, min(STOP_SETTLE_SECONDS, deadline - ctx.clock.now())),
            what=f"stopping {stage}",
        )
    except WaitTimeout:
        # Starting now could take the old run's progress for the new run's.
        raise StageFailed(
            stage,
            f"the {stage} run in progress did not stop: it still shows as running "
            f"{STOP_SETTLE_SECONDS:.0f} s after the stop. Stop it in Codesphere, then re-run",
        ) from None


def _start(
    ctx: Context, workspace_id: int, stage: str, tracker: StageTracker, deadline: float
) -> None:
    try:
        ctx.client.start_stage(workspace_id, stage, ctx.config.profile, deadline=deadline)
    except TransportError as exc:
        if not exc.maybe_landed:
            raise
        # The start may have landed: look for our run before starting again,
        # so one release never starts a stage twice.
        ctx.reporter.warning(f"starting {stage} may have failed ({exc}); checking its status")
        if not _run_appeared(ctx, workspace_id, stage, tracker):
            ctx.reporter.info(f"{stage} did not start: starting it again")
            ctx.client.start_stage(workspace_id, stage, ctx.config.profile, deadline=deadline)


def _run_appeared(ctx: Context, workspace_id: int, stage: str, tracker: StageTracker) -> bool:
    def check(deadline: float) -> bool | None:
        entries = ctx.client.stage_status(workspace_id, stage, deadline=deadline)
        return True if tracker.evaluate(entries).seen else None

    try:
        return ctx.waiter.poll(check, timeout=START_CONFIRM_SECONDS, what=f"{stage} start")
    except WaitTimeout:
        return False


def _failure_message(ctx: Context, workspace_id: int, stage: str, outcome: Progress) -> str:
    step = outcome.failed_step
    message = f"stage {stage} {outcome.detail}"
    if step is None:
        return message
    server = outcome.failed_server if outcome.failed_server != IDE_SERVER else ""
    lines = read_step_log(ctx, workspace_id, stage, step, server)
    if not lines:
        return message
    title = f"Log of {stage} step {step + 1} (last {len(lines)} lines)"
    with ctx.reporter.group(title):
        ctx.reporter.untrusted(text for _, text in lines)
    errors = [text for kind, text in lines if kind == "E" and text.strip()]
    last = (errors or [text for _, text in lines if text.strip()] or [""])[-1]
    return f"{message}: {last.strip()}" if last.strip() else message


def read_step_log(
    ctx: Context, workspace_id: int, stage: str, step: int, server: str = ""
) -> list[tuple[str, str]]:
    """The last lines of one step's log, [] if unavailable. Bounded in time
    whatever the stream does: up to ``LOG_READ_SECONDS`` for the answer and the
    lines, ending at the stream's end or after ``LOG_QUIET_SECONDS`` without a
    line. A stream that breaks before its first line is opened once more."""
    clock = ctx.clock
    hard = clock.now() + LOG_READ_SECONDS
    tail: deque[tuple[str, str]] = deque(maxlen=LOG_TAIL_LINES)
    for attempt in (1, 2):
        try:
            if _read_into(ctx, tail, workspace_id, stage, step, server, hard) or attempt == 2:
                break
        except ActionError as exc:
            if attempt == 2 or clock.now() >= hard:
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
    hard: float,
) -> bool:
    """Read one stream of the step into ``tail``; True once it gave a line."""
    clock = ctx.clock
    stream = ctx.client.open_log_stream(
        workspace_id, stage, step, idle_timeout=LOG_READ_SECONDS, limit=hard, server=server
    )
    stream.set_idle(LOG_QUIET_SECONDS)  # the answer came: now lines, or quiet
    last_line = [clock.now()]
    got = False
    try:
        for entry in stream.entries(
            stop=lambda: clock.now() >= min(hard, last_line[0] + LOG_QUIET_SECONDS)
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


def get_workspace(ctx: Context, workspace_id: int, input_name: str) -> Workspace:
    """The workspace, or an error that says which input named a missing one."""
    try:
        return ctx.client.get_workspace(workspace_id)
    except ApiError as exc:
        if exc.status_code == 404:
            raise ActionError(
                f"workspace {workspace_id} (input '{input_name}') was not found or the token's "
                f"account cannot see it: check the id in Codesphere's workspace URL. {exc}"
            ) from None
        raise


def record_workspace(ctx: Context, workspace: Workspace) -> None:
    """Set the outputs the workspace itself tells: id, name, URL from ``devDomain``
    (as soon as they are known, so a failure later still reports them)."""
    ctx.result.set("workspace-id", workspace.id)
    ctx.result.workspace_name = workspace.name
    if workspace.dev_domain:
        ctx.result.set("workspace-url", workspace_url(workspace.dev_domain))


def describe(ctx: Context, workspace: Workspace) -> None:
    """Fill the workspace outputs: those of ``record_workspace`` and the deployed
    commit (git head)."""
    record_workspace(ctx, workspace)
    if not workspace.dev_domain:
        ctx.reporter.warning(f"workspace {workspace.id} reports no devDomain: no workspace-url")
    ctx.result.set("deployed-commit", ctx.client.git_head(workspace.id))


def stage_plan(ctx: Context) -> list[str]:
    """The stages a release runs before ``run``, as the inputs ask."""
    return [
        stage
        for stage, wanted in (("prepare", ctx.config.prepare), ("test", ctx.config.test))
        if wanted
    ]
