"""The preview flow: one workspace per pull request, updated on every push.

- The first run for a pull request creates ``<repository>-pr-<number>`` on the
  pull request's head branch (env included), waits until it runs, then runs
  prepare / test / run on it.
- Later runs (new pushes, re-runs) reuse it: take it over (its mark names this
  run), wake it if it sleeps, update its env (and, with ``secret-store:
  vault``, its vault), pull ``origin/<head branch>``,
  prepare / test, restart run. Never a second workspace for one pull request.
- The preview is the workspace this action made for this repository and pull
  request (its mark, ``steps/ownership.py``). Should a workspace of that name
  exist that is not it (made by hand, say), it is left alone and the preview
  lives in ``<name>-2`` (the first name that is free or holds the preview).
- Runs that overlap end with one preview, the oldest: ``steps/previews.py``.

A failure deletes the workspace only when this run created it (and
``cleanup-on-failure`` allows it, and no other run took it over); a preview
that existed before is never deleted by a failed update: the next push
repairs it, closing the pull request (the teardown flow) deletes it.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ApiError, Cancelled, Skipped
from ..models import Workspace
from ..plan import Plan
from ..steps.creation import State, clean_up, create_workspace, remove_twins
from ..steps.dry_run import (
    create_step,
    env_names,
    label,
    stage_steps,
    stop_if_dry_run,
    vault_steps,
)
from ..steps.previews import (
    Preview,
    PreviewGone,
    branch_gone,
    check_clone,
    delete_if_closed,
    existing_preview,
    holder,
    older_preview,
    pull_request_closed,
    superseded,
    take_over,
    take_over_older,
)
from ..steps.release import build, mark_released
from ..steps.secrets import store_in_vault, workspace_env
from ..steps.workspace import ensure_running, git_pull, pull_target, wait_until_running
from ..timings import CHECK_SECONDS


def run(ctx: Context) -> None:
    state = State.for_run(ctx)
    ctx.result.workspace_name = state.name
    preview = Preview()
    try:
        _preview(ctx, state, preview)
        _end(ctx, state, preview)
    except Skipped:
        raise  # nothing of this run's is left to clean up
    except (Exception, Cancelled) as exc:
        cancelled = isinstance(exc, Cancelled)
        held = "" if cancelled else holder(ctx, state, preview)
        if preview.reused and not held:
            ctx.result.aftermath.append(
                f"the preview workspace {preview.id} was kept (it existed before this run; "
                "the next push updates it)"
            )
        if state.created_id is not None or state.creating:
            clean_up(ctx, state, cancelled=cancelled)
        if held:
            raise superseded(ctx, preview, held, exc) from None
        raise


def _end(ctx: Context, state: State, preview: Preview) -> None:
    """The run's end: a late twin of its own create goes; another run may hold
    the preview now (Skipped), or the pull request closed meanwhile (the
    preview is deleted: Skipped); else the mark says the preview is released."""
    remove_twins(ctx, state)
    try:
        held = holder(ctx, state, preview, ended=True)
    except PreviewGone:
        delete_if_closed(ctx, state, preview)  # closed: a teardown deleted it (Skipped)
        raise
    if held:
        raise superseded(ctx, preview, held, None)
    delete_if_closed(ctx, state, preview)
    if preview.id is not None:  # reported now: a rival run yields to it (steps/previews.py)
        mark_released(ctx, state, preview.id, ctx.deadline(CHECK_SECONDS))


def _preview(ctx: Context, state: State, preview: Preview) -> None:
    pull = ctx.config.pull_request
    assert pull is not None  # its spec needs it (never a fork's)
    with ctx.phase("Check") as phase:
        existing = existing_preview(ctx, state, ctx.deadline(CHECK_SECONDS))
        phase.detail = f"reusing {existing.id}" if existing else "no preview yet"
        ctx.reporter.info(
            f"Pull request #{pull.number}: "
            + (
                f"its preview is workspace {existing.id} ({existing.name})"
                if existing
                else f"no preview yet; creating {state.name}"
            )
        )
    stop_if_dry_run(ctx, lambda: _plan(ctx, state, existing))
    workspace = existing or _create(ctx, state, preview)
    if preview.reused or existing is not None:  # found, or another run's taken over
        workspace = _update(ctx, state, preview, workspace)
    build(ctx, workspace)
    # A create answered late shows up only now: the older preview still wins.
    older = older_preview(ctx, state, workspace, ctx.deadline(CHECK_SECONDS))
    if older is not None and state.created_id == workspace.id:
        taken = take_over_older(ctx, state, preview, workspace, older, ctx.deadline(CHECK_SECONDS))
        if taken is not None:
            workspace = _update(ctx, state, preview, taken)
            build(ctx, workspace)
    url = ctx.result.outputs["workspace-url"] or f"workspace {workspace.id}"
    verb = "updated" if preview.reused else "created"
    ctx.result.notice = f"Preview of pull request #{pull.number} {verb}: {url}"


def _create(ctx: Context, state: State, preview: Preview) -> Workspace:
    """Create the preview and wait until it runs; or, when an older preview of
    the pull request showed up meanwhile, take that one over (``preview.reused``)
    and return it."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    with ctx.phase("Create workspace") as phase:
        # One deadline for the create and the boot: workspace-timeout bounds both.
        deadline = ctx.deadline(config.workspace_timeout)
        try:
            workspace = create_workspace(ctx, state, deadline)
        except ApiError as exc:
            raise branch_gone(ctx, exc) or exc from None
        preview.id, preview.held = workspace.id, True
        older = older_preview(ctx, state, workspace, deadline)
        taken = older and take_over_older(ctx, state, preview, workspace, older, deadline)
        if taken:
            phase.detail = f"workspace {taken.id}, another run's"
            return taken
        ctx.reporter.info(
            f"Created workspace {workspace.id} ({state.name}) on branch {config.branch} "
            f"for pull request #{pull.number}; waiting for it to run"
        )
        wait_until_running(ctx, workspace.id, deadline)
        check_clone(ctx, workspace.id, deadline)
        store_in_vault(ctx, workspace.id, deadline)  # secret-store: vault
        phase.detail = f"workspace {workspace.id}"
    return workspace


