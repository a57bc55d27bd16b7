"""The preview flow: one workspace per pull request, updated on every push.

- The first run for a pull request creates ``<repository>-pr-<number>`` on the
  pull request's head branch (env included), waits until it runs, then runs
  prepare / test / run on it.
- Later runs (new pushes, re-runs) reuse it: take it over (its mark names this
  run), wake it if it sleeps, update its env, pull ``origin/<head branch>``,
  prepare / test, restart run. Never a second workspace for one pull request.
- The preview is the workspace this action made for this repository and pull
  request (its mark, ``ownership.py``). Should a workspace of that name exist
  that is not it (made by hand, say), it is left alone and the preview lives
  in ``<name>-2`` (the first name that is free or holds the preview).

Runs that overlap (pushes outside one concurrency group) end with one preview:
- the oldest preview of the pull request (the lowest id) wins: a run whose
  create lands after another run's finds the older preview right after its
  create, takes it over, deletes its own (it serves nothing) and updates the
  older one as a later push would;
- the preview's mark names the run that took it over last (its ``id``). A run
  that finds, when it fails or ends, that another run holds its preview stops
  there, ``skipped`` (the other run reports the preview), and its cleanup
  never deletes a workspace whose mark, read right before the delete, does
  not carry its own id.

A failure deletes the workspace only when this run created it (and
``cleanup-on-failure`` allows it, and no other run took it over); a preview
that existed before is never deleted by a failed update: the next push
repairs it, closing the pull request (the teardown flow) deletes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..context import Context
from ..errors import ActionError, ApiError, Cancelled, Skipped
from ..github_api import GitHubApi, GitHubError, pull_request_state
from ..models import Workspace
from ..steps import (
    describe,
    ensure_running,
    git_pull,
    run_stage,
    stage_plan,
    wait_until_running,
)
from .creation import State, clean_up, create_workspace, ids, remove_twins, taken_by
from .ownership import Mark, candidate_names, delete_unless_serving, is_ours, read_mark
from .verify import check_commit, check_health

MAX_REASON = 300  # of the error quoted when another run took the preview over


@dataclass
class Preview:
    """The pull request's preview workspace this run works on."""

    id: int | None = None
    # It existed before this run: found, or taken over from another run.
    reused: bool = False
    # This run's mark is on it (written when it was taken over, or at the create).
    held: bool = False


def run(ctx: Context) -> None:
    state = State.for_run(ctx)
    ctx.result.workspace_name = state.name
    preview = Preview()
    try:
        _preview(ctx, state, preview)
    except (Exception, Cancelled) as exc:
        cancelled = isinstance(exc, Cancelled)
        holder = "" if cancelled else _holder(ctx, state, preview)
        if preview.reused and not holder:
            ctx.result.aftermath.append(
                f"the preview workspace {preview.id} was kept (it existed before this run; "
                "the next push updates it)"
            )
        if state.created_id is not None or state.creating:
            clean_up(ctx, state, cancelled=cancelled)
        if holder:
            raise _superseded(ctx, preview, holder, exc) from None
        raise
    remove_twins(ctx, state)
    holder = _holder(ctx, state, preview)
    if holder:
        raise _superseded(ctx, preview, holder, None)
    _delete_if_closed(ctx, state, preview)


def _preview(ctx: Context, state: State, preview: Preview) -> None:
    config = ctx.config
    pull = config.pull_request
    assert pull is not None  # config guarantees it for this flow (never a fork's)
    with ctx.phase("Check") as phase:
        existing = _existing_preview(ctx, state)
        phase.detail = f"reusing {existing.id}" if existing else "no preview yet"
        ctx.reporter.info(
            f"Pull request #{pull.number}: "
            + (
                f"its preview is workspace {existing.id} ({existing.name})"
                if existing
                else f"no preview yet; creating {state.name}"
            )
        )

    if existing is None:
        with ctx.phase("Create workspace") as phase:
            try:
                workspace = create_workspace(ctx, state)
            except ApiError as exc:
                raise _branch_gone(ctx, exc) or exc from None
            preview.id, preview.held = workspace.id, True
            older = _older_preview(ctx, state, workspace)
            if older is not None:
                existing = _take_over_older(ctx, state, preview, workspace, older)
            if existing is None:
                ctx.reporter.info(
                    f"Created workspace {workspace.id} ({state.name}) on branch {config.branch} "
                    f"for pull request #{pull.number}; waiting for it to run"
                )
                wait_until_running(ctx, workspace.id)
                _check_clone(ctx, workspace.id)
            phase.detail = f"workspace {(existing or workspace).id}"
    if existing is not None:
        workspace = existing
        preview.id, preview.reused = workspace.id, True
        ctx.result.set("workspace-id", workspace.id)
        ctx.reporter.info(
            f"Updating preview workspace {workspace.id} ({workspace.name}) of pull request "
            f"#{pull.number}"
        )
        with ctx.phase("Update workspace") as phase:
            if not preview.held:
                _take_over(ctx, state, preview, workspace.id)
            if ensure_running(ctx, existing):
                phase.detail = "woken up"
            try:
                git_pull(ctx, workspace.id)
            except ApiError as exc:
                raise _branch_gone(ctx, exc) or exc from None

    for stage in stage_plan(ctx):
        run_stage(ctx, workspace.id, stage)
    run_stage(ctx, workspace.id, "run")
    describe(ctx, workspace)
    check_commit(ctx)
    check_health(ctx, workspace)
    url = ctx.result.outputs["workspace-url"] or f"workspace {workspace.id}"
    verb = "updated" if existing else "created"
    ctx.result.notice = f"Preview of pull request #{pull.number} {verb}: {url}"


