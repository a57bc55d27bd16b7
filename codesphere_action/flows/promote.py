"""The promote and rollback flows: point ``domain-path`` of ``domain`` at
``workspace-id``. One operation, aimed forward or back:

- promote: a release staged with ``switch: false`` (its ``workspace-id``
  output), once a person or a test job approved it;
- rollback: the workspace that served before a release (the release's
  ``previous-workspace-id`` output).

Before anything changes the workspace must exist, belong to ``team-id``, run,
and have its run stage up (every customer server ``running``), and pass the
health check when ``health-check-path`` is set; otherwise the flow is refused
and the domain untouched. The action never starts a workspace here: a way back
must be quick and sure, and a stage that has to start first is neither. The
switch is the one zero-downtime uses (read the map, replace only
``domain-path``, write the whole map back, cancellation held back); right
after it the target's mark (when this repository's) says released and names
the workspaces it replaced, as a release's own does; then the domain check
and ``delete-previous`` under the deletion rule.

A promote never replaces a newer release (``steps/superseded.py``): when the
release serving the path started after the promoted workspace's, it changes
nothing and ends ``superseded``. A rollback goes back on purpose and is
exempt.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, Cancelled, NotFound, Refused
from ..github import sentence
from ..models import DomainMap, Workspace
from ..plan import Plan
from ..steps.creation import State, id_list, ids
from ..steps.domain import (
    check_map,
    domain_label,
    find_domain,
    path_key,
    previous_of,
    switch_domain,
)
from ..steps.dry_run import label, previous_rows, stop_if_dry_run, switch_plan
from ..steps.ownership import Start, is_ours, read_mark, routes
from ..steps.release import delete_previous, mark_switched
from ..steps.superseded import find_newer, release_start, superseded
from ..steps.verify import check_commit, check_domain, check_health
from ..steps.workspace import describe
from ..timings import CHECK_SECONDS, Deadline
from ..waiting import relevant


def run(ctx: Context) -> None:
    targets = list(ctx.config.workspace_ids)
    assert targets  # config guarantees it for these flows
    state = State.for_run(ctx)
    try:
        _promote(ctx, state, targets)
    except (Exception, Cancelled):
        config = ctx.config
        if state.switched:
            ctx.result.aftermath.append(
                f"the domain {config.domain_url} points at workspace {ids(targets)} now "
                f"(before: {ids(state.previous) or 'nothing'})"
            )
        elif not state.switched_back:
            ctx.result.aftermath.append(f"the domain {config.domain} is untouched")
        raise


def _promote(ctx: Context, state: State, targets: list[int]) -> None:
    verb = "promote" if ctx.config.flow == "promote" else "rollback"
    with ctx.phase("Check") as phase:
        deadline = ctx.deadline(CHECK_SECONDS)
        workspaces = [_target(ctx, workspace_id, verb, deadline) for workspace_id in targets]
        ctx.result.set("workspace-id", id_list(targets))
        for workspace_id in targets:
            _check_up(ctx, workspace_id, verb, deadline)
        try:
            describe(ctx, workspaces[0])  # several (a rollback): the first's URL and commit
        except ActionError as exc:  # the outputs are a courtesy: no reason to stay down
            ctx.reporter.warning(f"could not read workspace {targets[0]}'s URL or commit: {exc}")
        ctx.result.set("workspace-id", id_list(targets))  # describe() set the first's alone
        ctx.result.workspace_name = ", ".join(w.name for w in workspaces)
        others = [t for t in targets if _another_repository(ctx, t, verb, deadline)]
        if not others:
            check_commit(ctx)
        current = _domain(ctx, state, deadline)
        # promote takes exactly one id; rollback is exempt (release_start says so).
        started = release_start(ctx, targets[0], deadline)
        _not_superseded(ctx, state, current, targets, started, deadline)
        phase.detail = f"workspace {ids(targets)} {'is' if len(targets) == 1 else 'are'} up"
    for workspace in workspaces:
        check_health(ctx, workspace)

    config = ctx.config  # after the Check: the domain as the API spells it
    name = ctx.result.workspace_name
    if current.lists(path_key(ctx, current), targets):
        ctx.result.set("domain-url", config.domain_url)
        ctx.result.aftermath.append(
            f"workspace {ids(targets)} ({name}) already serves {config.domain_url} alone: "
            "nothing was changed"
        )
        ctx.result.notice = f"{config.domain_url} already served by workspace {ids(targets)}"
        stop_if_dry_run(ctx, lambda: _nothing_to_do(ctx))
        return
    stop_if_dry_run(ctx, lambda: _plan(ctx, state, current, workspaces, started))
    with ctx.phase("Switch domain"):
        switch_domain(ctx, state, targets, started=started, own=_own(ctx, targets))
        mark_switched(ctx, state, targets)  # released, naming the way back
    check_domain(ctx, state)
    moved = (
        f"Promoted {config.domain_url} to"
        if verb == "promote"
        else f"Rolled {config.domain_url} back to"
    )
    ctx.result.notice = (
        f"{moved} workspace {ids(targets)} ({name}); before: {ids(state.previous) or 'nothing'}"
    )
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            delete_previous(ctx, state.previous, keep=targets, started=started, path=state.path)


def _nothing_to_do(ctx: Context) -> Plan:
    plan = Plan(headline="change nothing")
    plan.steps.append(f"Nothing to do: {ctx.result.aftermath[-1]}")
    return plan


def _plan(
    ctx: Context,
    state: State,
    current: DomainMap,
    workspaces: list[Workspace],
    started: Start | None,
) -> Plan:
    """The dry run's plan: the switch, and what delete-previous would do."""
    config, targets = ctx.config, [w.id for w in workspaces]
    key = path_key(ctx, current)
    what = f"workspace {', '.join(label(w) for w in workspaces)}"
    plan = Plan(headline=f"point {config.domain_url} at {what}")
    switch_plan(ctx, plan, current, key, list(targets), what)
    assert config.team_id is not None
    domains = ctx.client.list_domains(config.team_id, deadline=ctx.deadline(CHECK_SECONDS))
    previous = previous_of(current, key, targets, state.stale)
    previous_rows(ctx, plan, previous, key, started=started, serving=routes(domains))
    return plan