def _update(ctx: Context, state: State, preview: Preview, existing: Workspace) -> Workspace:
    """Take the existing preview over (its mark names this run), wake it, pull."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    preview.id, preview.reused = existing.id, True
    ctx.result.set("workspace-id", existing.id)
    ctx.reporter.info(
        f"Updating preview workspace {existing.id} ({existing.name}) of pull request #{pull.number}"
    )
    with ctx.phase("Update workspace") as phase:
        if not preview.held:
            take_over(ctx, state, preview, existing.id, ctx.deadline(CHECK_SECONDS))
        if ensure_running(ctx, existing, ctx.deadline(config.workspace_timeout)):
            phase.detail = "woken up"
        store_in_vault(ctx, existing.id, ctx.deadline(CHECK_SECONDS))  # secret-store: vault
        try:
            git_pull(ctx, existing.id, ctx.deadline(config.stage_timeout))
        except ApiError as exc:
            raise branch_gone(ctx, exc) or exc from None
    return existing


def _plan(ctx: Context, state: State, existing: Workspace | None) -> Plan:
    """The dry run's plan: create the preview, or update the one there is; the
    stages; with github-token, what GitHub says of the pull request."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    plan = Plan()
    if config.github.token:
        closed = pull_request_closed(ctx, existing.id if existing else None)
        plan.steps.append(
            f"GitHub says pull request #{pull.number} is {'closed' if closed else 'open'}"
            + (": the run would delete the preview at its end and end skipped" if closed else "")
        )
    if existing is None:
        plan.headline = f"create the preview {state.name} for pull request #{pull.number}"
        plan.steps += [create_step(ctx, state), *vault_steps(ctx, "the new workspace")]
    else:
        shown = label(existing)
        plan.headline = f"update the preview {shown} of pull request #{pull.number}"
        names = env_names(ctx, workspace_env(ctx)) or "none"
        plan.steps.append(
            f"Update preview workspace {shown} of pull request #{pull.number}: its env "
            f"({names}) and its mark, which names this run from now on, are written again"
        )
        if not ctx.client.is_running(existing.id, deadline=ctx.deadline(CHECK_SECONDS)):
            plan.steps.append(f"Wake workspace {shown}: it is not running")
        plan.steps += vault_steps(ctx, f"workspace {shown}")
        plan.steps.append(f"git pull {pull_target(ctx)} in workspace {shown}")
    plan.steps += stage_steps(ctx)
    return plan
