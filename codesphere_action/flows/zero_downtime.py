"""The zero-downtime flow: a fresh workspace per release, then move the domain.

1. Check: list the team's domains (fail before creating anything when
   ``domain`` is not one of them) and settle the workspace's name (re-runs:
   ``steps/fresh.py``).
2. Create the workspace (env, the create settings and the action's mark
   included), wait until it runs; with ``secret-store: vault`` store
   ``secret-env`` in its vault.
3. prepare / test / run on it (the landscape deployed before run), the health
   check on its dev domain.
4. Switch: read the domain's path map, point ``domain-path`` at the new
   workspace, write the whole map back (PUT replaces it), every other path as
   it was. Cancellation is held back during the switch. Then the check
   through the domain.
5. ``bake-time``: watch the release (``steps/bake.py``) while the previous
   workspace stays as it is; a failure points the path back, and so does a
   cancel from the switch until the bake passed.
   The workspace's mark says released right after the switch (naming the
   workspaces it replaced, the way back); a switch back writes it back.
6. ``delete-previous``: delete the workspaces that served the path before,
   under the deletion rule (``ownership.py``).

A release never replaces a newer one (``steps/superseded.py``): when a
workspace serving the path holds a release of this repository that started
after this run, in the Check phase or in the switch's read-check-write, the
run builds or switches nothing, deletes what it created and ends
``superseded``.

Before the switch a failure leaves the domain untouched and (with
``cleanup-on-failure``) deletes the new workspace. After the switch, the
domain check and the bake undo it on their own; after them nothing is
undone, and the error says what state things are in.
"""

from __future__ import annotations

from ..context import Context
from ..errors import Cancelled
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
)
from ..steps.release import build, delete_previous, mark_released
from ..steps.verify import check_domain
from ..timings import CHECK_SECONDS, MARK_SECONDS


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
    stop_if_dry_run(ctx, lambda: release_plan(ctx, state, found))
    if found.live is not None:
        return
    delete_leftovers(ctx, found.leftovers)

    workspace = new_workspace(ctx, state)
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
    # With a bake, a cancel before it passed switches back: production as before.
    with undone_if_cancelled(ctx, state, enabled=bool(config.bake_time)):
        with ctx.phase("Switch domain"):
            switch_domain(
                ctx, state, [workspace.id], started=state.mark.start, own=own_release(state)
            )
            mark_released(ctx, state, workspace.id, ctx.deadline(MARK_SECONDS))  # the way back
        check_domain(ctx, state)
        bake(ctx, state, workspace, complete=False)  # bake-time: the previous stays meanwhile
    if config.delete_previous:
        with ctx.phase("Delete previous"):
            delete_previous(ctx, state.previous, started=state.mark.start, path=state.path)
    elif state.previous:
        kept = "Previous workspace" + ("s" if len(state.previous) > 1 else "")
        ctx.reporter.info(f"{kept} {ids(state.previous)} kept (delete-previous: false)")


def _why_no_switch(ctx: Context) -> str:
    return "switch: false" if ctx.config.domain else "no domain given"
