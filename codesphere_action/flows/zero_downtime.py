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

from dataclasses import dataclass, field
from typing import Any

from ..context import Context
from ..errors import ActionError, Cancelled
from ..steps import describe, run_stage, stage_plan, wait_until_running

LOOKUP_SECONDS = 5.0
CANCEL_DELETE_TIMEOUT = (0.5, 1.0)  # connect, read: cleanup after a signal has ~2 s in all


@dataclass
class State:
    name: str
    created_id: int | None = None
    creating: bool = False  # a create request is under way: its outcome is unknown
    switched: bool = False
    previous: list[int] = field(default_factory=list)


def release(ctx: Context) -> None:
    state = State(name=ctx.config.workspace_name)
    try:
        _release(ctx, state)
    except (Exception, Cancelled) as exc:
        _clean_up(ctx, state, cancelled=isinstance(exc, Cancelled))
        raise


def _release(ctx: Context, state: State) -> None:
    config = ctx.config
    with ctx.phase("Check"):
        live = _plan(ctx, state)
    if live is not None:
        _report_already_live(ctx, live)
        return

    with ctx.phase("Create workspace") as phase:
        workspace = _create(ctx, state)
        workspace_id = int(workspace["id"])
        ctx.reporter.info(f"Created workspace {workspace_id} ({state.name}); waiting for it to run")
        wait_until_running(ctx, workspace_id)
        phase.detail = f"workspace {workspace_id}"

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace_id, stage)
    run_stage(ctx, workspace_id, "run")
    describe(ctx, workspace_id)

    if not config.domain:
        ctx.reporter.info("No domain given: nothing to switch")
        return
    with ctx.phase("Switch domain"):
        _switch(ctx, state, workspace_id)
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            _delete_previous(ctx, state, workspace_id)
    elif state.previous:
        ctx.reporter.info(
            f"Previous workspace(s) {_ids(state.previous)} kept (delete-previous: false)"
        )


def _domain_map(ctx: Context) -> dict[str, list[int]]:
    config = ctx.config
    assert config.team_id is not None
    try:
        domain = ctx.client.get_domain(config.team_id, config.domain)
    except ActionError as exc:
        raise ActionError(
            f"could not read domain {config.domain} of team {config.team_id} (inputs 'domain', "
            f"'team-id'): {exc}"
        ) from None
    raw = domain.get("workspaces") or {}
    return {str(path): [int(i) for i in ids] for path, ids in raw.items()}


def _plan(ctx: Context, state: State) -> dict[str, Any] | None:
    """Apply the re-run rules; return the workspace that is live already, if any."""
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    domain_map = _domain_map(ctx) if config.domain else {}
    if config.domain:
        shown = ", ".join(f"{p} -> {_ids(ids)}" for p, ids in sorted(domain_map.items()))
        ctx.reporter.info(f"Domain {config.domain}: {shown or 'no paths connected'}")
    on_path = set(domain_map.get(config.domain_path, []))
    serving = {i for ids in domain_map.values() for i in ids}
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


def _create_body(ctx: Context, name: str) -> dict[str, Any]:
    config = ctx.config
    body: dict[str, Any] = {
        "teamId": config.team_id,
        "name": name,
        "planId": config.plan_id,
        "isPrivateRepo": config.private_repo,
        "replicas": config.replicas,
        "gitUrl": config.git_url,
        "initialBranch": config.branch,
    }
    if config.env:
        body["env"] = [{"name": var.name, "value": var.value} for var in config.env]
    return body


def _create(ctx: Context, state: State) -> dict[str, Any]:
    """Create the workspace exactly once, even when the connection drops.

    ``POST /workspaces`` is not idempotent: when its outcome is unknown, look
    the name up in the team before creating again, and after a second create
    delete any twin the first one made after all.
    """
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    body = _create_body(ctx, state.name)
    state.creating = True
    try:
        workspace = client.create_workspace(body)
    except ActionError as exc:
        if not getattr(exc, "maybe_landed", False):
            raise
        ctx.reporter.warning(f"Creating the workspace may have failed ({exc}); looking it up")
        found = _find_by_name(ctx, state.name)
        if found:
            workspace = found[0]
            ctx.reporter.info(f"The create had landed: workspace {workspace['id']}")
        else:
            workspace = client.create_workspace(body)
            for twin in _find_by_name(ctx, state.name, wait=False):
                if twin["id"] != workspace["id"]:
                    ctx.reporter.warning(
                        f"Deleting {twin['id']}, a twin the first create made late"
                    )
                    client.delete_workspace(int(twin["id"]))
    state.created_id = int(workspace["id"])
    state.creating = False
    ctx.result.set("workspace-id", state.created_id)
    return workspace


