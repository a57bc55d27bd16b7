"""The teardown flow: delete a pull request's preview workspace.

The workspace is found by name (``<repository>-pr-<number>`` from the
pull_request event, or ``workspace-name``) in the team. None there means it
is gone already: success. A workspace some domain of the team routes to is
never deleted (a mistyped ``workspace-name`` must not take production down).
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, Refused
from .creation import find_by_name, ids


def teardown(ctx: Context) -> None:
    config, client = ctx.config, ctx.client
    assert config.team_id is not None  # config guarantees it for this flow
    name = config.workspace_name
    ctx.result.workspace_name = name
    with ctx.phase("Check") as phase:
        found = sorted(int(w["id"]) for w in find_by_name(ctx, name, wait=False))
        if found:
            _refuse_if_served(ctx, found)
        phase.detail = f"found {ids(found)}" if found else "already gone"
    if not found:
        ctx.reporter.info(f"No workspace named {name} in team {config.team_id}: nothing to delete")
        ctx.result.aftermath.append(f"no workspace named {name} was left: nothing to delete")
        ctx.result.notice = f"Preview workspace {name} is already gone: nothing to delete"
        return

    ctx.result.set("workspace-id", ",".join(str(i) for i in found))
    with ctx.phase("Delete workspace") as phase:
        for workspace_id in found:
            if client.delete_workspace(workspace_id):
                ctx.reporter.info(f"Deleted workspace {workspace_id} ({name})")
            else:
                ctx.reporter.info(f"Workspace {workspace_id} ({name}) was deleted meanwhile")
        phase.detail = f"deleted {ids(found)}"
    ctx.result.notice = f"Deleted preview workspace {ids(found)} ({name})"


def _refuse_if_served(ctx: Context, workspace_ids: list[int]) -> None:
    team_id = ctx.config.team_id
    assert team_id is not None
    try:
        domains = ctx.client.list_domains(team_id)
    except ActionError as exc:
        raise ActionError(
            f"could not list the domains of team {team_id} (input 'team-id') to make sure no "
            f"domain routes to workspace {ids(workspace_ids)}, so nothing was deleted: {exc}"
        ) from None
    serving = [
        f"{domain.get('name')}{path}"
        for domain in domains
        for path, connected in (domain.get("workspaces") or {}).items()
        if set(workspace_ids) & {int(i) for i in connected}
    ]
    if serving:
        raise Refused(
            f"workspace {ids(workspace_ids)} ({ctx.config.workspace_name}) serves "
            f"{', '.join(sorted(serving))}: teardown never deletes a workspace a domain routes "
            "to, so nothing was deleted. Check the input 'workspace-name', or disconnect the "
            "domain first"
        )
