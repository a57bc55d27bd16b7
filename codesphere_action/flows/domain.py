"""Reading a domain's path map and pointing one path at a workspace.

Shared by zero-downtime (switch to the new workspace) and rollback (switch
back). ``PUT .../workspace-connections`` replaces the whole map, so the switch
reads it, changes only ``domain-path`` and writes it all back, with
cancellation held back: a switch is never cut in half.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError
from .creation import State, ids


def domain_map(ctx: Context) -> dict[str, list[int]]:
    """The domain's ``{path: [workspace ids]}``; an error naming the inputs when
    it cannot be read."""
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
    return {str(path): [int(i) for i in value] for path, value in raw.items()}


def describe_map(mapping: dict[str, list[int]]) -> str:
    return ", ".join(f"{p} -> {ids(v)}" for p, v in sorted(mapping.items())) or "no paths connected"


def switch_domain(ctx: Context, state: State, workspace_id: int) -> None:
    """Point ``domain-path`` at ``workspace_id``, every other path as it was;
    record the ids that served it before in ``state.previous`` and the
    ``previous-workspace-id`` output, and set ``domain-url``."""
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    with ctx.guard.shield():
        current = domain_map(ctx)
        state.previous = [i for i in current.get(config.domain_path, []) if i != workspace_id]
        wanted = {**current, config.domain_path: [workspace_id]}
        ctx.reporter.info(
            f"Pointing {config.domain_url} at workspace {workspace_id} "
            f"(was {ids(state.previous) or 'nothing'})"
        )
        try:
            answer = client.set_domain_connections(config.team_id, config.domain, wanted)
            now = {str(p): [int(i) for i in v] for p, v in answer["workspaces"].items()}
        except ActionError:
            # The PUT may have landed: the map says whether the switch happened.
            now = domain_map(ctx)
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
