"""Reading a domain's path map and pointing one path at a workspace.

Shared by zero-downtime (switch to the new workspace), canary (the new
workspace joins the path's list beside those serving it) and rollback (switch
back). ``PUT .../workspace-connections`` replaces the whole map, so the switch
reads it, changes only ``domain-path`` and writes it all back.

Names and paths: the domain is matched in any letter case and then used as the
API lists it; ``domain-path`` means the map's key that equals it once a
trailing slash is ignored (a key that differs only in letter case is refused,
never doubled). The Check phase compares the map with the team's workspaces:
ids that no longer exist are never previous, and on other paths a warning.

Between the read and the write the switch applies the superseded rule
(``steps/superseded.py``): a newer release of this repository on the path
makes it write nothing.

Cancellation is held back during the switch, so it is never cut in half, and
the switch fits the runner's cancel budget: each of its requests waits at
most ``SWITCH_READ_SECONDS`` for an answer, and once a signal came, no retry
goes past the cancel budget. Its outputs are set inside the shielded block.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from ..context import Context
from ..errors import ActionError, ConfigError, Rejected, outcome_unknown
from ..inputs import normalise_path, parse_domain
from ..models import DomainInfo, DomainMap, Workspace
from ..timings import SWITCH_READ_SECONDS, SWITCH_SECONDS, Deadline
from .creation import State, id_list, ids
from .ownership import Start
from .superseded import find_newer, superseded


def find_domain(ctx: Context, domains: list[DomainInfo]) -> DomainInfo:
    """The ``domain`` input's domain among the team's, matched in any letter case
    (an IDN by its xn-- form); an error naming the inputs when it is not there.
    From then on the run uses the name as the API lists it, for every call and
    the URL: the API's routes may take it in that spelling only."""
    config = ctx.config
    for domain in domains:
        if _ascii(domain.name) == config.domain:
            if domain.name != config.domain:
                ctx.config = replace(config, domain=domain.name)
            return domain
    known = ", ".join(sorted(d.name for d in domains)) or "none"
    raise ActionError(
        f"domain {domain_label(ctx)} (input 'domain') is not a domain of team "
        f"{config.team_id} (input 'team-id'); the team's domains: {known}. Check both inputs"
    )


def _ascii(name: str) -> str:
    try:
        return parse_domain("domain", name)
    except ConfigError:
        return name.lower()


def domain_label(ctx: Context) -> str:
    """The domain as the run uses it, with the input's spelling beside it when
    that differs (an IDN's Unicode form, another letter case)."""
    config = ctx.config
    given = config.domain_input.strip().rstrip(".")
    if not given or given == config.domain:
        return config.domain
    return f"{config.domain} (input 'domain': {given})"


def path_key(ctx: Context, mapping: DomainMap) -> str:
    """The key of the domain's map that ``domain-path`` means: the one equal to it
    once a trailing slash is ignored (as Codesphere's proxy matches paths), else
    ``domain-path`` itself (a path the map does not have yet). Raises
    ActionError when a key differs from it only in letter case, or when two keys
    are the same path: a near-twin is never added beside a path."""
    config = ctx.config
    wanted = config.domain_path
    same = sorted(k for k in mapping if normalise_path(k) == wanted)
    if len(same) > 1:
        raise ActionError(
            f"the domain {config.domain} lists the path {wanted} twice, as "
            f"{' and '.join(repr(k) for k in same)}: Codesphere's proxy takes them for one "
            "path, so which one serves is unclear. Remove one of them from the domain in "
            "Codesphere, then re-run"
        )
    if same:
        return same[0]
    twins = sorted(k for k in mapping if normalise_path(k).lower() == wanted.lower())
    if twins:
        raise ActionError(
            f"input 'domain-path' is '{wanted}', but the domain {config.domain} has the path "
            f"'{twins[0]}', which differs from it only in letter case (paths are "
            f"case-sensitive): set domain-path to '{twins[0]}' to release that path; a "
            "near-twin is not added beside it"
        )
    return wanted


def check_map(ctx: Context, state: State, domain: DomainInfo, team: list[Workspace]) -> None:
    """Before anything is created or switched: compare the domain's map with the
    team's workspaces (``team``). An id that no longer exists is not previous on
    ``domain-path`` (never in previous-workspace-id, never deleted, never a way
    back: ``state.stale``); on another path it is a warning, since that path is
    not the release's to change and Codesphere may refuse the whole map for it.
    Raises ActionError for a path that ``path_key`` refuses."""
    config = ctx.config
    key = path_key(ctx, domain.workspaces)
    known = {w.id for w in team}
    elsewhere = []
    for path, listed in sorted(domain.workspaces.items()):
        gone = [i for i in listed if i not in known]
        state.stale.update(gone)
        if gone and path == key:
            ctx.reporter.info(
                f"The domain lists workspace {ids(gone)} on {path}, which no longer exists "
                f"(not in team {config.team_id}): not counted as previous (nothing to keep, "
                "delete or go back to); the switch leaves it out of that path"
            )
        elif gone:
            elsewhere.append(f"{path} lists {ids(gone)}")
    if elsewhere:
        ctx.reporter.warning(
            f"The domain {config.domain} lists workspaces that no longer exist (not in team "
            f"{config.team_id}): {'; '.join(elsewhere)}. Those paths are not this release's "
            "to change, so they are written back as they are; should Codesphere refuse the "
            "map for them, remove them from the domain in Codesphere",
            title="Deleted workspace on the domain",
        )


