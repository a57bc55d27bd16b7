"""A fresh workspace per release: what zero-downtime and canary share before
their switch (the Check phase, the name, the create) and the dry run's plan.

The Check lists the team's domains (a ``domain`` that is not one of them fails
before anything is created), applies the superseded rule to the path
(``steps/superseded.py``) and settles the workspace's name.

The name (``<repo>-<sha7>`` or ``workspace-name``), decided in ``_settle_name``:
for each of ``name``, ``name-2``, ``name-3``, ... the workspaces of that name
are judged:
- made by this action for this repository and commit, released, and serving
  ``domain-path`` (without ``domain`` or with ``switch: false``: serving
  nothing): this release is live already; succeed and change nothing;
- made by an earlier attempt of this same run (a lower GITHUB_RUN_ATTEMPT),
  never released, serving nothing: a leftover of a failed or cancelled
  attempt; deleted;
- anything else (serves any domain, made by hand or for another repository,
  an earlier release kept for rollback, another run's work): never touched;
  the next name is tried, and the log says why. One warning sums the names
  passed over up (GitHub shows ten annotations per step); when all 99 are
  taken, the error does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..context import Context
from ..errors import ActionError
from ..github import format_seconds
from ..models import DomainInfo, Workspace
from ..plan import Plan
from ..timings import BAKE_CHECK_SECONDS, CHECK_SECONDS, Deadline
from .creation import State, create_workspace, id_list, ids
from .domain import check_map, domain_label, find_domain, path_key, previous_of
from .dry_run import create_step, label, previous_rows, stage_steps, switch_plan, vault_steps
from .ownership import (
    BUILDING,
    RELEASED,
    Mark,
    candidate_names,
    copy_of,
    delete_unless_serving,
    is_ours,
    read_mark,
    routes,
)
from .secrets import store_in_vault
from .superseded import find_newer, superseded
from .workspace import describe, wait_until_running

LIVE, LEFTOVER, KEEP = "live", "leftover", "keep"
LEFTOVER_WHY = "left over from an earlier attempt of this run; it serves nothing"


@dataclass(frozen=True)
class Verdict:
    kind: str
    why: str = ""
    group: str = ""  # why, in a few words after a count, for the one summary warning


# The groups of Verdict.group, each read after a number ("2 serve a domain").
SERVING = "serve a domain"
BY_HAND = "not created by codesphere-release"


@dataclass
class Found:
    """What the Check phase decided, which the plan (dry-run) and the run share."""

    domain: DomainInfo | None = None  # the domain to switch, as the team lists it
    serving: dict[int, list[str]] = field(default_factory=dict)  # routes per workspace
    live: Workspace | None = None  # this release, live already: nothing to do
    leftovers: list[Workspace] = field(default_factory=list)  # of earlier attempts: deleted
    kept: list[tuple[Workspace, str]] = field(default_factory=list)  # names passed over


def check_release(ctx: Context, state: State) -> Found:
    """The Check phase: the team's domains and workspaces; the domain (its map
    checked, the superseded rule applied) and the name (``_settle_name``)."""
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    deadline = ctx.deadline(CHECK_SECONDS)
    domains = client.list_domains(config.team_id, deadline=deadline)
    team = client.list_team_workspaces(config.team_id, deadline=deadline)
    found = Found(serving=routes(domains))
    if config.domain:
        found.domain = domain = find_domain(ctx, domains)
        ctx.reporter.info(f"Domain {domain_label(ctx)}: {domain.workspaces.describe()}")
        check_map(ctx, state, domain, team)
        if config.switch:  # a newer release serves the path already: build nothing
            key, started = path_key(ctx, domain.workspaces), state.mark.start
            newer = find_newer(ctx, domain.workspaces, key, started, deadline, skip=state.stale)
            if newer is not None:
                raise superseded(ctx, newer, started, own_release(state))
    _settle_name(ctx, state, team, found, deadline)
    return found


def _settle_name(
    ctx: Context, state: State, team: list[Workspace], found: Found, deadline: Deadline
) -> None:
    """Apply the naming rules (module docstring) to the team's workspaces: set
    ``state.name``, and in ``found`` the workspace that is this release already
    live, the leftovers to delete and the workspaces passed over."""
    taken: list[Verdict] = []  # one per workspace left alone, for the summary
    for count, name in enumerate(candidate_names(state.name)):
        same = [w for w in team if w.name == name]
        verdicts = [(w, _judge(ctx, w, found.serving.get(w.id, []), deadline)) for w in same]
        for workspace, verdict in verdicts:
            if verdict.kind == LIVE:
                state.name = name
                _say_taken(ctx, count, taken, f"this commit is live in {name}")
                found.live = workspace
                return
        kept = [(w, v) for w, v in verdicts if v.kind == KEEP]
        if not kept:
            found.leftovers = [w for w, _verdict in verdicts]
            _say_taken(ctx, count, taken, f"this release goes into {name}")
            state.name = name
            ctx.result.workspace_name = name
            return
        for workspace, verdict in kept:
            # The details go to the log; one warning sums them up (GitHub shows
            # ten annotations per step).
            ctx.reporter.info(
                f"A workspace named {name} ({workspace.id}) is left alone: {verdict.why}"
            )
            found.kept.append((workspace, verdict.why))
            taken.append(verdict)
    raise ActionError(
        f"no free workspace name from {state.name} to {state.name}-99: all 99 names are taken "
        f"({_reasons(taken)}; the log lists each). Set the input 'workspace-name', or delete "
        "the workspaces of those names that are no longer needed"
    )


def delete_leftovers(ctx: Context, leftovers: list[Workspace]) -> None:
    deadline = ctx.deadline(CHECK_SECONDS)
    for workspace in leftovers:
        ctx.reporter.info(f"Deleting workspace {workspace.id} ({workspace.name}), {LEFTOVER_WHY}")
        delete_unless_serving(ctx, workspace.id, deadline)


def new_workspace(ctx: Context, state: State) -> Workspace:
    """The Create workspace phase: create it (env, the create settings and the
    action's mark included), wait until it runs; with ``secret-store: vault``
    store ``secret-env`` in its vault."""
    with ctx.phase("Create workspace") as phase:
        # One deadline for the create and the boot: workspace-timeout bounds both.
        deadline = ctx.deadline(ctx.config.workspace_timeout)
        workspace = create_workspace(ctx, state, deadline)
        ctx.reporter.info(f"Created workspace {workspace.id} ({state.name}); waiting for it to run")
        wait_until_running(ctx, workspace.id, deadline)
        store_in_vault(ctx, workspace.id, deadline)  # secret-store: vault
        phase.detail = f"workspace {workspace.id}"
    return workspace


def release_plan(ctx: Context, state: State, found: Found, *, join: bool = False) -> Plan:
    """The dry run's plan, from the Check's decisions (``Found``); ``join``: the
    new workspace joins the path beside those serving it (canary)."""
    config, plan = ctx.config, Plan()
    if found.live is not None:
        plan.headline = "change nothing: this commit is live already"
        plan.steps.append(f"Nothing to release: {ctx.result.aftermath[-1]}")
        return plan
    for workspace in found.leftovers:
        plan.delete(label(workspace), LEFTOVER_WHY)
    for workspace, why in found.kept:
        plan.keep(label(workspace), f"{why}; the release goes into {state.name}")
    plan.steps += [create_step(ctx, state), *vault_steps(ctx, "the new workspace")]
    plan.steps += stage_steps(ctx)
    plan.headline = f"create {state.name}"
    if found.domain is None or not config.switch:
        why = "switch: false" if config.domain else "no domain given"
        plan.steps.append(f"Not switching any domain ({why})")
        return plan
    current = found.domain.workspaces
    key = path_key(ctx, current)
    new = f"the new workspace ({state.name})"
    previous = previous_of(current, key, [], state.stale)
    if join:
        switch_plan(ctx, plan, current, key, [*previous, new], new)
        plan.steps[-1] = (
            f"Add {new} to {config.domain_url} beside workspace {ids(previous) or 'nothing'}: "
            f"it gets about 1 in {len(previous) + 1} of the users"
        )
        plan.headline += f" and add it to {config.domain_url}"
    else:
        switch_plan(ctx, plan, current, key, [new], new)
        plan.headline += f" and point {config.domain_url} at it"
    if config.bake_time:
        plan.steps.append(_bake_step(ctx, previous, join=join))
    elif join:
        plan.steps.append(
            "Stop there: the canary serves beside what served the path; flow: promote "
            "completes it, flow: rollback undoes it"
        )
        deadline = ctx.deadline(CHECK_SECONDS)
        for workspace_id in previous:
            shown = label(ctx.client.get_workspace(workspace_id, deadline=deadline))
            plan.keep(shown, f"it serves {key} beside the canary")
        return plan
    previous_rows(ctx, plan, previous, key, started=state.mark.start, serving=found.serving)
    return plan


def _bake_step(ctx: Context, previous: list[int], *, join: bool) -> str:
    config = ctx.config
    then = f"point {config.domain_url} at the new workspace alone" if join else "keep the switch"
    return (
        f"Bake for {format_seconds(config.bake_time)}: GET {config.health.path} on the new "
        f"workspace and through {config.domain_url} every {BAKE_CHECK_SECONDS:.0f} s; on a "
        f"failure point it back at {ids(previous) or 'nothing'} and delete the new workspace, "
        f"else {then}"
    )


def own_release(state: State) -> str:
    """This release, as the superseded rule names it."""
    commit = f", commit {state.mark.commit}" if state.mark.commit else ""
    return f"this release ({state.name}{commit}, run {state.mark.run})"


def _say_taken(ctx: Context, names: int, taken: list[Verdict], then: str) -> None:
    """One warning for the names passed over, if any; the log lists each."""
    if names:
        ctx.reporter.warning(
            f"{names} {'name was' if names == 1 else 'names were'} taken by workspaces that "
            f"are left alone ({_reasons(taken)}; the log lists each): {then}",
            title="Workspace names taken",
        )


def _reasons(taken: list[Verdict]) -> str:
    counts = Counter(v.group or v.why for v in taken)
    return ", ".join(f"{n} {group}" for group, n in counts.most_common())


def _judge(ctx: Context, workspace: Workspace, serving: list[str], deadline: Deadline) -> Verdict:
    config = ctx.config
    mark = read_mark(ctx, workspace.id, deadline)
    if not is_ours(config, mark) or mark is None:
        group = SERVING if serving else BY_HAND
        if mark is None:
            why = _serving_or(serving, "it was not created by codesphere-release")
            return Verdict(KEEP, why, group)
        why = _serving_or(serving, f"it was created by codesphere-release for {mark.repository}")
        return Verdict(KEEP, why, group if serving else "made for another repository")
    # Routes are "<domain as the API lists it><path as the map spells it>": a
    # trailing slash does not count (see domain.path_key).
    route = f"{config.domain}{config.domain_path}".rstrip("/")
    switching = bool(config.domain) and config.switch
    same_commit = bool(mark.commit) and mark.commit == config.deployment_ref[:12]
    serves_route = any(r.rstrip("/") == route for r in serving)
    if same_commit and mark.state == RELEASED and (serves_route if switching else not serving):
        return Verdict(LIVE)
    if serving:
        return Verdict(KEEP, f"it serves {', '.join(serving)}", SERVING)
    if copy_of(workspace):  # the deletion rule: never a copy, whatever its mark says
        return Verdict(KEEP, copy_of(workspace), BY_HAND)
    if mark.state == BUILDING and mark.earlier_attempt_of(config.run.id):
        return Verdict(LEFTOVER)
    group = "an earlier release" if mark.state == RELEASED else "in the works of another run"
    return Verdict(KEEP, _why_not_leftover(mark), group)


def _serving_or(serving: list[str], why: str) -> str:
    return f"it serves {', '.join(serving)}" if serving else why


def _why_not_leftover(mark: Mark) -> str:
    if mark.state == RELEASED:
        return "it is an earlier release (kept, e.g. to roll back to)"
    return (
        f"run {mark.run} made it and may still be working on it; delete it by hand if that "
        "run is over"
    )


def report_already_live(ctx: Context, state: State, found: Found) -> None:
    """This commit is live already (``found.live``): say so; nothing changes. A
    canary that still serves beside other workspaces says so as its first run
    did (``serving_beside``), and gives them, the way back, as
    ``previous-workspace-id`` (ids that no longer exist left out)."""
    config, workspace = ctx.config, found.live
    assert workspace is not None
    describe(ctx, workspace)
    switching = bool(config.domain) and config.switch
    where = config.domain_url if switching else "its workspace URL"
    if switching:
        ctx.result.set("domain-url", config.domain_url)
    beside: list[int] = []
    if config.spec.joins and found.domain is not None:
        current = found.domain.workspaces
        beside = previous_of(current, path_key(ctx, current), [workspace.id], state.stale)
    if beside:
        ctx.result.set("previous-workspace-id", id_list(beside))
        serving_beside(ctx, workspace, beside)
    else:
        ctx.result.notice = f"{workspace.name} already serves {where}; nothing to release"
    ctx.result.aftermath.append(  # last: the dry run's plan says it
        f"workspace {workspace.id} ({workspace.name}) already serves {where}: this commit is "
        "live, nothing was changed"
    )


def serving_beside(ctx: Context, workspace: Workspace, previous: list[int]) -> None:
    """A canary that serves beside the previous workspaces (a canary without a
    bake ends so, and a re-run finds it so): the notice and the summary say it,
    and how to complete or undo it; with none, that it serves alone."""
    config = ctx.config
    if not previous:
        ctx.result.notice = (
            f"Canary: workspace {workspace.id} ({workspace.name}) serves {config.domain_url} "
            "alone (nothing served it before)"
        )
        return
    share = f"about 1 in {len(previous) + 1} of the users"
    ctx.result.notice = (
        f"Canary: workspace {workspace.id} ({workspace.name}) serves {config.domain_url} "
        f"beside {_workspaces(previous)} ({share})"
    )
    ctx.result.aftermath.append(
        f"the canary, workspace {workspace.id}, serves {config.domain_url} beside the previous "
        f"{_workspaces(previous)}: Codesphere's load balancer gives it {share} (there are "
        f"no weights) and keeps each user on one workspace. Complete it with flow: promote and "
        f"workspace-id {workspace.id}; undo it with flow: rollback and workspace-id "
        f"{id_list(previous)}"
    )
    if config.delete_previous:
        ctx.reporter.info(
            "delete-previous applies once the canary is completed: pass it to flow: promote"
        )


def _workspaces(workspace_ids: list[int]) -> str:
    """``workspace 12`` or ``workspaces 12, 13``."""
    return f"workspace{'s' if len(workspace_ids) > 1 else ''} {ids(workspace_ids)}"
