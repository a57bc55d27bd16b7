"""The zero-downtime flow: a fresh workspace per release, then move the domain.

1. Check: read the domain (fail before creating anything if it is wrong) and
   look for workspaces of the release's name (re-runs, see below).
2. Create the workspace (env included), wait until it runs.
3. prepare / test / run on it.
4. Switch: read the domain's path map, point ``domain-path`` at the new
   workspace, write the whole map back (PUT replaces it), every other path as
   it was. Cancellation is held back during the switch.
5. ``delete-previous``: delete the workspaces that served the path before,
   unless they still serve another path.

Before the switch a failure leaves the domain untouched and (with
``cleanup-on-failure``) deletes the new workspace. After the switch nothing
is undone; the error says what state things are in.

Re-runs (same commit, same name), decided in ``_plan``:
- a workspace of that name serves ``domain-path``: it is live already; succeed
  and change nothing;
- one serves another path of the domain: never touch it; release into
  ``<name>-2`` (the first free suffix);
- the others serve nothing (leftovers of a failed or cancelled run, or of a
  release without a domain): delete them, then create afresh.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import ActionError, Cancelled
from ..steps import describe, run_stage, stage_plan, wait_until_running
from .creation import State, clean_up, create_workspace, ids
from .domain import describe_map, domain_map, switch_domain


def release(ctx: Context) -> None:
    state = State(name=ctx.config.workspace_name)
    try:
        _release(ctx, state)
    except (Exception, Cancelled) as exc:
        clean_up(ctx, state, cancelled=isinstance(exc, Cancelled))
        raise


def _release(ctx: Context, state: State) -> None:
    config = ctx.config
    with ctx.phase("Check"):
        live = _plan(ctx, state)
    if live is not None:
        _report_already_live(ctx, live)
        return

    with ctx.phase("Create workspace") as phase:
        workspace = create_workspace(ctx, state)
        workspace_id = int(workspace["id"])
        ctx.reporter.info(f"Created workspace {workspace_id} ({state.name}); waiting for it to run")
        wait_until_running(ctx, workspace_id)
        phase.detail = f"workspace {workspace_id}"

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace_id, stage)
    run_stage(ctx, workspace_id, "run")
    describe(ctx, workspace_id, workspace)

    if not config.domain:
        ctx.reporter.info("No domain given: nothing to switch")
        return
    with ctx.phase("Switch domain"):
        switch_domain(ctx, state, workspace_id)
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            _delete_previous(ctx, state, workspace_id)
    elif state.previous:
        ctx.reporter.info(
            f"Previous workspace(s) {ids(state.previous)} kept (delete-previous: false)"
        )


def _plan(ctx: Context, state: State) -> dict[str, Any] | None:
    """Apply the re-run rules; return the workspace that is live already, if any."""
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    connected = domain_map(ctx) if config.domain else {}
    if config.domain:
        ctx.reporter.info(f"Domain {config.domain}: {describe_map(connected)}")
    on_path = set(connected.get(config.domain_path, []))
    serving = {i for path_ids in connected.values() for i in path_ids}
    team = client.list_team_workspaces(config.team_id)
    names = {str(w.get("name")) for w in team}
    same_name = [w for w in team if w.get("name") == state.name]
    for workspace in same_name:
        if int(workspace["id"]) in on_path:
            return workspace
    if any(int(w["id"]) in serving for w in same_name):
        base, number = state.name, 2
        while f"{base}-{number}" in names:
            number += 1
        state.name = f"{base}-{number}"
        ctx.reporter.warning(
            f"A workspace named {base} serves another path of {config.domain}; it is left alone "
            f"and this release goes into {state.name}"
        )
        same_name = [w for w in team if w.get("name") == state.name]
    for workspace in same_name:  # leftovers: they serve nothing
        ctx.reporter.info(
            f"Deleting workspace {workspace['id']} ({state.name}), left over from an earlier run "
            "of this release; it serves nothing"
        )
        client.delete_workspace(int(workspace["id"]))
    ctx.result.workspace_name = state.name
    return None


def _report_already_live(ctx: Context, workspace: dict[str, Any]) -> None:
    workspace_id = int(workspace["id"])
    describe(ctx, workspace_id)
    ctx.result.set("domain-url", ctx.config.domain_url)
    ctx.result.aftermath.append(
        f"workspace {workspace_id} ({workspace.get('name')}) already serves "
        f"{ctx.config.domain_url}: this commit is live, nothing was changed"
    )
    ctx.reporter.notice(
        f"{workspace.get('name')} already serves {ctx.config.domain_url}; nothing to release",
        title="Already released",
    )


def _delete_previous(ctx: Context, state: State, workspace_id: int) -> None:
    serving = {i for path_ids in domain_map(ctx).values() for i in path_ids}
    for previous in state.previous:
        if previous == workspace_id or previous in serving:
            ctx.reporter.info(f"Keeping workspace {previous}: it still serves the domain")
            continue
        try:
            ctx.client.delete_workspace(previous)
        except ActionError as exc:
            raise ActionError(
                f"the domain now points at workspace {workspace_id}, but deleting the previous "
                f"workspace {previous} failed: {exc}. Delete it by hand"
            ) from None
        ctx.reporter.info(f"Deleted previous workspace {previous}")
