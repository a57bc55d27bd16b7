"""The zero-downtime flow: a fresh workspace per release, then move the domain.

1. Check: list the team's domains (fail before creating anything when
   ``domain`` is not one of them) and settle the workspace's name (re-runs,
   see below).
2. Create the workspace (env, the create settings and the action's mark
   included), wait until it runs; with ``secret-store: vault`` store
   ``secret-env`` in its vault.
3. prepare / test / run on it (the landscape deployed before run).
4. Switch: read the domain's path map, point ``domain-path`` at the new
   workspace, write the whole map back (PUT replaces it), every other path as
   it was. Cancellation is held back during the switch.
5. Mark the workspace released right after the switch (its mark names the
   workspaces it replaced, the way back), then the domain check;
   ``delete-previous``: delete the workspaces that served the path before,
   under the deletion rule (``ownership.py``).

A release never replaces a newer one (``steps/superseded.py``): when a
workspace serving the path holds a release of this repository that started
after this run, in the Check phase or in the switch's read-check-write, the
run builds or switches nothing, deletes what it created and ends
``superseded``.

Before the switch a failure leaves the domain untouched and (with
``cleanup-on-failure``) deletes the new workspace. After the switch nothing
is undone; the error says what state things are in.

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
from ..errors import ActionError, Cancelled
from ..models import DomainInfo, Workspace
from ..plan import Plan
from ..steps.creation import State, clean_up, create_workspace, ids, remove_twins
from ..steps.domain import (
    check_map,
    domain_label,
    find_domain,
    path_key,
    previous_of,
    switch_domain,
)
from ..steps.dry_run import (
    create_step,
    label,
    previous_rows,
    stage_steps,
    stop_if_dry_run,
    switch_plan,
    vault_steps,
)
from ..steps.ownership import (
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
from ..steps.release import build, delete_previous, mark_released
from ..steps.secrets import store_in_vault
from ..steps.superseded import find_newer, superseded
from ..steps.verify import check_domain
from ..steps.workspace import describe, wait_until_running
from ..timings import CHECK_SECONDS, MARK_SECONDS, Deadline

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


def run(ctx: Context) -> None:
    state = State.for_run(ctx)
    try:
        _release(ctx, state)
    except (Exception, Cancelled) as exc:
        clean_up(ctx, state, cancelled=isinstance(exc, Cancelled))
        raise
    remove_twins(ctx, state)


def _release(ctx: Context, state: State) -> None:
    with ctx.phase("Check"):
        found = _check(ctx, state)
    config = ctx.config  # after the Check: the domain as the API spells it
    if found.live is not None:
        _report_already_live(ctx, found.live)
    stop_if_dry_run(ctx, lambda: _plan(ctx, state, found))
    if found.live is not None:
        return
    _delete_leftovers(ctx, found.leftovers)

    with ctx.phase("Create workspace") as phase:
        # One deadline for the create and the boot: workspace-timeout bounds both.
        deadline = ctx.deadline(config.workspace_timeout)
        workspace = create_workspace(ctx, state, deadline)
        ctx.reporter.info(f"Created workspace {workspace.id} ({state.name}); waiting for it to run")
        wait_until_running(ctx, workspace.id, deadline)
        store_in_vault(ctx, workspace.id, deadline)  # secret-store: vault
        phase.detail = f"workspace {workspace.id}"

    build(ctx, workspace)

    if not config.domain or not config.switch:
        ctx.reporter.info(
            f"Not switching any domain ({_why_no_switch(ctx)}): workspace {workspace.id} is staged"
        )
        mark_released(ctx, state, workspace.id, ctx.deadline(CHECK_SECONDS))
        if config.domain:
            ctx.result.done = "Staged"
            ctx.result.notice = (
                f"Staged {state.name} (workspace {workspace.id}) at "
                f"{ctx.result.outputs['workspace-url'] or 'its workspace URL'}; promote it to "
                f"{config.domain_url} with flow: promote and workspace-id {workspace.id}"
            )
        return
    with ctx.phase("Switch domain"):
        switch_domain(ctx, state, [workspace.id], started=state.mark.start, own=_own(state))
        mark_released(ctx, state, workspace.id, ctx.deadline(MARK_SECONDS))  # the way back now
    check_domain(ctx, state)
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            delete_previous(ctx, state.previous, started=state.mark.start, path=state.path)
    elif state.previous:
        ctx.reporter.info(
            f"Previous workspace(s) {ids(state.previous)} kept (delete-previous: false)"
        )


def _why_no_switch(ctx: Context) -> str:
    return "switch: false" if ctx.config.domain else "no domain given"


def _check(ctx: Context, state: State) -> Found:
    """The team's domains and workspaces: the domain (its map checked, the
    superseded rule applied) and the name (``_settle_name``)."""
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
                raise superseded(ctx, newer, started, _own(state))
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


def _delete_leftovers(ctx: Context, leftovers: list[Workspace]) -> None:
    deadline = ctx.deadline(CHECK_SECONDS)
    for workspace in leftovers:
        ctx.reporter.info(f"Deleting workspace {workspace.id} ({workspace.name}), {LEFTOVER_WHY}")
        delete_unless_serving(ctx, workspace.id, deadline)


def _plan(ctx: Context, state: State, found: Found) -> Plan:
    """The dry run's plan, from the Check's decisions (``Found``)."""
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
        plan.steps.append(f"Not switching any domain ({_why_no_switch(ctx)})")
        return plan
    current = found.domain.workspaces
    key = path_key(ctx, current)
    new = f"the new workspace ({state.name})"
    switch_plan(ctx, plan, current, key, [new], new)
    plan.headline += f" and point {config.domain_url} at it"
    previous = previous_of(current, key, [], state.stale)
    previous_rows(ctx, plan, previous, key, started=state.mark.start, serving=found.serving)
    return plan


def _own(state: State) -> str:
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


def _report_already_live(ctx: Context, workspace: Workspace) -> None:
    config = ctx.config
    describe(ctx, workspace)
    switching = bool(config.domain) and config.switch
    where = config.domain_url if switching else "its workspace URL"
    if switching:
        ctx.result.set("domain-url", config.domain_url)
    ctx.result.aftermath.append(
        f"workspace {workspace.id} ({workspace.name}) already serves {where}: this commit is "
        "live, nothing was changed"
    )
    ctx.result.notice = f"{workspace.name} already serves {where}; nothing to release"
