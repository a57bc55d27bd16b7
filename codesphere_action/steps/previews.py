"""The pull request's preview workspace: finding it, taking it over from another
run of the pull request, and what happens at a run's end.

Runs that overlap (pushes outside one concurrency group) end with one preview:
- the oldest preview of the pull request (the lowest id) wins: a run that
  finds an older one right after its create, or again at its end (a create
  answered late may show up only then), takes it over, deletes its own (it
  serves nothing) and updates the older one as a later push would;
- the preview's mark names the run that took it over last (its ``id``). A run
  that finds, when it fails or ends, that another run holds its preview stops
  there, ``skipped`` (the other run reports the preview), and its cleanup
  never deletes a workspace whose mark, read right before the delete, does
  not carry its own id.
The API has no conditional delete: between that last read and the DELETE
there is one request's time in which another run could take the preview
over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..context import Context
from ..errors import ActionError, ApiError, NotFound, Skipped
from ..github_api import GitHubApi, GitHubError, pull_request_state
from ..models import Workspace
from ..timings import CHECK_SECONDS, CLEANUP_SECONDS, GITHUB_SECONDS, Deadline
from .creation import State, ids, taken_by
from .ownership import RELEASED, Mark, candidate_names, delete_unless_serving, is_ours, read_mark
from .secrets import workspace_env
from .workspace import git_pull

MAX_REASON = 300  # of the error quoted when another run took the preview over


class PreviewGone(ActionError):
    """The preview this run worked on was deleted meanwhile (a teardown, by hand)."""


@dataclass
class Preview:
    """The pull request's preview workspace this run works on."""

    id: int | None = None
    # It existed before this run: found, or taken over from another run.
    reused: bool = False
    # This run's mark is on it (written when it was taken over, or at the create).
    held: bool = False


def check_clone(ctx: Context, workspace_id: int, deadline: Deadline) -> None:
    """A new workspace has a clone of the branch before any stage runs. Without
    one (Codesphere may make the workspace all the same when the branch does not
    exist: git calls then answer 400), a pull of the branch tells whether the
    branch is gone (its error names it) or the clone was only late."""
    try:
        ctx.client.git_head(workspace_id, deadline=deadline)
    except ApiError as exc:
        if exc.status_code != 400:
            raise
        ctx.reporter.info(f"Workspace {workspace_id} has no git clone yet ({exc}): pulling")
        try:
            git_pull(ctx, workspace_id, deadline)
        except ApiError as pull_error:
            raise branch_gone(ctx, pull_error) or pull_error from None


def branch_gone(ctx: Context, error: ApiError) -> ActionError | None:
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


def take_over(
    ctx: Context, state: State, preview: Preview, workspace_id: int, deadline: Deadline
) -> None:
    """Write ``env`` and this run's mark onto the preview: from now on it is this
    run's, and a run that held it before never deletes it."""
    config = ctx.config
    env = workspace_env(ctx)
    ctx.client.set_env_vars(workspace_id, [*env, state.mark.as_env()], deadline=deadline)
    preview.held = True
    if env:
        plain = [v.name for v in env if v.name not in config.secret_names]
        secret = len(env) - len(plain)
        said = [", ".join(plain)] if plain else []
        said += [f"{secret} from secret-env"] if secret else []
        ctx.reporter.info("Environment variables set: " + "; ".join(said))
    ctx.reporter.debug(f"workspace {workspace_id}: mark {state.mark.render()}")


