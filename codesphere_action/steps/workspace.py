"""The workspace itself: find it, wake it, wait for it, pull its code, describe it."""

from __future__ import annotations

from ..addresses import workspace_url
from ..context import Context
from ..errors import ActionError, ApiError, NotFound, WaitTimeout, outcome_unknown
from ..github import count
from ..models import Workspace
from ..timings import CHECK_SECONDS, OUTCOME_GRACE_SECONDS, PULL_READ_SECONDS, Deadline


def get_workspace(
    ctx: Context, workspace_id: int, input_name: str, deadline: Deadline
) -> Workspace:
    """The workspace, or an error that says which input named a missing one."""
    try:
        return ctx.client.get_workspace(workspace_id, deadline=deadline)
    except NotFound as exc:
        raise ActionError(
            f"workspace {workspace_id} (input '{input_name}') was not found or the token's "
            f"account cannot see it: check the id in Codesphere's workspace URL. {exc}"
        ) from None


def wait_until_running(ctx: Context, workspace_id: int, deadline: Deadline) -> None:
    """Poll ``isRunning`` until true, within ``deadline`` (the phase's
    ``workspace-timeout``, which a create before it has spent from already)."""

    def check(limit: Deadline) -> bool | None:
        return True if ctx.client.is_running(workspace_id, deadline=limit) else None

    ctx.waiter.poll(
        check,
        deadline=deadline,
        what=f"workspace {workspace_id} starting",
        last_state=lambda: "not running",
    )


def ensure_running(ctx: Context, workspace: Workspace, deadline: Deadline) -> bool:
    """Wake an on-demand workspace the way the official CLI does (PATCH replicas to
    at least 1, then wait for ``isRunning``), within ``deadline``. Return True
    when it had to be woken."""
    if ctx.client.is_running(workspace.id, deadline=deadline):
        return False
    replicas = max(1, workspace.replicas)
    ctx.reporter.info(
        f"Workspace {workspace.id} is not running: waking it ({count(replicas, 'replica')})"
    )
    ctx.client.set_replicas(workspace.id, replicas, deadline=deadline)
    wait_until_running(ctx, workspace.id, deadline)
    return True


def git_pull(ctx: Context, workspace_id: int, deadline: Deadline) -> None:
    """Pull ``remote``/``branch`` (the workspace's current branch when empty), once.

    The API answers when the pull is done; its answer is awaited for up to
    ``PULL_READ_SECONDS`` within ``deadline``. A pull whose answer was lost may
    still be running in the workspace, so it is never sent again: when the
    commit this run releases is known, the workspace's head says whether the
    pull got there; otherwise the release stops, saying so."""
    remote, branch = ctx.config.remote, ctx.config.branch
    target = pull_target(ctx)
    ctx.reporter.info(f"git pull {target}")
    try:
        ctx.client.git_pull(workspace_id, remote, branch, deadline=deadline)
    except ActionError as exc:
        if not outcome_unknown(exc):
            raise
        expected = ctx.config.expected_commit
        if expected and _head_reaches(
            ctx, workspace_id, expected, deadline.grace(OUTCOME_GRACE_SECONDS)
        ):
            ctx.reporter.warning(
                f"git pull's answer was lost ({exc}), but the workspace is at {expected[:7]}, "
                "the commit this run releases: the pull landed"
            )
            return
        got = f"answered {exc.status_code}" if isinstance(exc, ApiError) else "got no answer"
        raise ActionError(
            f"git pull {target} in workspace {workspace_id} {got} ({exc}). It may "
            "still be running in the workspace, so it was not sent again"
            + (
                f", and the workspace did not reach {expected[:7]} (the commit this run releases)"
                if expected
                else ""
            )
            + ": re-run the job once the workspace is idle"
        ) from None


def pull_target(ctx: Context) -> str:
    """What ``git_pull`` pulls: ``origin/main``, or ``origin (the current branch)``."""
    remote, branch = ctx.config.remote, ctx.config.branch
    return f"{remote}/{branch}" if branch else f"{remote} (the current branch)"


def _head_reaches(ctx: Context, workspace_id: int, commit: str, deadline: Deadline) -> bool:
    def check(limit: Deadline) -> bool | None:
        return True if ctx.client.git_head(workspace_id, deadline=limit) == commit else None

    try:
        return ctx.waiter.poll(
            check, deadline=deadline.within(PULL_READ_SECONDS), what="the pulled commit"
        )
    except (WaitTimeout, ActionError):
        return False


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
    head = ctx.client.git_head(workspace.id, deadline=ctx.deadline(CHECK_SECONDS))
    ctx.result.set("deployed-commit", head)
