"""The preview flow: one workspace per pull request, updated on every push.

- The first run for a pull request creates ``<repository>-pr-<number>`` on the
  pull request's head branch (env included), waits until it runs, then runs
  prepare / test / run on it.
- Later runs (new pushes, re-runs) reuse it: wake it if it sleeps, update its
  env, pull ``origin/<head branch>``, prepare / test, restart run. Never a
  second workspace for one pull request.

A failure deletes the workspace only when this run created it (and
``cleanup-on-failure`` allows it); a preview that existed before is never
deleted by a failed update: the next push repairs it, closing the pull
request (the teardown flow) deletes it.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import Cancelled
from ..steps import (
    describe,
    ensure_running,
    git_pull,
    run_stage,
    stage_plan,
    wait_until_running,
)
from .creation import State, clean_up, create_workspace, find_by_name, ids


def release(ctx: Context) -> None:
    state = State(name=ctx.config.workspace_name)
    ctx.result.workspace_name = state.name
    reused: list[int] = []
    try:
        _preview(ctx, state, reused)
    except (Exception, Cancelled) as exc:
        if reused:
            ctx.result.aftermath.append(
                f"the preview workspace {reused[0]} was kept (it existed before this run; "
                "the next push updates it)"
            )
        else:
            clean_up(ctx, state, cancelled=isinstance(exc, Cancelled))
        raise


def _preview(ctx: Context, state: State, reused: list[int]) -> None:
    config = ctx.config
    pull = config.pull_request
    assert pull is not None  # config guarantees it for this flow
    _warn_about_fork(ctx)
    with ctx.phase("Check") as phase:
        existing = _existing_preview(ctx, state.name)
        phase.detail = f"reusing {existing['id']}" if existing else "no preview yet"

    if existing is None:
        with ctx.phase("Create workspace") as phase:
            workspace = create_workspace(ctx, state)
            workspace_id = int(workspace["id"])
            ctx.reporter.info(
                f"Created workspace {workspace_id} ({state.name}) on branch {config.branch} "
                f"for pull request #{pull.number}; waiting for it to run"
            )
            wait_until_running(ctx, workspace_id)
            phase.detail = f"workspace {workspace_id}"
    else:
        workspace = existing
        workspace_id = int(existing["id"])
        reused.append(workspace_id)
        ctx.result.set("workspace-id", workspace_id)
        ctx.reporter.info(
            f"Updating preview workspace {workspace_id} ({state.name}) of pull request "
            f"#{pull.number}"
        )
        with ctx.phase("Update workspace") as phase:
            if ensure_running(ctx, existing):
                phase.detail = "woken up"
            if config.env:
                ctx.client.set_env_vars(
                    workspace_id, [{"name": v.name, "value": v.value} for v in config.env]
                )
            git_pull(ctx, workspace_id)

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace_id, stage)
    run_stage(ctx, workspace_id, "run", restart=existing is not None)
    describe(ctx, workspace_id, workspace)
    _check_commit(ctx)
    url = ctx.result.outputs["workspace-url"] or f"workspace {workspace_id}"
    verb = "updated" if existing else "created"
    ctx.result.notice = f"Preview of pull request #{pull.number} {verb}: {url}"


def _existing_preview(ctx: Context, name: str) -> dict[str, Any] | None:
    """The pull request's preview workspace, if an earlier run made it. Should
    there be several of that name, the oldest is used and the others named."""
    found = sorted(find_by_name(ctx, name, wait=False), key=lambda w: int(w["id"]))
    if len(found) > 1:
        ctx.reporter.warning(
            f"{len(found)} workspaces are named {name}: updating the oldest, {found[0]['id']}; "
            f"the others ({ids([int(w['id']) for w in found[1:]])}) are left alone "
            "(the teardown flow deletes them all)"
        )
    return found[0] if found else None


def _warn_about_fork(ctx: Context) -> None:
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    if pull.head_repository and pull.head_repository.lower() != config.repository.lower():
        ctx.reporter.warning(
            f"Pull request #{pull.number} comes from the fork {pull.head_repository}: its "
            f"branch {pull.head_ref} is usually not in {config.git_url}, which the workspace "
            "clones. Previews of forks need git-url set to a repository that has the branch"
        )


def _check_commit(ctx: Context) -> None:
    """Say so when the branch moved on after the event (a newer push: its own
    run deploys that)."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    deployed = ctx.result.outputs["deployed-commit"]
    if deployed and config.branch == pull.head_ref and deployed != pull.head_sha:
        ctx.reporter.warning(
            f"The preview runs {deployed[:7]}, not the pull request's head {pull.head_sha[:7]}: "
            f"branch {pull.head_ref} changed since this run started"
        )