def older_preview(
    ctx: Context, state: State, own: Workspace, deadline: Deadline
) -> Workspace | None:
    """Another preview of the pull request that wins over ``own``, the one this
    run created, else None. Right after the create, and again at the run's end
    (a create answered late shows up only then): the oldest wins (the lowest
    id, as ids grow with the creates), and so does one another run finished
    already (released: it was reported to the pull request). Ids may be handed
    out when a create arrives while its workspace shows up when it is done, so
    the older one can appear last: by then its rival is released, and this run
    yields to that one instead."""
    config = ctx.config
    assert config.team_id is not None
    names = set(candidate_names(config.workspace_name))
    team = ctx.client.list_team_workspaces(config.team_id, deadline=deadline)
    for workspace in sorted((w for w in team if w.name in names), key=lambda w: w.id):
        if workspace.id == own.id:
            continue
        mark = read_mark(ctx, workspace.id, deadline)
        # This run's own twins (a create repeated after a lost answer) are
        # remove_twins's to delete.
        if not is_preview(ctx, mark) or mark is None or mark.nonce == state.mark.nonce:
            continue
        if workspace.id < own.id or mark.state == RELEASED:
            return workspace
    return None


def take_over_older(
    ctx: Context,
    state: State,
    preview: Preview,
    own: Workspace,
    older: Workspace,
    deadline: Deadline,
) -> Workspace | None:
    """Take the older preview over and delete the one this run made; return the
    older one, or None when it was deleted meanwhile (this run's own goes on)."""
    ctx.reporter.info(
        f"Workspace {older.id} ({older.name}), an older preview of this pull request, was "
        f"made by another run meanwhile: taking it over, and deleting workspace {own.id} "
        "that this run made"
    )
    try:
        take_over(ctx, state, preview, older.id, deadline)
    except NotFound:
        ctx.reporter.info(f"Workspace {older.id} is gone meanwhile: going on with {own.id}")
        return None
    preview.id, preview.reused = older.id, True
    state.name = older.name
    ctx.result.workspace_name = older.name
    ctx.result.set("workspace-id", older.id)
    kept = delete_unless_serving(ctx, own.id, deadline)
    if kept:
        ctx.reporter.warning(
            f"Workspace {own.id}, made by this run, serves {', '.join(kept)}: kept"
        )
    else:
        ctx.reporter.info(f"Deleted workspace {own.id}: the preview is {older.id}")
    state.created_id = None
    return older


def holder(ctx: Context, state: State, preview: Preview, *, ended: bool = False) -> str:
    """Who holds the preview now when it is not this run ("" when it is, or when
    it cannot be told: a cleanup reads the mark again before any delete). At
    the run's end (``ended``), a preview that is gone is a failure: the run has
    nothing left to report."""
    if preview.id is None or not preview.held:
        return ""
    try:
        return taken_by(ctx, state, preview.id, ctx.deadline(CHECK_SECONDS))
    except NotFound:
        if not ended:
            return ""
        raise PreviewGone(
            f"the preview, workspace {preview.id} ({ctx.result.workspace_name}), was deleted "
            "while this run worked on it (a teardown of the pull request, or by hand), so "
            "there is no preview to report. Push again to make a new one"
        ) from None
    except ActionError as exc:
        ctx.reporter.debug(f"reading the mark of workspace {preview.id}: {exc}")
        return ""


def delete_if_closed(ctx: Context, state: State, preview: Preview) -> None:
    """With ``github-token``: ask GitHub whether the pull request closed while
    this run worked. A teardown that ran meanwhile (outside the preview's
    concurrency group) found no preview while the create was under way; so
    delete the preview this run holds, under the deletion rule, and raise
    Skipped. When GitHub cannot tell: one warning, the preview stays."""
    config, pull = ctx.config, ctx.config.pull_request
    assert pull is not None
    if not config.github.token or preview.id is None or not pull_request_closed(ctx, preview.id):
        return
    name = ctx.result.workspace_name
    deadline = ctx.deadline(CLEANUP_SECONDS)
    held: list[str] = []

    def kept_by(limit: Deadline) -> str:
        held.append(taken_by(ctx, state, preview.id or 0, limit))  # right before the delete
        return held[-1]

    try:
        kept = delete_unless_serving(ctx, preview.id, deadline, kept_by=kept_by)
        if held and held[-1]:
            raise superseded(ctx, preview, held[-1], None)
    except ActionError as exc:
        if isinstance(exc, Skipped):
            raise
        if isinstance(exc, NotFound):
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


