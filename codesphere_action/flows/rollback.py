"""The rollback flow: point ``domain-path`` back at an earlier workspace.

``workspace-id`` names it (for example the ``previous-workspace-id`` of the
release to undo). Before anything changes the workspace must exist, belong to
``team-id``, run, and have its run stage up (every customer server
``running``); otherwise the rollback is refused and the domain untouched.
The action never starts a workspace for a rollback: a rollback is for when
something is on fire, and a stage that has to start first is no quick way
back. The switch itself is the one zero-downtime uses: read the map, replace
only ``domain-path``, write the whole map back, cancellation held back.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, ApiError, Cancelled, Refused
from ..models import Workspace
from ..steps import describe
from ..waiting import relevant
from .creation import State, ids
from .domain import describe_map, domain_map, switch_domain


def rollback(ctx: Context) -> None:
    config = ctx.config
    workspace_id = config.workspace_id
    assert workspace_id is not None  # config guarantees it for this flow
    state = State.for_run(ctx)
    try:
        _rollback(ctx, state, workspace_id)
    except (Exception, Cancelled):
        if state.switched:
            ctx.result.aftermath.append(
                f"the domain {config.domain_url} points at workspace {workspace_id} now "
                f"(before: {ids(state.previous) or 'nothing'})"
            )
        else:
            ctx.result.aftermath.append(f"the domain {config.domain} is untouched")
        raise


def _rollback(ctx: Context, state: State, workspace_id: int) -> None:
    config = ctx.config
    with ctx.phase("Check") as phase:
        workspace = _target(ctx, workspace_id)
        ctx.result.set("workspace-id", workspace_id)
        ctx.result.workspace_name = workspace.name
        _check_up(ctx, workspace_id)
        try:
            describe(ctx, workspace)
        except ActionError as exc:  # the outputs are a courtesy: no reason to stay down
            ctx.reporter.warning(f"could not read workspace {workspace_id}'s URL or commit: {exc}")
        current = domain_map(ctx)
        ctx.reporter.info(f"Domain {config.domain}: {describe_map(current)}")
        phase.detail = f"workspace {workspace_id} is up"

    name = ctx.result.workspace_name
    if current.get(config.domain_path) == [workspace_id]:
        ctx.result.set("domain-url", config.domain_url)
        ctx.result.aftermath.append(
            f"workspace {workspace_id} ({name}) already serves {config.domain_url} alone: "
            "nothing was changed"
        )
        ctx.result.notice = f"{config.domain_url} already served by workspace {workspace_id}"
        return
    with ctx.phase("Switch domain"):
        switch_domain(ctx, state, workspace_id)
    ctx.result.notice = (
        f"Rolled {config.domain_url} back to workspace {workspace_id} ({name}); before: "
        f"{ids(state.previous) or 'nothing'}"
    )


def _target(ctx: Context, workspace_id: int) -> Workspace:
    """The workspace to roll back to; Refused when it is gone or another team's."""
    team_id = ctx.config.team_id
    try:
        workspace = ctx.client.get_workspace(workspace_id)
    except ApiError as exc:
        if exc.status_code != 404:
            raise
        raise Refused(
            f"rollback refused: workspace {workspace_id} (input 'workspace-id') does not exist "
            "or the token's account cannot see it. Pass the id of a workspace that still runs "
            f"the earlier release (the previous-workspace-id output of the release to undo). {exc}"
        ) from None
    owner = workspace.team_id
    if owner is not None and owner != team_id:
        raise Refused(
            f"rollback refused: workspace {workspace_id} (input 'workspace-id') belongs to team "
            f"{owner}, not to team {team_id} (input 'team-id'), which owns the domain"
        )
    return workspace


def _check_up(ctx: Context, workspace_id: int) -> None:
    """Refused unless the workspace runs and every customer server of its run
    stage is ``running``: the domain must never point at a workspace that
    cannot answer."""
    fix = (
        f"Start it first (e.g. the simple flow with workspace-id {workspace_id}), "
        "then roll back again"
    )
    if not ctx.client.is_running(workspace_id):
        raise Refused(
            f"rollback refused: workspace {workspace_id} is not running (an on-demand workspace "
            f"that sleeps?). {fix}"
        )
    entries = relevant("run", ctx.client.stage_status(workspace_id, "run"))
    down = [e for e in entries if e.state != "running"]
    if not entries or down:
        states = ", ".join(f"{e.server}/{e.replica}: {e.state}" for e in down)
        raise Refused(
            f"rollback refused: the run stage of workspace {workspace_id} is not up "
            f"({states or 'no servers reported'}). {fix}"
        )