def _check_clone(ctx: Context, workspace_id: int) -> None:
    """A new workspace has a clone of the branch before any stage runs. Without
    one (Codesphere may make the workspace all the same when the branch does not
    exist: git calls then answer 400), a pull of the branch tells whether the
    branch is gone (its error names it) or the clone was only late."""
    try:
        ctx.client.git_head(workspace_id)
    except ApiError as exc:
        if exc.status_code != 400:
            raise
        ctx.reporter.info(f"Workspace {workspace_id} has no git clone yet ({exc}): pulling")
        try:
            git_pull(ctx, workspace_id)
        except ApiError as pull_error:
            raise _branch_gone(ctx, pull_error) or pull_error from None


def _branch_gone(ctx: Context, error: ApiError) -> ActionError | None:
    """The error that says the branch no longer exists, when Codesphere turned a
    create or a pull down with a message that names the branch; else None."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    branch = config.branch
    said = f"{error.problem_title} {error.detail}"
    if not (
        branch and error.refused and re.search(rf"(?<![\w./-]){re.escape(branch)}(?![\w/-])", said)
    ):
        return None
    whose = (
        f"pull request #{pull.number}'s head branch {branch}"
        if branch == pull.head_ref
        else f"the branch {branch} (input 'branch')"
    )
    return ActionError(
        f"{whose} no longer exists in {config.git_url} (deleted after the push?), so there "
        "is nothing to preview. If the pull request is still open, push the branch again: "
        "that runs the preview anew (GitHub closes a pull request whose branch was deleted, "
        f"and its teardown deletes the preview). Codesphere said: {error}"
    )


def _take_over(ctx: Context, state: State, preview: Preview, workspace_id: int) -> None:
    """Write ``env`` and this run's mark onto the preview: from now on it is this
    run's, and a run that held it before never deletes it."""
    config = ctx.config
    ctx.client.set_env_vars(workspace_id, [*config.env, state.mark.as_env()])
    preview.held = True
    if config.env:
        ctx.reporter.info("Environment variables set: " + ", ".join(v.name for v in config.env))
    ctx.reporter.debug(f"workspace {workspace_id}: mark {state.mark.render()}")


def _older_preview(ctx: Context, state: State, own: Workspace) -> Workspace | None:
    """Right after this run's create: the pull request's oldest preview when
    another run made one before (a lower id: ids grow with every create), else
    None. A run that listed the team while another's create was under way made
    a second preview; the older one wins."""
    config = ctx.config
    assert config.team_id is not None
    names = set(candidate_names(config.workspace_name))
    team = ctx.client.list_team_workspaces(config.team_id)
    for workspace in sorted((w for w in team if w.name in names), key=lambda w: w.id):
        if workspace.id >= own.id:
            break
        mark = read_mark(ctx, workspace.id)
        # This run's own twins (a create repeated after a lost answer) are
        # remove_twins's to delete.
        if _is_preview(ctx, mark) and mark is not None and mark.nonce != state.mark.nonce:
            return workspace
    return None


def _take_over_older(
    ctx: Context, state: State, preview: Preview, own: Workspace, older: Workspace
) -> Workspace | None:
    """Take the older preview over and delete the one this run made; return the
    older one, or None when it was deleted meanwhile (this run's own goes on)."""
    ctx.reporter.info(
        f"Workspace {older.id} ({older.name}), an older preview of this pull request, was "
        f"made by another run meanwhile: taking it over, and deleting workspace {own.id} "
        "that this run made"
    )
    try:
        _take_over(ctx, state, preview, older.id)
    except ApiError as exc:
        if exc.status_code != 404:
            raise
        ctx.reporter.info(f"Workspace {older.id} is gone meanwhile: going on with {own.id}")
        return None
    preview.id, preview.reused = older.id, True
    state.name = older.name
    ctx.result.workspace_name = older.name
    ctx.result.set("workspace-id", older.id)
    kept = delete_unless_serving(ctx, own.id)
    if kept:
        ctx.reporter.warning(
            f"Workspace {own.id}, made by this run, serves {', '.join(kept)}: kept"
        )
    else:
        ctx.reporter.info(f"Deleted workspace {own.id}: the preview is {older.id}")
    state.created_id = None
    return older


