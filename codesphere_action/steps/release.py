"""The release's tail, shared by the flows that build a workspace, and what a
successful switch does next.

- ``build``: once the workspace holds the new code, the stages (prepare, test
  as asked), the run stage, the outputs it tells (URL, deployed commit), the
  commit check and the health check; zero-downtime and preview end with it,
  the simple flow checks the commit right after its pull instead;
- ``mark_released``: the mark says the release succeeded (a re-run then finds
  it live, prune takes it for a release): right after the switch, or, without
  one, at the end; after a switch it names the workspaces replaced, the way
  back (``mark_switched`` for promote and rollback, whose targets another run
  made);
- ``delete_previous``: the workspaces that served the path before, under the
  deletion rule (``steps/ownership.py``).
"""

from __future__ import annotations

from collections.abc import Collection

from ..context import Context
from ..errors import ActionError, NotFound
from ..models import Workspace
from ..timings import CLEANUP_SECONDS, MARK_SECONDS, SWITCH_READ_SECONDS, Deadline
from .creation import State, ids, record_released
from .ownership import (
    Mark,
    Start,
    copy_of,
    delete_unless_serving,
    is_ours,
    read_mark,
    shared_marks,
    team_marks,
)
from .stages import run_stage, stage_plan
from .verify import check_commit, check_health
from .workspace import describe


def build(ctx: Context, workspace: Workspace) -> None:
    """prepare / test (as the inputs ask) and run on ``workspace``, then its
    outputs, the commit check and the health check."""
    for stage in stage_plan(ctx):
        run_stage(ctx, workspace.id, stage)
    run_stage(ctx, workspace.id, "run")
    describe(ctx, workspace)
    check_commit(ctx)
    check_health(ctx, workspace)


def mark_released(
    ctx: Context, state: State, workspace_id: int, deadline: Deadline, mark: Mark | None = None
) -> None:
    """Record in the mark that this release succeeded (``record_released``): a
    re-run of it then reports it live instead of taking it for a leftover, and
    prune takes it for a release. A failure is a warning: the release stands.
    ``deadline``: right after a switch, ``MARK_SECONDS`` of it (a 5xx must not
    hold the release up for a retry budget)."""
    failed = record_released(ctx, state, workspace_id, deadline, mark)
    if failed:
        ctx.reporter.warning(
            f"could not mark workspace {workspace_id} as released ({failed}); a re-run of this "
            "job may release the commit again"
        )


def mark_switched(ctx: Context, state: State, targets: list[int]) -> None:
    """After a promote's or rollback's switch: each target that carries this
    repository's mark of a release says released and names the way back, as
    zero-downtime's own does; within ``MARK_SECONDS``."""
    deadline = ctx.deadline(MARK_SECONDS)
    for workspace_id in targets:
        try:
            mark = read_mark(ctx, workspace_id, deadline, read_timeout=SWITCH_READ_SECONDS)
        except ActionError as exc:
            ctx.reporter.warning(f"could not read workspace {workspace_id}'s mark: {exc}")
            continue
        if mark is not None and is_ours(ctx.config, mark) and mark.pr is None:
            mark_released(ctx, state, workspace_id, deadline, mark)


DELETE, KEEP = "delete", "keep"


def previous_verdict(
    ctx: Context, mark: Mark | None, *, started: Start | None, serving: list[str], path: str
) -> tuple[str, str]:
    """(DELETE or KEEP, why) for a workspace that served ``path`` before the
    switch, under the deletion rule: never a newer release than the one switched
    in (``started``; None: a rollback, which goes back on purpose), never one
    this action did not create for this repository, never one that still serves
    a route (``serving``). The real delete asks the team's domains once more,
    right before it (``delete_unless_serving``)."""
    if started is not None and mark is not None and mark.newer_than(started):
        return KEEP, (
            f"it holds a newer release (run {mark.run}, started {mark.started}) than the one "
            "switched in"
        )
    if not is_ours(ctx.config, mark):
        return KEEP, (
            "it was not created by codesphere-release for this repository, so it is not "
            "deleted automatically. Delete it by hand if it is no longer needed"
        )
    if serving:
        return KEEP, f"it still serves {', '.join(serving)}"
    return DELETE, f"it served {path} before, and codesphere-release made it for this repository"


TeamMarks = tuple[list[Workspace], dict[int, Mark | None]]


def copied(
    ctx: Context, workspace_id: int, mark: Mark | None, deadline: Deadline, team: list[TeamMarks]
) -> str:
    """Why a previous workspace that carries this repository's mark is a copy
    nonetheless, kept ("" when it is not known to be one): Codesphere made it
    from another (``ownership.copy_of``), or a workspace of another name carries
    the same mark ``id`` (``ownership.shared_marks``: a hand-made copy of a
    release's env). ``team``: the team's workspaces and marks, read once by the
    first call (one request per workspace of the team)."""
    if not is_ours(ctx.config, mark):
        return ""
    if not team:
        team.append(team_marks(ctx, deadline))
    workspaces, marks = team[0]
    for workspace in workspaces:
        if workspace.id == workspace_id and copy_of(workspace):
            return copy_of(workspace)
    names = {w.id: w.name for w in workspaces}
    group = shared_marks({**marks, workspace_id: mark}, names).get(workspace_id)
    if not group:
        return ""
    return (
        f"its mark's id is carried by workspaces {ids(group)} together: one of them is a "
        "copy of a release's env (made by hand), and which one cannot be told, so it is not "
        "deleted automatically. Delete it by hand if it is no longer needed"
    )


def delete_previous(
    ctx: Context,
    previous: list[int],
    keep: Collection[int] = (),
    *,
    started: Start | None,
    path: str = "",
) -> None:
    """Delete the workspaces that served the path before, under the deletion rule
    (``previous_verdict``, and never a copy: ``copied``). One that is gone
    already is passed over."""
    deadline = ctx.deadline(CLEANUP_SECONDS)
    team: list[TeamMarks] = []
    for workspace_id in previous:
        if workspace_id in keep:
            continue
        try:
            mark = read_mark(ctx, workspace_id, deadline)
        except NotFound:
            ctx.reporter.info(f"Previous workspace {workspace_id} is gone already")
            continue
        verdict, why = previous_verdict(ctx, mark, started=started, serving=[], path=path)
        copy = copied(ctx, workspace_id, mark, deadline, team) if verdict == DELETE else ""
        if copy:
            verdict, why = KEEP, copy
        if verdict == KEEP:
            ctx.reporter.notice(
                f"Kept workspace {workspace_id}: {why}", title="Previous workspace kept"
            )
            continue
        try:
            kept = delete_unless_serving(ctx, workspace_id, deadline)
        except ActionError as exc:
            raise ActionError(
                f"the domain now points at the new workspace, but deleting the previous "
                f"workspace {workspace_id} failed: {exc}. Delete it by hand"
            ) from None
        if kept:
            ctx.reporter.info(f"Keeping workspace {workspace_id}: it serves {', '.join(kept)}")
        else:
            ctx.reporter.info(f"Deleted previous workspace {workspace_id}")
