"""Steps the release flows share: wake a workspace, run a stage, describe the result."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .context import Context
from .cues import StepFollower, running_step
from .errors import ActionError, ApiError, StageFailed, TransportError, WaitTimeout
from .waiting import Baseline, Progress, StageTracker, WaitStats, relevant

# Follow the running step's log stream as an end cue (see cues.py).
FOLLOW_STEP_LOGS = True
LOG_TAIL_LINES = 100
LOG_READ_SECONDS = 10.0
START_CONFIRM_SECONDS = 5.0


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


def ensure_running(ctx: Context, workspace: dict[str, Any]) -> bool:
    """Wake an on-demand workspace the way the official CLI does (PATCH replicas to
    at least 1, then wait for ``isRunning``). Return True when it had to be woken."""
    workspace_id = int(workspace["id"])
    # A status call that keeps failing counts against the wake-up deadline.
    deadline = ctx.clock.now() + ctx.config.workspace_timeout
    if ctx.client.is_running(workspace_id, deadline=deadline):
        return False
    replicas = max(1, int(workspace.get("replicas") or 0))
    ctx.reporter.info(f"Workspace {workspace_id} is not running: waking it ({replicas} replica(s))")
    ctx.client.set_replicas(workspace_id, replicas)
    wait_until_running(ctx, workspace_id)
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


def run_stage(ctx: Context, workspace_id: int, stage: str, *, restart: bool = False) -> None:
    """Start ``stage`` (with the profile) and wait until it succeeds (prepare, test)
    or its servers run (run). Raises StageFailed with the failing step's log shown,
    WaitTimeout after ``stage-timeout``."""
    client, config = ctx.client, ctx.config
    with ctx.phase(f"Stage {stage}") as phase:
        before = client.stage_status(workspace_id, stage)
        tracker = StageTracker(stage, Baseline.of(before))
        if restart:
            ctx.reporter.info(f"Stopping {stage}")
            _stop(ctx, workspace_id, stage)
        profile_note = f" (profile {config.profile})" if config.profile else ""
        ctx.reporter.info(f"Starting {stage}{profile_note}")
        _start(ctx, workspace_id, stage, tracker)

        last: list[Progress] = [Progress("pending", "started")]
        # prepare and test end; their steps' log streams end with them. The run
        # stage does not end, so its wait polls on the quick schedule instead.
        cue = threading.Event() if FOLLOW_STEP_LOGS and stage != "run" else None
        follower = (
            StepFollower(client, workspace_id, stage, cue, config.stage_timeout) if cue else None
        )

        def check(deadline: float) -> Progress | None:
            entries = client.stage_status(workspace_id, stage, deadline=deadline)
            progress = tracker.evaluate(entries)
            if progress.detail != last[0].detail:
                ctx.reporter.info(f"{stage}: {progress.detail}")
            last[0] = progress
            if follower is not None and progress.state == "running":
                ours = [e for e in relevant(stage, entries) if tracker.is_ours(e)]
                step = running_step(ours[0]) if ours else None
                if step is not None:
                    follower.follow(step)
            return progress if progress.state in ("success", "failed") else None

        stats = WaitStats()
        try:
            outcome = ctx.waiter.poll(
                check,
                timeout=config.stage_timeout,
                what=f"stage {stage}",
                cue=cue,
                stats=stats,
                last_state=lambda: last[0].detail,
            )
        finally:
            if follower is not None:
                follower.stop()
        phase.detail = f"{stats.polls} status polls"
        if outcome.state == "failed":
            phase.outcome = "failed"
            raise StageFailed(stage, _failure_message(ctx, workspace_id, stage, outcome))


def _stop(ctx: Context, workspace_id: int, stage: str) -> None:
    try:
        ctx.client.stop_stage(workspace_id, stage)
    except ApiError as exc:
        # Nothing to stop answers 400 on some installations; a real problem
        # (workspace down) shows at the start that follows.
        if exc.status_code != 400:
            raise
        ctx.reporter.debug(f"stop {stage}: {exc}")


def _start(ctx: Context, workspace_id: int, stage: str, tracker: StageTracker) -> None:
    try:
        ctx.client.start_stage(workspace_id, stage, ctx.config.profile)
    except TransportError as exc:
        if not exc.maybe_landed:
            raise
        # The start may have landed: look for our run before starting again,
        # so one release never starts a stage twice.
        ctx.reporter.warning(f"starting {stage} may have failed ({exc}); checking its status")
        if not _run_appeared(ctx, workspace_id, stage, tracker):
            ctx.reporter.info(f"{stage} did not start: starting it again")
            ctx.client.start_stage(workspace_id, stage, ctx.config.profile)


def _run_appeared(ctx: Context, workspace_id: int, stage: str, tracker: StageTracker) -> bool:
    def check(deadline: float) -> bool | None:
        entries = relevant(stage, ctx.client.stage_status(workspace_id, stage, deadline=deadline))
        return True if any(tracker.is_ours(entry) for entry in entries) else None

    try:
        return ctx.waiter.poll(check, timeout=START_CONFIRM_SECONDS, what=f"{stage} start")
    except WaitTimeout:
        return False


def _failure_message(ctx: Context, workspace_id: int, stage: str, outcome: Progress) -> str:
    step = outcome.failed_step
    message = f"stage {stage} {outcome.detail}"
    if step is None:
        return message
    lines = _read_log(ctx, workspace_id, stage, step)
    if not lines:
        return message
    title = f"Log of {stage} step {step + 1} (last {len(lines)} lines)"
    with ctx.reporter.group(title):
        ctx.reporter.untrusted(text for _, text in lines)
    errors = [text for kind, text in lines if kind == "E"]
    return f"{message}: {(errors or [text for _, text in lines])[-1].strip()}"


def _read_log(ctx: Context, workspace_id: int, stage: str, step: int) -> list[tuple[str, str]]:
    """The last lines of one step's log, bounded in time and size; [] if unavailable."""
    tail: deque[tuple[str, str]] = deque(maxlen=LOG_TAIL_LINES)
    deadline = ctx.clock.now() + LOG_READ_SECONDS
    try:
        for entry in ctx.client.stream_logs(
            workspace_id, stage, step, read_timeout=LOG_READ_SECONDS
        ):
            for text in str(entry.get("data", "")).splitlines() or [""]:
                tail.append((str(entry.get("kind", "I")), text))
            if ctx.clock.now() > deadline:
                break
    except (ApiError, TransportError) as exc:
        ctx.reporter.warning(f"could not read the log of {stage} step {step + 1}: {exc}")
    except Exception as exc:  # noqa: BLE001 (a broken log stream must not hide the failure)
        ctx.reporter.warning(f"could not read the log of {stage} step {step + 1}: {exc!r}")
    return list(tail)