def domain_map(ctx: Context, deadline: Deadline, *, read_timeout: float | None = None) -> DomainMap:
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


def switch_domain(
    ctx: Context,
    state: State,
    targets: list[int],
    *,
    started: Start | None,
    own: str = "",
    join: bool = False,
) -> None:
    """Point ``domain-path`` at ``targets`` (the path's existing key, see
    ``path_key``), every other path as it was; with ``join``, at the ids that
    serve it as the map is read, then ``targets`` (a canary beside them). Record
    the ids that served it before in ``state.previous`` and the
    ``previous-workspace-id`` output (ids that no longer exist left out:
    ``state.stale``), what it points at now in ``state.targets``, and set
    ``domain-url``.
    Between the read and the write, the superseded rule (``steps/superseded.py``):
    a workspace on the path with this repository's mark that started after
    ``started`` (None: the rule does not apply) makes the switch write nothing
    and raise Superseded, naming it against ``own`` (what is being released)."""
    with ctx.guard.shield():
        deadline = ctx.deadline(SWITCH_SECONDS)
        current = domain_map(ctx, deadline, read_timeout=SWITCH_READ_SECONDS)
        key = path_key(ctx, current)
        skip = {*targets, *state.stale}
        newer = find_newer(
            ctx, current, key, started, deadline, skip=skip, read_timeout=SWITCH_READ_SECONDS
        )
        previous = previous_of(current, key, targets, state.stale)
        if join:
            targets = [*previous, *targets]
        now = None if newer else _write(ctx, state, current, key, targets, previous, deadline)
        if now is not None and join:
            ctx.reporter.info(
                f"Workspace {ids(targets[len(previous) :])} joined {ctx.config.domain_url} beside "
                f"{ids(previous) or 'nothing'}: about 1 in {len(targets)} of the users go to it"
            )
    if newer is not None:
        assert started is not None  # find_newer finds none without it
        raise superseded(ctx, newer, started, own or "this release")
    if now is not None and not now.same_as(current.with_path(key, targets)):
        ctx.reporter.warning(
            f"The domain's map after the switch differs from the one written: {now.describe()} "
            "(another change at the same moment?)"
        )


def _write(
    ctx: Context,
    state: State,
    current: DomainMap,
    key: str,
    targets: list[int],
    previous: list[int],
    deadline: Deadline,
) -> DomainMap:
    """The switch's write (see ``switch_domain``); the map as it is afterwards."""
    config = ctx.config
    state.path, state.targets, state.previous = key, list(targets), previous
    wanted = current.with_path(key, targets)
    ctx.reporter.info(
        f"Pointing {config.domain_url} at workspace {ids(targets)} "
        f"(was {ids(state.previous) or 'nothing'})"
    )
    try:
        now = write_map(ctx, wanted, deadline, key)
    except ActionError as exc:
        # A lost answer, a gateway's 5xx or an unreadable answer may still land
        # (the map read back, write_map, showed it had not yet); any other
        # error answer turned the switch down.
        state.switch_unknown = outcome_unknown(exc)
        if isinstance(exc, Rejected):
            stale = _stale_elsewhere(ctx, state, wanted, key, deadline)
            if stale:
                raise ActionError(
                    f"Codesphere refused the new map of the domain {config.domain}: {stale}, "
                    "which no longer exists. That path is not this release's to change: "
                    "remove it from the domain in Codesphere, then re-run. "
                    f"The API said: {exc}"
                ) from None
        raise
    state.switched = True
    state.switch_unknown = False
    ctx.result.set("previous-workspace-id", id_list(state.previous))
    ctx.result.set("domain-url", config.domain_url)
    return now


def previous_of(
    mapping: DomainMap, key: str, targets: Collection[int], stale: Collection[int]
) -> list[int]:
    """The workspaces a switch of the path ``key`` to ``targets`` replaces: those
    that served it, but the targets and ids that no longer exist."""
    return [i for i in mapping.ids(key) if i not in targets and i not in stale]


def _stale_elsewhere(
    ctx: Context, state: State, wanted: DomainMap, key: str, deadline: Deadline
) -> str:
    """ "path /api lists workspace 12" for the ids on paths other than ``key`` that
    no longer exist ("" for none): as the Check phase found them, else as the
    team's workspaces show now (a workspace deleted during the build)."""
    other = {path: listed for path, listed in wanted.items() if path != key}
    stale = state.stale
    if not any(i in stale for listed in other.values() for i in listed):
        assert ctx.config.team_id is not None
        try:
            team = ctx.client.list_team_workspaces(ctx.config.team_id, deadline=deadline)
        except ActionError:
            return ""
        known = {w.id for w in team}
        stale = {i for listed in other.values() for i in listed if i not in known}
    found = [
        f"path {path} lists workspace {ids(gone)}"
        for path, listed in sorted(other.items())
        if (gone := [i for i in listed if i in stale])
    ]
    return "; ".join(found)


def write_map(ctx: Context, wanted: DomainMap, deadline: Deadline, key: str) -> DomainMap:
    """PUT the map; return the map as it is afterwards. When the answer is lost,
    the map read back says whether the path ``key`` was written."""
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
            now = domain_map(ctx, deadline, read_timeout=SWITCH_READ_SECONDS)
        except ActionError:
            raise exc from None
        if not now.lists(key, wanted.ids(key)):  # in any order: the API may list its own
            raise
        return now
