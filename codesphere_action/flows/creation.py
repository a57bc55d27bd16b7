"""Creating a release workspace exactly once, and cleaning up after a failure.

Shared by the flows that create a workspace (zero-downtime, preview).
``POST /workspaces`` is not idempotent: when its outcome is unknown, the name
is looked up in the team before creating again, and a twin made by a late
first create is deleted. After a failure or cancellation the workspace this
run created is deleted (``cleanup-on-failure``); one it did not create is
never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..context import Context
from ..errors import ActionError, Cancelled

LOOKUP_SECONDS = 5.0
CANCEL_DELETE_TIMEOUT = (0.5, 1.0)  # connect, read: cleanup after a signal has ~2 s in all


@dataclass
class State:
    """What a run has changed so far, for the cleanup and the error's aftermath."""

    name: str
    created_id: int | None = None
    creating: bool = False  # a create request is under way: its outcome is unknown
    switched: bool = False
    previous: list[int] = field(default_factory=list)


def create_body(ctx: Context, name: str) -> dict[str, Any]:
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


def create_workspace(ctx: Context, state: State) -> dict[str, Any]:
    """Create the workspace named ``state.name`` exactly once, even when the
    connection drops; set ``workspace-id``. The caller made sure no workspace
    of that name existed before."""
    client = ctx.client
    body = create_body(ctx, state.name)
    state.creating = True
    try:
        workspace = client.create_workspace(body)
    except ActionError as exc:
        if not getattr(exc, "maybe_landed", False):
            raise
        ctx.reporter.warning(f"Creating the workspace may have failed ({exc}); looking it up")
        found = find_by_name(ctx, state.name)
        if found:
            workspace = found[0]
            ctx.reporter.info(f"The create had landed: workspace {workspace['id']}")
        else:
            workspace = client.create_workspace(body)
            for twin in find_by_name(ctx, state.name, wait=False):
                if twin["id"] != workspace["id"]:
                    ctx.reporter.warning(
                        f"Deleting {twin['id']}, a twin the first create made late"
                    )
                    client.delete_workspace(int(twin["id"]))
    state.created_id = int(workspace["id"])
    state.creating = False
    ctx.result.set("workspace-id", state.created_id)
    return workspace


def find_by_name(ctx: Context, name: str, *, wait: bool = True) -> list[dict[str, Any]]:
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


def clean_up(ctx: Context, state: State, *, cancelled: bool) -> None:
    """After a failure or cancellation: never leave a half-made workspace behind,
    never touch the domain; say what state things are in."""
    config = ctx.config
    if state.created_id is None and state.creating:
        state.created_id = _created_meanwhile(ctx, state, quick=cancelled)
    created = state.created_id
    if state.switched:
        ctx.result.aftermath.append(
            f"the domain {config.domain_url} already points at the new workspace {created}; "
            f"nothing was undone (previous: {ids(state.previous) or 'none'})"
        )
        return
    untouched = f"the domain {config.domain} is untouched" if config.domain else ""

    def tell(what: str) -> None:
        ctx.result.aftermath.append("; ".join(part for part in (what, untouched) if part))

    if created is None:
        if untouched:
            tell("")
        return
    if not config.cleanup_on_failure:
        tell(f"the new workspace {created} was kept (cleanup-on-failure: false)")
        return
    try:
        if cancelled:
            ctx.client.delete_workspace(created, timeout=CANCEL_DELETE_TIMEOUT, retries=False)
        else:
            ctx.client.delete_workspace(created)
    except (ActionError, Cancelled) as exc:
        tell(f"deleting the new workspace {created} failed ({exc}): delete it by hand")
        return
    tell(f"the new workspace {created} was deleted")


def _created_meanwhile(ctx: Context, state: State, *, quick: bool) -> int | None:
    """The workspace a create that was cut off may have made: the flow left no
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


def ids(values: list[int]) -> str:
    return ", ".join(str(i) for i in values)
