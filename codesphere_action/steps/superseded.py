"""The superseded rule: a release never replaces a newer one of the same repository.

Each release's mark records its workflow run and when its run of the action
started (``started``, UTC with milliseconds, read once by main). Of two
releases the newer is the one of the later-created workflow run (run ids grow
across every workflow; a re-run keeps its run's id), then, within one run or
outside GitHub, the one that started later (``ownership.Start``);
``GITHUB_RUN_NUMBER``, counted per workflow, orders nothing across workflows.
The workspaces that serve the release's path are compared with the release
right before the switch writes the domain's map, in the same read-check-write
(``steps/domain.py``), and already in the Check phase, before anything is
built; during a bake, when the path changed (``steps/bake.py``): when one
carries this repository's mark of a newer release, this release is
superseded. It writes nothing and ends ``superseded`` (a notice,
exit code 0, that names what decided: the later workflow run, or within one
run the later start); the flow deletes what it created, under the deletion rule. The
outputs describe the release that won: its workspace, URL and commit, and the
domain it serves.

Which start is compared (``release_start``):
- zero-downtime: this run's own;
- promote: the promoted workspace's mark's. A workspace without this
  repository's mark is no release of it, so the rule does not apply (the log
  says so); an earlier version's mark, without ``started``, counts as older
  than any mark that has it;
- rollback goes back on purpose: exempt, and its log says so.

The API has no conditional write: between the read and the PUT there is one
request's time in which another run could switch (the same window as the
previews' take-over, ``steps/previews.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..addresses import workspace_url
from ..context import Context
from ..errors import ActionError, NotFound, Superseded
from ..models import DomainMap
from ..timings import CHECK_SECONDS, Deadline
from .ownership import Mark, Start, is_ours, read_mark


@dataclass(frozen=True)
class Newer:
    """A workspace serving the path that holds a newer release of this repository."""

    workspace_id: int
    mark: Mark


def release_start(ctx: Context, promoted: int | None, deadline: Deadline) -> Start | None:
    """The start the rule compares the serving workspaces with: this run's
    (``promoted`` None: a release of its own), the promoted workspace's mark's,
    or None when the rule does not apply (a rollback; a promoted workspace
    without this repository's mark), which the log says. Raises ActionError
    when the promoted workspace's mark cannot be read."""
    config = ctx.config
    if config.flow == "rollback":
        ctx.reporter.info(
            "A rollback goes back on purpose: the rule that a release never replaces a newer "
            "one does not apply (the workspace rolled back to may be older than what serves "
            f"{config.domain_url} now)"
        )
        return None
    if promoted is None:
        return Start(config.run.id, config.run.started)
    try:
        mark = read_mark(ctx, promoted, deadline)
    except ActionError as exc:
        raise ActionError(
            f"could not read workspace {promoted}'s mark to make sure it is not older than the "
            f"release that serves {config.domain_url} ({exc}), so the domain was not switched"
        ) from None
    if mark is None or not is_ours(config, mark):
        ctx.reporter.info(
            f"Workspace {promoted} carries no mark of codesphere-release for this repository: it "
            "is no release of it, so it is not compared with the release that serves the path"
        )
        return None
    return mark.start


def find_newer(
    ctx: Context,
    mapping: DomainMap,
    key: str,
    started: Start | None,
    deadline: Deadline,
    *,
    skip: Collection[int] = (),
    read_timeout: float | None = None,
) -> Newer | None:
    """The first workspace on the map's path ``key`` (but those in ``skip``: the
    targets, ids that no longer exist) whose mark is this repository's and
    started after ``started``; None when there is none or ``started`` is None
    (the rule does not apply). Raises ActionError when a serving workspace's
    mark cannot be read: the switch then writes nothing."""
    if started is None:
        return None
    for workspace_id in mapping.ids(key):
        if workspace_id in skip:
            continue
        try:
            mark = read_mark(ctx, workspace_id, deadline, read_timeout=read_timeout)
        except NotFound:
            continue  # deleted meanwhile: no release there
        except ActionError as exc:
            raise ActionError(
                f"could not read the mark of workspace {workspace_id}, which serves "
                f"{ctx.config.domain_url}, to make sure it is not a newer release of this "
                f"repository ({exc}), so the domain was not switched"
            ) from None
        if mark is not None and is_ours(ctx.config, mark) and mark.newer_than(started):
            return Newer(workspace_id, mark)
    return None


def superseded(
    ctx: Context,
    newer: Newer,
    started: Start,
    own: str,
    done: str = "so this run did not switch the domain",
) -> Superseded:
    """The end of a superseded run: the outputs describe the newer release that
    serves the path (read best-effort), the error names it. ``own``: what this
    run was releasing ("this release", "workspace 12 (shop-1)"); ``done``: what
    the run did about it."""
    config, mark = ctx.config, newer.mark
    ctx.result.set("workspace-id", newer.workspace_id)
    ctx.result.set("domain-url", config.domain_url)
    ctx.result.set("previous-workspace-id", "")
    ctx.result.set("workspace-url", "")
    ctx.result.set("deployed-commit", "")
    name = _describe_winner(ctx, newer.workspace_id)
    commit = f", commit {mark.commit}" if mark.commit else ""
    ctx.result.superseded_by = f"run {mark.run}{commit}, started {mark.started}"
    return Superseded(
        f"superseded: a newer release serves {config.domain_url}: workspace "
        f"{newer.workspace_id}{name}{commit} of run {mark.run}, {_why_newer(mark, started, own)}. "
        f"A release never replaces a newer one of the same repository, {done}"
    )


def _why_newer(mark: Mark, started: Start, own: str) -> str:
    """What made ``mark``'s release the newer one, as ``Start.after`` decided: the
    workflow runs when they differ (GitHub numbers them as they are created),
    else the starts (within one run, or outside GitHub)."""
    if mark.start.runs_decide(started):
        theirs, mine = mark.run.partition(".")[0], started.run.partition(".")[0]
        return f"a later workflow run ({theirs} > {mine}) than {own}"
    since = f"at {started.at}" if started.at else "before releases recorded when they started"
    return f"which started at {mark.started}, later than {own}, which started {since}"


def _describe_winner(ctx: Context, workspace_id: int) -> str:
    """ " (<name>)" of the winning workspace, its URL and commit as outputs; ""
    and no outputs when they cannot be read (the run ends all the same)."""
    deadline = ctx.deadline(CHECK_SECONDS)
    ctx.result.workspace_name = ""
    try:
        workspace = ctx.client.get_workspace(workspace_id, deadline=deadline)
        if workspace.dev_domain:
            ctx.result.set("workspace-url", workspace_url(workspace.dev_domain))
        ctx.result.workspace_name = workspace.name
        ctx.result.set("deployed-commit", ctx.client.git_head(workspace_id, deadline=deadline))
    except ActionError as exc:
        ctx.reporter.debug(f"describing workspace {workspace_id}: {exc}")
    return f" ({ctx.result.workspace_name})" if ctx.result.workspace_name else ""
