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
5. Mark the workspace released; ``delete-previous``: delete the workspaces that
   served the path before, under the deletion rule (``ownership.py``).

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
from dataclasses import dataclass

from ..context import Context
from ..errors import ActionError, Cancelled
from ..models import Workspace
from ..steps.creation import State, clean_up, create_workspace, ids, remove_twins
from ..steps.domain import check_map, domain_label, find_domain, switch_domain
from ..steps.ownership import (
    BUILDING,
    RELEASED,
    Mark,
    candidate_names,
    delete_unless_serving,
    is_ours,
    read_mark,
    routes,
)
from ..steps.release import build, delete_previous, mark_released
from ..steps.secrets import store_in_vault
from ..steps.verify import check_domain
from ..steps.workspace import describe, wait_until_running
from ..timings import CHECK_SECONDS, Deadline

LIVE, LEFTOVER, KEEP = "live", "leftover", "keep"


@dataclass(frozen=True)
class Verdict:
    kind: str
    why: str = ""
    group: str = ""  # why, in a few words after a count, for the one summary warning


# The groups of Verdict.group, each read after a number ("2 serve a domain").
SERVING = "serve a domain"
BY_HAND = "not created by codesphere-release"


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
        live = _settle_name(ctx, state)
    config = ctx.config  # after the Check: the domain as the API spells it
    if live is not None:
        _report_already_live(ctx, live)
        return

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
        why = "switch: false" if config.domain else "no domain given"
        ctx.reporter.info(f"Not switching any domain ({why}): workspace {workspace.id} is staged")
        mark_released(ctx, state, workspace.id)
        if config.domain:
            ctx.result.done = "Staged"
            ctx.result.notice = (
                f"Staged {state.name} (workspace {workspace.id}) at "
                f"{ctx.result.outputs['workspace-url'] or 'its workspace URL'}; promote it to "
                f"{config.domain_url} with flow: promote and workspace-id {workspace.id}"
            )
        return
    with ctx.phase("Switch domain"):
        switch_domain(ctx, state, [workspace.id])
    check_domain(ctx, state)
    mark_released(ctx, state, workspace.id)
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            delete_previous(ctx, state.previous)
    elif state.previous:
        ctx.reporter.info(
            f"Previous workspace(s) {ids(state.previous)} kept (delete-previous: false)"
        )


def _settle_name(ctx: Context, state: State) -> Workspace | None:
    """Apply the naming rules (module docstring); return the workspace that is
    this release already live, if any. Sets ``state.name``."""
    config, client = ctx.config, ctx.client
    assert config.team_id is not None
    deadline = ctx.deadline(CHECK_SECONDS)
    domains = client.list_domains(config.team_id, deadline=deadline)
    team = client.list_team_workspaces(config.team_id, deadline=deadline)
    if config.domain:
        domain = find_domain(ctx, domains)
        ctx.reporter.info(f"Domain {domain_label(ctx)}: {domain.workspaces.describe()}")
        check_map(ctx, state, domain, team)
    serving = routes(domains)
    taken: list[Verdict] = []  # one per workspace left alone, for the summary
    for count, name in enumerate(candidate_names(state.name)):
        same = [w for w in team if w.name == name]
        verdicts = [(w, _judge(ctx, w, serving.get(w.id, []), deadline)) for w in same]
        for workspace, verdict in verdicts:
            if verdict.kind == LIVE:
                state.name = name
                _say_taken(ctx, count, taken, f"this commit is live in {name}")
                return workspace
        kept = [(w, v) for w, v in verdicts if v.kind == KEEP]
        if not kept:
            for workspace, _verdict in verdicts:
                ctx.reporter.info(
                    f"Deleting workspace {workspace.id} ({name}), left over from an earlier "
                    "attempt of this run; it serves nothing"
                )
                delete_unless_serving(ctx, workspace.id, deadline)
            _say_taken(ctx, count, taken, f"this release goes into {name}")
            state.name = name
            ctx.result.workspace_name = name
            return None
        for workspace, verdict in kept:
            # The details go to the log; one warning sums them up (GitHub shows
            # ten annotations per step).
            ctx.reporter.info(
                f"A workspace named {name} ({workspace.id}) is left alone: {verdict.why}"
            )
            taken.append(verdict)
    raise ActionError(
        f"no free workspace name from {state.name} to {state.name}-99: all 99 names are taken "
        f"({_reasons(taken)}; the log lists each). Set the input 'workspace-name', or delete "
        "the workspaces of those names that are no longer needed"
    )


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