def _find_by_name(ctx: Context, name: str, *, wait: bool = True) -> list[dict[str, Any]]:
    """Workspaces of the team with this name; with ``wait``, give a create that
    landed a few seconds to show up."""
    team_id = ctx.config.team_id
    assert team_id is not None

    def check(_deadline: float) -> list[dict[str, Any]] | None:
        found = [w for w in ctx.client.list_team_workspaces(team_id) if w.get("name") == name]
        return found or None

    if not wait:
        return check(0.0) or []
    try:
        return ctx.waiter.poll(check, timeout=LOOKUP_SECONDS, what=f"looking up {name}")
    except ActionError:
        return []


def _switch(ctx: Context, state: State, workspace_id: int) -> None:
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    with ctx.guard.shield():
        current = _domain_map(ctx)
        state.previous = [i for i in current.get(config.domain_path, []) if i != workspace_id]
        wanted = {**current, config.domain_path: [workspace_id]}
        ctx.reporter.info(
            f"Pointing {config.domain_url} at workspace {workspace_id} "
            f"(was {_ids(state.previous) or 'nothing'})"
        )
        try:
            answer = client.set_domain_connections(config.team_id, config.domain, wanted)
            now = {str(p): [int(i) for i in ids] for p, ids in answer["workspaces"].items()}
        except ActionError:
            # The PUT may have landed: the map says whether the switch happened.
            now = _domain_map(ctx)
            if now.get(config.domain_path) != [workspace_id]:
                raise
        state.switched = True
    ctx.result.set("previous-workspace-id", ",".join(str(i) for i in state.previous))
    ctx.result.set("domain-url", config.domain_url)
    if now != wanted:
        ctx.reporter.warning(
            f"The domain's map after the switch differs from the one written: {now} "
            "(another change at the same moment?)"
        )


def _delete_previous(ctx: Context, state: State, workspace_id: int) -> None:
    serving = {i for ids in _domain_map(ctx).values() for i in ids}
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


def _clean_up(ctx: Context, state: State, *, cancelled: bool) -> None:
    """After a failure or cancellation: never leave a half-made workspace behind,
    never touch the domain; say what state things are in."""
    config = ctx.config
    if state.created_id is None and state.creating:
        state.created_id = _created_meanwhile(ctx, state, quick=cancelled)
    created = state.created_id
    if state.switched:
        ctx.result.aftermath.append(
            f"the domain {config.domain_url} already points at the new workspace {created}; "
            f"nothing was undone (previous: {_ids(state.previous) or 'none'})"
        )
        return
    untouched = f" the domain {config.domain} is untouched." if config.domain else ""
    if created is None:
        if untouched:
            ctx.result.aftermath.append(untouched.strip())
        return
    if not config.cleanup_on_failure:
        ctx.result.aftermath.append(
            f"the new workspace {created} was kept (cleanup-on-failure: false);{untouched}"
        )
        return
    try:
        if cancelled:
            ctx.client.delete_workspace(created, timeout=CANCEL_DELETE_TIMEOUT, retries=False)
        else:
            ctx.client.delete_workspace(created)
    except (ActionError, Cancelled) as exc:
        ctx.result.aftermath.append(
            f"deleting the new workspace {created} failed ({exc}): delete it by hand;{untouched}"
        )
        return
    ctx.result.aftermath.append(f"the new workspace {created} was deleted;{untouched}")


def _created_meanwhile(ctx: Context, state: State, *, quick: bool) -> int | None:
    """The workspace a create that was cut off may have made: ``_plan`` left no
    workspace of this name, so one that exists now is ours."""
    assert ctx.config.team_id is not None
    try:
        team = ctx.client.list_team_workspaces(
            ctx.config.team_id,
            timeout=CANCEL_DELETE_TIMEOUT if quick else None,
            retries=not quick,
        )
    except (ActionError, Cancelled):
        ctx.result.aftermath.append(
            f"a workspace named {state.name} may have been created: check the team"
        )
        return None
    found = [int(w["id"]) for w in team if w.get("name") == state.name]
    return found[0] if found else None


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
