"""The teardown flow: delete a pull request's preview workspace.

The preview is found in the team by name (``<repository>-pr-<number>`` from
the pull_request event, or ``workspace-name``, and the ``-2``, ``-3`` ... names
a preview moves to when its name is taken) and by the action's mark: only a
workspace this action created for this repository (and, on a pull_request
event, for this pull request) is deleted, never a copy (one Codesphere made
from another, or one whose mark's ``id`` a workspace of another name carries
too: a hand-made copy of the preview's env). None there means it is gone
already: success. A workspace some domain of the team routes to is never
deleted (a mistyped ``workspace-name`` must not take production down): the
teardown is refused.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, Refused
from ..models import Workspace
from ..plan import Plan
from ..steps.creation import ids
from ..steps.dry_run import label, stop_if_dry_run
from ..steps.ownership import (
    Mark,
    candidate_names,
    copy_of,
    is_ours,
    read_mark,
    routes,
    shared_marks,
)
from ..timings import CHECK_SECONDS, CLEANUP_SECONDS, Deadline


def run(ctx: Context) -> None:
    config = ctx.config
    assert config.team_id is not None  # config guarantees it for this flow
    name = config.workspace_name
    ctx.result.workspace_name = name
    with ctx.phase("Check") as phase:
        deadline = ctx.deadline(CHECK_SECONDS)
        named, found = _previews(ctx, name, deadline)
        if named:
            # Any workspace of that name that a domain routes to refuses the whole
            # teardown, the action's or not: the name is probably a mistake.
            _refuse_if_served(ctx, named, deadline)
        phase.detail = f"found {ids([w.id for w in found])}" if found else "already gone"
    stop_if_dry_run(ctx, lambda: _plan(ctx, named, found))
    if not found:
        ctx.reporter.info(f"No preview workspace named {name} in team {config.team_id}")
        ctx.result.aftermath.append(
            f"no preview workspace named {name} was left: nothing to delete"
        )
        ctx.result.notice = f"Preview workspace {name} is already gone: nothing to delete"
        return

    ctx.result.set("workspace-id", ",".join(str(w.id) for w in found))
    with ctx.phase("Delete workspace") as phase:
        deadline = ctx.deadline(CLEANUP_SECONDS)
        for workspace in found:
            if ctx.client.delete_workspace(workspace.id, deadline=deadline):
                ctx.reporter.info(f"Deleted workspace {workspace.id} ({workspace.name})")
            else:
                ctx.reporter.info(
                    f"Workspace {workspace.id} ({workspace.name}) was deleted meanwhile"
                )
        phase.detail = f"deleted {ids([w.id for w in found])}"
    names = ", ".join(w.name for w in found)
    ctx.result.notice = f"Deleted preview workspace {ids([w.id for w in found])} ({names})"


def _previews(
    ctx: Context, name: str, deadline: Deadline
) -> tuple[list[Workspace], list[Workspace]]:
    """(the workspaces to check before deleting: those named ``name`` and the
    previews; the previews: those named ``name`` or ``name-<n>`` this action made
    as the preview)."""
    config = ctx.config
    assert config.team_id is not None
    names = set(candidate_names(name))
    named = sorted(
        (
            w
            for w in ctx.client.list_team_workspaces(config.team_id, deadline=deadline)
            if w.name in names
        ),
        key=lambda w: w.id,
    )
    wanted_pr = config.pull_request.number if config.pull_request else None
    found, marks = [], {}
    for workspace in named:
        mark = marks[workspace.id] = read_mark(ctx, workspace.id, deadline)
        if is_ours(config, mark) and mark is not None and wanted_pr in (None, mark.pr):
            found.append(workspace)
        elif workspace.name == name:
            ctx.reporter.notice(
                f"Workspace {workspace.id} is named {name} but was not created by "
                "codesphere-release as this preview: left alone",
                title="Workspace left alone",
            )
    copies = _copies(ctx, found, marks)
    found = [w for w in found if w not in copies]
    return [w for w in named if w.name == name or w in found or w in copies], found


def _copies(ctx: Context, found: list[Workspace], marks: dict[int, Mark | None]) -> list[Workspace]:
    """The previews found that may be copies, never deleted (the deletion rule,
    ``steps/ownership.py``): made from another workspace, or carrying one mark
    ``id`` with a workspace of another name (twins of one create share their
    name); one notice each."""
    names = {w.id: w.name for w in found}
    shared = shared_marks({w.id: marks.get(w.id) for w in found}, names)
    copies = []
    for workspace in found:
        group = shared.get(workspace.id)
        why = copy_of(workspace) or (
            f"its mark's id is carried by workspaces {ids(group)} together, so one of them is "
            "a copy of the preview's env and which one cannot be told"
            if group
            else ""
        )
        if why:
            copies.append(workspace)
            ctx.reporter.notice(
                f"Workspace {workspace.id} ({workspace.name}) was left alone: {why}. Delete it "
                "by hand if it is no longer needed",
                title="Workspace left alone",
            )
    return copies


def _refuse_if_served(ctx: Context, found: list[Workspace], deadline: Deadline) -> None:
    team_id = ctx.config.team_id
    assert team_id is not None
    try:
        serving = routes(ctx.client.list_domains(team_id, deadline=deadline))
    except ActionError as exc:
        raise ActionError(
            f"could not list the domains of team {team_id} (input 'team-id') to make sure no "
            f"domain routes to workspace {ids([w.id for w in found])}, so nothing was "
            f"deleted: {exc}"
        ) from None
    served = sorted({route for w in found for route in serving.get(w.id, [])})
    if served:
        raise Refused(
            f"workspace {ids([w.id for w in found])} ({ctx.config.workspace_name}) serves "
            f"{', '.join(served)}: teardown never deletes a workspace a domain routes to, so "
            "nothing was deleted. Check the input 'workspace-name', or disconnect the domain first"
        )


def _plan(ctx: Context, named: list[Workspace], found: list[Workspace]) -> Plan:
    """The dry run's plan: the previews it would delete, the namesakes it keeps."""
    pull = ctx.config.pull_request
    which = f"the preview of pull request #{pull.number}" if pull else "a preview"
    plan = Plan(headline=f"delete {ids([w.id for w in found])}" if found else "delete nothing")
    if not found:
        plan.steps.append(
            f"Nothing to delete: no preview workspace named {ctx.config.workspace_name}"
        )
    for workspace in found:
        plan.delete(label(workspace), f"{which}, made by codesphere-release for this repository")
    for workspace in named:
        if workspace not in found:
            plan.keep(
                label(workspace),
                "it was not created by codesphere-release as this preview: left alone",
            )
    return plan