def pull_request_closed(ctx: Context, workspace_id: int | None) -> bool:
    """Whether GitHub says the pull request is closed now; False, with a warning,
    when it cannot say (``workspace_id``: the preview that would then stay)."""
    pull = ctx.config.pull_request
    assert pull is not None
    api = GitHubApi(ctx.config, ctx.reporter, ctx.clock)
    try:
        return pull_request_state(api, pull.number, ctx.deadline(GITHUB_SECONDS)) == "closed"
    except GitHubError as exc:
        then = (
            f"If it was, run the teardown again or delete workspace {workspace_id} by hand"
            if workspace_id is not None
            else "A real run asks again at its end"
        )
        ctx.reporter.warning(
            f"could not ask GitHub whether pull request #{pull.number} was closed while this "
            f"run worked: {exc}. {then}",
            title="Pull request state",
        )
        return False
    finally:
        api.close()


def superseded(ctx: Context, preview: Preview, holder: str, error: BaseException | None) -> Skipped:
    pull = ctx.config.pull_request
    assert pull is not None
    # Redacted before it is cut: a cut must never leave part of a secret.
    why = f" This run's last step ended: {ctx.reporter.redact(str(error))[:MAX_REASON]}"
    why = why if error else ""
    return Skipped(
        f"pull request #{pull.number}'s preview, workspace {preview.id} "
        f"({ctx.result.workspace_name}), was taken over by {holder}, another preview run of "
        "the pull request (a newer push, or one that ran at the same time), which updates "
        f"and reports it: this run stops here, and leaves the preview to that run.{why}"
    )


def existing_preview(ctx: Context, state: State, deadline: Deadline) -> Workspace | None:
    """The pull request's preview, if an earlier run made it: among the workspaces
    named ``name``, ``name-2``, ..., the oldest that carries this repository's and
    pull request's mark. Sets ``state.name`` to the preview's name, or to the first
    free name for a new one."""
    config = ctx.config
    pull = config.pull_request
    assert config.team_id is not None and pull is not None
    team = ctx.client.list_team_workspaces(config.team_id, deadline=deadline)
    taken: list[str] = []  # names passed over: one warning sums them up (ten show per step)
    for name in candidate_names(state.name):
        same = sorted((w for w in team if w.name == name), key=lambda w: w.id)
        ours = [w for w in same if is_preview(ctx, read_mark(ctx, w.id, deadline))]
        if not same or ours:
            _say_taken(ctx, taken, name)
            state.name = name
            ctx.result.workspace_name = name
        if not same:
            return None
        if ours:
            if len(ours) > 1:
                ctx.reporter.warning(
                    f"{len(ours)} preview workspaces are named {name}: updating the oldest, "
                    f"{ours[0].id}; the others ({ids([w.id for w in ours[1:]])}) are left alone "
                    "(the teardown flow deletes them all)"
                )
            return ours[0]
        ctx.reporter.info(
            f"A workspace named {name} ({ids([w.id for w in same])}) is not this pull "
            "request's preview (not created by codesphere-release for it): it is left alone"
        )
        taken.append(name)
    raise ActionError(
        f"no free workspace name from {state.name} to {state.name}-99: each is taken by a "
        "workspace that is not this pull request's preview (the log lists them). Set the input "
        "'workspace-name', or delete the workspaces of those names that are no longer needed"
    )


def _say_taken(ctx: Context, taken: list[str], name: str) -> None:
    if taken:
        count = f"{len(taken)} name{' was' if len(taken) == 1 else 's were'}"
        ctx.reporter.warning(
            f"{count} taken by workspaces that are not this pull request's preview (not created "
            f"by codesphere-release for it; the log lists each): they are left alone, and the "
            f"preview uses {name}",
            title="Workspace names taken",
        )


def is_preview(ctx: Context, mark: Mark | None) -> bool:
    pull = ctx.config.pull_request
    return (
        is_ours(ctx.config, mark)
        and mark is not None
        and pull is not None
        and mark.pr == pull.number
    )