def _not_superseded(
    ctx: Context,
    state: State,
    current: DomainMap,
    targets: list[int],
    started: Start | None,
    deadline: Deadline,
) -> None:
    """Superseded, before anything changes, when a newer release of this
    repository serves the path already (``steps/superseded.py``)."""
    key = path_key(ctx, current)
    newer = find_newer(ctx, current, key, started, deadline, skip={*targets, *state.stale})
    if newer is not None:
        assert started is not None
        raise superseded(ctx, newer, started, _own(ctx, targets))


def _own(ctx: Context, targets: list[int]) -> str:
    return f"workspace {ids(targets)} ({ctx.result.workspace_name}), the release promoted"


def _domain(ctx: Context, state: State, deadline: Deadline) -> DomainMap:
    """The domain's map, found among the team's domains (any letter case) and
    checked against the team's workspaces (``check_map``)."""
    team_id = ctx.config.team_id
    assert team_id is not None
    try:
        domains = ctx.client.list_domains(team_id, deadline=deadline)
    except ActionError as exc:
        raise ActionError(
            f"could not list the domains of team {team_id} (input 'team-id') to find "
            f"{domain_label(ctx)} (input 'domain'): {exc}"
        ) from None
    domain = find_domain(ctx, domains)
    ctx.reporter.info(f"Domain {domain_label(ctx)}: {domain.workspaces.describe()}")
    check_map(ctx, state, domain, ctx.client.list_team_workspaces(team_id, deadline=deadline))
    return domain.workspaces


def _target(ctx: Context, workspace_id: int, verb: str, deadline: Deadline) -> Workspace:
    """The workspace to point at; Refused when it is gone or another team's."""
    team_id = ctx.config.team_id
    try:
        workspace = ctx.client.get_workspace(workspace_id, deadline=deadline)
    except NotFound as exc:
        hint = (
            "the previous-workspace-id output of the release to undo"
            if verb == "rollback"
            else "the workspace-id output of the staged release (switch: false)"
        )
        raise Refused(
            f"{verb} refused: workspace {workspace_id} (input 'workspace-id') does not exist "
            f"or the token's account cannot see it. Pass the id of a workspace that still runs "
            f"({hint}). {exc}"
        ) from None
    if workspace.team_id is not None and workspace.team_id != team_id:
        raise Refused(
            f"{verb} refused: workspace {workspace_id} (input 'workspace-id') belongs to team "
            f"{workspace.team_id}, not to team {team_id} (input 'team-id'), which owns the domain"
        )
    return workspace


def _another_repository(ctx: Context, workspace_id: int, verb: str, deadline: Deadline) -> bool:
    """Whether the action made the workspace for another repository (its mark):
    a warning that names it, which the commit check would only blur ("branch
    moved on"); with ``require-commit`` the flow is refused before the switch.
    A workspace without a mark (made by hand) is not judged here."""
    config = ctx.config
    try:
        mark = read_mark(ctx, workspace_id, deadline)
    except ActionError as exc:
        if config.require_commit:
            raise Refused(
                f"{verb} refused: could not read workspace {workspace_id}'s mark to check which "
                f"repository it was released from ({exc}), and require-commit is true"
            ) from None
        ctx.reporter.warning(f"could not read workspace {workspace_id}'s mark: {exc}")
        return False
    if mark is None or is_ours(config, mark):
        return False
    theirs = mark.repository or "no repository (a run outside GitHub)"
    commit = f" (commit {mark.commit})" if mark.commit else ""
    message = (
        f"workspace {workspace_id} was created by codesphere-release for the repository "
        f"{theirs}, not for {config.run.repository or 'this repository'}: {config.domain_url} "
        f"would serve that repository's code{commit}"
    )
    if config.require_commit:
        raise Refused(
            f"{verb} refused: {message}. require-commit is true, so the domain is left as it "
            "is: check the input 'workspace-id'"
        )
    ctx.reporter.warning(
        f"{sentence(message)}. Check the input 'workspace-id' (require-commit: true refuses this)",
        title="Another repository's workspace",
    )
    return True


def _check_up(ctx: Context, workspace_id: int, verb: str, deadline: Deadline) -> None:
    """Refused unless the workspace runs and every customer server of its run
    stage is ``running``: the domain must never point at a workspace that
    cannot answer."""
    fix = (
        f"Start it first (e.g. the simple flow with workspace-id {workspace_id}), "
        f"then run the {verb} again"
    )
    if not ctx.client.is_running(workspace_id, deadline=deadline):
        raise Refused(
            f"{verb} refused: workspace {workspace_id} is not running (an on-demand workspace "
            f"that sleeps?). {fix}"
        )
    entries = relevant("run", ctx.client.stage_status(workspace_id, "run", deadline=deadline))
    down = [e for e in entries if e.state != "running"]
    if not entries or down:
        states = ", ".join(f"{e.server}/{e.replica}: {e.state}" for e in down)
        raise Refused(
            f"{verb} refused: the run stage of workspace {workspace_id} is not up "
            f"({states or 'no servers reported'}). {fix}"
        )
