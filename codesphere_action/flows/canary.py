"""The canary flow: a fresh workspace per release, which joins the workspaces
that serve ``domain-path`` instead of replacing them; with ``bake-time`` it is
watched, then completed or undone on its own.

1. Check, create, stages, health check on the dev domain: what zero-downtime
   does up to its switch (``steps/fresh.py``, ``steps/release.py``).
2. Join: read the domain's map, add the new workspace to ``domain-path``'s list
   beside the workspaces serving it, write the whole map back: the switch's
   read-check-write (``steps/domain.py``), with its superseded rule, so it is
   never written over a change it did not read and never beside a newer
   release. Codesphere's load balancer spreads a path over its workspaces and
   keeps each user on one: with N serving, the new one gets about 1 in N+1 of
   the users. The API has no weights.
3. The check through the domain (as many accepted answers in a row as
   workspaces on the path); a failure takes the new workspace out again.
4. ``bake-time`` 0: stop there, ``success``: the canary serves beside the
   previous workspaces (``previous-workspace-id``). ``flow: promote`` with
   its ``workspace-id`` completes it; ``flow: rollback`` with
   ``previous-workspace-id`` undoes it (a protected environment's approval can
   gate either). ``delete-previous`` then belongs to that promote.
5. ``bake-time`` > 0: the bake (``steps/bake.py``). A clean bake completes the
   canary (the path serves the new workspace alone) and applies
   ``delete-previous``; a failure restores the path's previous list and
   deletes the new workspace.

A cancel from the join until the completion (without a bake: until the check
through the domain passed) is undone as a cancel during the bake is: the
path's previous list restored (never over a change that came in meanwhile),
the new workspace deleted, within the runner's cancel budget. After the
completion a cancel changes nothing.

Before the join a failure leaves the domain untouched and (with
``cleanup-on-failure``) deletes the new workspace, as in zero-downtime.
"""

from __future__ import annotations

from ..context import Context
from ..errors import Cancelled
from ..github import format_seconds
from ..steps.bake import bake, undone_if_cancelled
from ..steps.creation import State, clean_up, ids, remove_twins
from ..steps.domain import switch_domain
from ..steps.dry_run import stop_if_dry_run
from ..steps.fresh import (
    check_release,
    delete_leftovers,
    new_workspace,
    own_release,
    release_plan,
    report_already_live,
    serving_beside,
)
from ..steps.release import build, delete_previous, mark_released
from ..steps.verify import check_domain
from ..timings import MARK_SECONDS


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
        found = check_release(ctx, state)
    config = ctx.config  # after the Check: the domain as the API spells it
    if found.live is not None:
        report_already_live(ctx, state, found)
    stop_if_dry_run(ctx, lambda: release_plan(ctx, state, found, join=True))
    if found.live is not None:
        return
    delete_leftovers(ctx, found.leftovers)

    workspace = new_workspace(ctx, state)
    build(ctx, workspace)

    # From the join until the completion (without a bake: until it serves
    # beside), a cancel takes the canary out again: production as before the run.
    with undone_if_cancelled(ctx, state):
        with ctx.phase("Join domain"):
            switch_domain(
                ctx,
                state,
                [workspace.id],
                started=state.mark.start,
                own=own_release(state),
                join=True,
            )
            mark_released(ctx, state, workspace.id, ctx.deadline(MARK_SECONDS))  # it serves now
        check_domain(ctx, state)
        if not config.bake_time:
            serving_beside(ctx, workspace, state.previous)
            return
        bake(ctx, state, workspace, complete=True)
    ctx.result.done = "Canary completed"
    ctx.result.notice = (
        f"Canary completed: {config.domain_url} serves workspace {workspace.id} "
        f"({state.name}) alone after a clean bake of {format_seconds(config.bake_time)}; "
        f"before: {ids(state.previous) or 'nothing'}"
    )
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            delete_previous(ctx, state.previous, started=state.mark.start, path=state.path)
    elif state.previous:
        kept = "Previous workspace" + ("s" if len(state.previous) > 1 else "")
        ctx.reporter.info(f"{kept} {ids(state.previous)} kept (delete-previous: false)")
