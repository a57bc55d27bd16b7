"""The prune flow: delete what this action made for this repository and no longer needs.

1. Check: the team's workspaces and domains, every workspace's mark and, with
   ``github-token``, what GitHub says of the previews' pull requests and the
   leftovers' workflow runs; a verdict for each (``steps/pruning.py``): delete
   or keep, and why. Never one that serves a domain, never one without this
   repository's mark.
2. A dry run prints that plan and stops.
3. Delete, one workspace after another, under the deletion rule: the team's
   domains and the workspace's mark are read again right before each delete;
   one that serves a domain now, or whose mark changed since (a run took it
   over), is kept.

The job summary is a table: deleted, kept, and why. A delete that fails is
reported and the others go on; the run then fails, naming it. A cancel stops
at once: each delete is whole on its own, so nothing is held back, and the
table says how far it got.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError, NotFound
from ..github import count
from ..plan import Plan, Row
from ..steps.creation import id_list
from ..steps.dry_run import label, stop_if_dry_run
from ..steps.ownership import Mark, delete_unless_serving, read_mark, routes
from ..steps.pruning import GitHubAnswers, Verdict, judge_team
from ..timings import CHECK_SECONDS, CLEANUP_SECONDS, Deadline

CHANGED = "its mark changed since prune looked at it (a run is working on it): kept"


def run(ctx: Context) -> None:
    with ctx.phase("Check") as phase:
        verdicts = _judge(ctx)
        doomed = [v for v in verdicts if v.delete]
        phase.detail = f"{len(doomed)} to delete, {len(verdicts) - len(doomed)} to keep"
    stop_if_dry_run(ctx, lambda: _plan(verdicts))
    rows = {v.workspace.id: Row(label(v.workspace), "kept", v.why) for v in verdicts}
    table = Plan(title="Prune")
    ctx.result.plan = table
    done: list[int] = []
    failed: list[str] = []
    try:
        if doomed:
            with ctx.phase("Delete") as phase:
                for verdict in doomed:
                    rows[verdict.workspace.id] = _delete(ctx, verdict, done, failed)
                    ctx.result.set("workspace-id", id_list(done))
                phase.detail = f"deleted {len(done)}"
    finally:
        for verdict in doomed:
            if rows[verdict.workspace.id].action == "kept":  # not got to: a cancel
                why = f"{verdict.why}; the run ended before prune got to it"
                rows[verdict.workspace.id] = Row(label(verdict.workspace), "not deleted", why)
        table.rows = [rows[w] for w in sorted(rows)]
    if failed:
        raise ActionError(
            f"prune deleted {count(len(done), 'workspace')}, but could not delete "
            f"{'; '.join(failed)}. "
            "Run prune again, or delete them by hand"
        )
    kept = len(verdicts) - len(done)
    ctx.result.done = "Pruned"
    ctx.result.notice = (
        f"Pruned team {ctx.config.team_id}: deleted {id_list(done) or 'nothing'}, kept {kept} "
        "(the job summary says why)"
    )


def _judge(ctx: Context) -> list[Verdict]:
    """Every workspace of the team with its mark and routes, judged."""
    config = ctx.config
    assert config.team_id is not None  # its spec needs it
    deadline = ctx.deadline(CHECK_SECONDS)
    team = ctx.client.list_team_workspaces(config.team_id, deadline=deadline)
    serving = routes(ctx.client.list_domains(config.team_id, deadline=deadline))
    marks = _marks(ctx, [w.id for w in team], deadline)
    github = GitHubAnswers(ctx)
    try:
        verdicts = judge_team(ctx, team, marks, serving, github)
    finally:
        github.close()
    for verdict in verdicts:
        verb = "Deleting" if verdict.delete else "Keeping"
        ctx.reporter.info(f"{verb} workspace {label(verdict.workspace)}: {verdict.why}")
    return verdicts


def _marks(ctx: Context, ids: list[int], deadline: Deadline) -> dict[int, Mark | None]:
    """Each workspace's mark; one deleted meanwhile is left out."""
    marks: dict[int, Mark | None] = {}
    for workspace_id in ids:
        try:
            marks[workspace_id] = read_mark(ctx, workspace_id, deadline)
        except NotFound:
            continue
    return marks


def _plan(verdicts: list[Verdict]) -> Plan:
    doomed = [v.workspace.id for v in verdicts if v.delete]
    plan = Plan(headline=f"delete {id_list(doomed).replace(',', ', ') or 'nothing'}")
    for verdict in verdicts:
        (plan.delete if verdict.delete else plan.keep)(label(verdict.workspace), verdict.why)
    return plan


def _delete(ctx: Context, verdict: Verdict, done: list[int], failed: list[str]) -> Row:
    """Delete one workspace unless it serves a domain now or its mark changed;
    the table's row for it."""
    workspace = verdict.workspace
    shown = label(workspace)
    held: list[str] = []

    def changed(limit: Deadline) -> str:
        held.append("" if read_mark(ctx, workspace.id, limit) == verdict.mark else CHANGED)
        return held[-1]

    try:
        kept = delete_unless_serving(
            ctx, workspace.id, ctx.deadline(CLEANUP_SECONDS), kept_by=changed
        )
    except NotFound:
        done.append(workspace.id)
        return Row(shown, "deleted", f"{verdict.why} (gone already)")
    except ActionError as exc:
        failed.append(f"workspace {shown}: {exc}")
        ctx.reporter.info(f"Could not delete workspace {shown}: {exc}")
        return Row(shown, "not deleted", f"{verdict.why}; the delete failed: {exc}")
    if kept:
        why = held[-1] if held and held[-1] else f"it serves {', '.join(kept)} now"
        ctx.reporter.info(f"Kept workspace {shown}: {why}")
        return Row(shown, "kept", why)
    done.append(workspace.id)
    ctx.reporter.info(f"Deleted workspace {shown}: {verdict.why}")
    return Row(shown, "deleted", verdict.why)
