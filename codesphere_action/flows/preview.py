"""The preview flow: one workspace per pull request, updated on every push.

- The first run for a pull request creates ``<repository>-pr-<number>`` on the
  pull request's head branch (env included), waits until it runs, then runs
  prepare / test / run on it.
- Later runs (new pushes, re-runs) reuse it: wake it if it sleeps, update its
  env, pull ``origin/<head branch>``, prepare / test, restart run. Never a
  second workspace for one pull request.
- The preview is the workspace this action made for this repository and pull
  request (its mark, ``ownership.py``). Should a workspace of that name exist
  that is not it (made by hand, say), it is left alone and the preview lives
  in ``<name>-2`` (the first name that is free or holds the preview).

A failure deletes the workspace only when this run created it (and
``cleanup-on-failure`` allows it); a preview that existed before is never
deleted by a failed update: the next push repairs it, closing the pull
request (the teardown flow) deletes it.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, Cancelled
from ..models import Workspace
from ..steps import (
    describe,
    ensure_running,
    git_pull,
    run_stage,
    stage_plan,
    wait_until_running,
)
from .creation import State, clean_up, create_workspace, ids, remove_twins
from .ownership import Mark, candidate_names, is_ours, read_mark
from .verify import check_commit, check_health


def release(ctx: Context) -> None:
    state = State.for_run(ctx)
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
    remove_twins(ctx, state)


def _preview(ctx: Context, state: State, reused: list[int]) -> None:
    config = ctx.config
    pull = config.pull_request
    assert pull is not None  # config guarantees it for this flow (never a fork's)
    with ctx.phase("Check") as phase:
        existing = _existing_preview(ctx, state)
        phase.detail = f"reusing {existing.id}" if existing else "no preview yet"
        ctx.reporter.info(
            f"Pull request #{pull.number}: "
            + (
                f"its preview is workspace {existing.id} ({existing.name})"
                if existing
                else f"no preview yet; creating {state.name}"
            )
        )

    if existing is None:
        with ctx.phase("Create workspace") as phase:
            workspace = create_workspace(ctx, state)
            ctx.reporter.info(
                f"Created workspace {workspace.id} ({state.name}) on branch {config.branch} "
                f"for pull request #{pull.number}; waiting for it to run"
            )
            wait_until_running(ctx, workspace.id)
            phase.detail = f"workspace {workspace.id}"
    else:
        workspace = existing
        reused.append(workspace.id)
        ctx.result.set("workspace-id", workspace.id)
        ctx.reporter.info(
            f"Updating preview workspace {workspace.id} ({workspace.name}) of pull request "
            f"#{pull.number}"
        )
        with ctx.phase("Update workspace") as phase:
            if ensure_running(ctx, existing):
                phase.detail = "woken up"
            if config.env:
                ctx.client.set_env_vars(workspace.id, list(config.env))
                ctx.reporter.info(
                    "Environment variables set: " + ", ".join(v.name for v in config.env)
                )
            git_pull(ctx, workspace.id)

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace.id, stage)
    run_stage(ctx, workspace.id, "run")
    describe(ctx, workspace)
    check_commit(ctx)
    check_health(ctx, workspace)
    url = ctx.result.outputs["workspace-url"] or f"workspace {workspace.id}"
    verb = "updated" if existing else "created"
    ctx.result.notice = f"Preview of pull request #{pull.number} {verb}: {url}"


def _existing_preview(ctx: Context, state: State) -> Workspace | None:
    """The pull request's preview, if an earlier run made it: among the workspaces
    named ``name``, ``name-2``, ..., the oldest that carries this repository's and
    pull request's mark. Sets ``state.name`` to the preview's name, or to the first
    free name for a new one."""
    config = ctx.config
    pull = config.pull_request
    assert config.team_id is not None and pull is not None
    team = ctx.client.list_team_workspaces(config.team_id)
    for name in candidate_names(state.name):
        same = sorted((w for w in team if w.name == name), key=lambda w: w.id)
        if not same:
            state.name = name
            ctx.result.workspace_name = name
            return None
        ours = [w for w in same if _is_preview(ctx, read_mark(ctx, w.id))]
        if ours:
            if len(ours) > 1:
                ctx.reporter.warning(
                    f"{len(ours)} preview workspaces are named {name}: updating the oldest, "
                    f"{ours[0].id}; the others ({ids([w.id for w in ours[1:]])}) are left alone "
                    "(the teardown flow deletes them all)"
                )
            state.name = name
            ctx.result.workspace_name = name
            return ours[0]
        ctx.reporter.warning(
            f"A workspace named {name} ({ids([w.id for w in same])}) is not this pull "
            "request's preview (not created by codesphere-release for it): it is left alone, "
            "and the preview uses the next free name"
        )
    raise ActionError(f"no free workspace name from {state.name} to {state.name}-99")


def _is_preview(ctx: Context, mark: Mark | None) -> bool:
    pull = ctx.config.pull_request
    return (
        is_ours(ctx.config, mark)
        and mark is not None
        and pull is not None
        and mark.pr == pull.number
    )