def _holder(ctx: Context, state: State, preview: Preview) -> str:
    """Who holds the preview now when it is not this run ("" when it is, or when
    it cannot be told: a cleanup reads the mark again before any delete)."""
    if preview.id is None or not preview.held:
        return ""
    try:
        return taken_by(ctx, state, preview.id)
    except (ActionError, Cancelled) as exc:
        ctx.reporter.debug(f"reading the mark of workspace {preview.id}: {exc}")
        return ""


def _delete_if_closed(ctx: Context, state: State, preview: Preview) -> None:
    """With ``github-token``: ask GitHub whether the pull request closed while
    this run worked. A teardown that ran meanwhile (outside the preview's
    concurrency group) found no preview while the create was under way; so
    delete the preview this run holds, under the deletion rule, and raise
    Skipped. When GitHub cannot tell: one warning, the preview stays."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    if not config.github.token or preview.id is None:
        return
    api = GitHubApi(config)
    api.seconds_left = ctx.guard.remaining
    try:
        github_state = pull_request_state(api, pull.number)
    except GitHubError as exc:
        ctx.reporter.warning(
            f"could not ask GitHub whether pull request #{pull.number} was closed while this "
            f"run worked: {exc}. If it was, run the teardown again or delete workspace "
            f"{preview.id} by hand",
            title="Pull request state",
        )
        return
    finally:
        api.close()
    if github_state != "closed":
        return
    name = ctx.result.workspace_name
    try:
        holder = taken_by(ctx, state, preview.id)  # right before the delete
        if holder:
            raise _superseded(ctx, preview, holder, None)
        kept = delete_unless_serving(ctx, preview.id)
    except ActionError as exc:
        if isinstance(exc, Skipped):
            raise
        if isinstance(exc, ApiError) and exc.status_code == 404:
            ctx.result.set("workspace-url", "")
            raise Skipped(
                f"pull request #{pull.number} was closed while this run worked on its preview, "
                f"and the preview, workspace {preview.id} ({name}), is gone already (a teardown "
                "deleted it)"
            ) from None
        raise ActionError(
            f"pull request #{pull.number} was closed while this run worked on its preview, "
            f"and deleting the preview, workspace {preview.id} ({name}), failed: {exc}. Run "
            "the teardown again, or delete it by hand"
        ) from None
    if kept:
        ctx.reporter.warning(
            f"Pull request #{pull.number} was closed while this run worked on its preview, but "
            f"workspace {preview.id} serves {', '.join(kept)}: kept"
        )
        return
    ctx.result.set("workspace-url", "")
    raise Skipped(
        f"pull request #{pull.number} was closed while this run worked on its preview (a "
        "teardown that ran meanwhile found none yet), so this run deleted workspace "
        f"{preview.id} ({name}): nothing is left running for it"
    )


def _superseded(
    ctx: Context, preview: Preview, holder: str, error: BaseException | None
) -> Skipped:
    pull = ctx.config.pull_request
    assert pull is not None
    why = f" This run's last step ended: {str(error)[:MAX_REASON]}" if error else ""
    return Skipped(
        f"pull request #{pull.number}'s preview, workspace {preview.id} "
        f"({ctx.result.workspace_name}), was taken over by {holder}, another preview run of "
        "the pull request (a newer push, or one that ran at the same time), which updates "
        f"and reports it: this run stops here, and leaves the preview to that run.{why}"
    )


def _existing_preview(ctx: Context, state: State) -> Workspace | None:
    """The pull request's preview, if an earlier run made it: among the workspaces
    named ``name``, ``name-2``, ..., the oldest that carries this repository's and
    pull request's mark. Sets ``state.name`` to the preview's name, or to the first
    free name for a new one."""
    config = ctx.config
    pull = config.pull_request
    assert config.team_id is not None and pull is not None
    team = ctx.client.list_team_workspaces(config.team_id)
    for name in candidate_names(state.name):
        same = sorted((w for w in team if w.name == name), key=lambda w: w.id)
        if not same:
            state.name = name
            ctx.result.workspace_name = name
            return None
        ours = [w for w in same if _is_preview(ctx, read_mark(ctx, w.id))]
        if ours:
            if len(ours) > 1:
                ctx.reporter.warning(
                    f"{len(ours)} preview workspaces are named {name}: updating the oldest, "
                    f"{ours[0].id}; the others ({ids([w.id for w in ours[1:]])}) are left alone "
                    "(the teardown flow deletes them all)"
                )
            state.name = name
            ctx.result.workspace_name = name
            return ours[0]
        ctx.reporter.warning(
            f"A workspace named {name} ({ids([w.id for w in same])}) is not this pull "
            "request's preview (not created by codesphere-release for it): it is left alone, "
            "and the preview uses the next free name"
        )
    raise ActionError(f"no free workspace name from {state.name} to {state.name}-99")


def _is_preview(ctx: Context, mark: Mark | None) -> bool:
    pull = ctx.config.pull_request
    return (
        is_ours(ctx.config, mark)
        and mark is not None
        and pull is not None
        and mark.pr == pull.number
    )
