"""Reading a domain's path map and pointing one path at a workspace.

Shared by zero-downtime (switch to the new workspace) and rollback (switch
back). ``PUT .../workspace-connections`` replaces the whole map, so the switch
reads it, changes only ``domain-path`` and writes it all back.

Cancellation is held back during the switch, so it is never cut in half, and
the switch fits the runner's cancel budget: each of its requests waits at
most ``SWITCH_READ_SECONDS`` for an answer, and once a signal came, no retry
goes past the cancel budget. Its outputs are set inside the shielded block.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, ApiError
from ..models import DomainInfo
from .creation import State, ids

SWITCH_SECONDS = 60.0  # the switch's requests, retries included, end within this
# An answer in flight when the runner cancels still leaves time to check the
# map and report within SIGINT's 7.5 s.
SWITCH_READ_SECONDS = 3.0


def find_domain(ctx: Context, domains: list[DomainInfo]) -> DomainInfo:
    """The ``domain`` input's domain among the team's; an error naming the inputs
    when it is not there."""
    config = ctx.config
    for domain in domains:
        if domain.name.lower() == config.domain:
            return domain
    known = ", ".join(sorted(d.name for d in domains)) or "none"
    raise ActionError(
        f"domain {config.domain} (input 'domain') is not a domain of team {config.team_id} "
        f"(input 'team-id'); the team's domains: {known}. Check both inputs"
    )


def domain_map(
    ctx: Context, *, deadline: float | None = None, read_timeout: float | None = None
) -> dict[str, list[int]]:
    """The domain's ``{path: [workspace ids]}``; an error naming the inputs when
    it cannot be read."""
    config = ctx.config
    assert config.team_id is not None
    try:
        domain = ctx.client.get_domain(
            config.team_id, config.domain, deadline=deadline, read_timeout=read_timeout
        )
    except ActionError as exc:
        raise ActionError(
            f"could not read domain {config.domain} of team {config.team_id} (inputs 'domain', "
            f"'team-id'): {exc}"
        ) from None
    return domain.workspaces


def describe_map(mapping: dict[str, list[int]]) -> str:
    return ", ".join(f"{p} -> {ids(v)}" for p, v in sorted(mapping.items())) or "no paths connected"


def switch_domain(ctx: Context, state: State, workspace_id: int) -> None:
    """Point ``domain-path`` at ``workspace_id``, every other path as it was;
    record the ids that served it before in ``state.previous`` and the
    ``previous-workspace-id`` output, and set ``domain-url``."""
    config = ctx.config
    with ctx.guard.shield():
        deadline = ctx.clock.now() + SWITCH_SECONDS
        current = domain_map(ctx, deadline=deadline, read_timeout=SWITCH_READ_SECONDS)
        state.previous = [i for i in current.get(config.domain_path, []) if i != workspace_id]
        wanted = {**current, config.domain_path: [workspace_id]}
        ctx.reporter.info(
            f"Pointing {config.domain_url} at workspace {workspace_id} "
            f"(was {ids(state.previous) or 'nothing'})"
        )
        try:
            now = write_map(ctx, wanted, deadline)
        except ActionError as exc:
            # A refusal (4xx) is definite; anything else may still land.
            state.switch_unknown = not (isinstance(exc, ApiError) and exc.status_code < 500)
            raise
        state.switched = True
        state.switch_unknown = False
        ctx.result.set("previous-workspace-id", ",".join(str(i) for i in state.previous))
        ctx.result.set("domain-url", config.domain_url)
    if now != wanted:
        ctx.reporter.warning(
            f"The domain's map after the switch differs from the one written: {now} "
            "(another change at the same moment?)"
        )


def write_map(ctx: Context, wanted: dict[str, list[int]], deadline: float) -> dict[str, list[int]]:
    """PUT the map; return the map as it is afterwards. When the answer is lost,
    the map read back says whether ``domain-path`` was written."""
    config = ctx.config
    assert config.team_id is not None
    try:
        return ctx.client.set_domain_connections(
            config.team_id,
            config.domain,
            wanted,
            deadline=deadline,
            read_timeout=SWITCH_READ_SECONDS,
        ).workspaces
    except ActionError as exc:
        try:
            now = domain_map(ctx, deadline=deadline, read_timeout=SWITCH_READ_SECONDS)
        except ActionError:
            raise exc from None
        if now.get(config.domain_path) != wanted.get(config.domain_path):
            raise
        return now