def get_workspace(ctx: Context, workspace_id: int, input_name: str) -> dict[str, Any]:
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


def record_workspace(ctx: Context, workspace: dict[str, Any]) -> None:
    """Set the outputs the workspace itself tells: id, name, URL from ``devDomain``
    (as soon as they are known, so a failure later still reports them)."""
    ctx.result.set("workspace-id", int(workspace["id"]))
    ctx.result.workspace_name = str(workspace.get("name", ""))
    dev_domain = workspace.get("devDomain")
    if dev_domain:
        ctx.result.set("workspace-url", f"https://{dev_domain}")


def describe(ctx: Context, workspace_id: int, known: dict[str, Any] | None = None) -> None:
    """Fill the workspace outputs: those of ``record_workspace`` (from ``known``
    when it has them, else from the API) and the deployed commit (git head)."""
    workspace = (
        known if known and known.get("devDomain") else ctx.client.get_workspace(workspace_id)
    )
    record_workspace(ctx, workspace)
    if not workspace.get("devDomain"):
        ctx.reporter.warning(f"workspace {workspace_id} reports no devDomain: no workspace-url")
    ctx.result.set("deployed-commit", ctx.client.git_head(workspace_id))


def stage_plan(ctx: Context) -> list[str]:
    """The stages a release runs before ``run``, as the inputs ask."""
    return [
        stage
        for stage, wanted in (("prepare", ctx.config.prepare), ("test", ctx.config.test))
        if wanted
    ]
