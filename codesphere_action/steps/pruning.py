"""What ``flow: prune`` deletes and keeps, and why.

Prune judges every workspace of the team by its mark (``steps/ownership.py``)
and by the team's domains:

- never one without this repository's mark (made by hand, by another tool,
  for another repository), never one that serves any path of any domain;
  never a copy: one Codesphere made from another (``sourceWorkspaceId``), or
  one of two or more whose marks carry one ``id`` (one per run of the
  action: a hand-made workspace with a copy of a release's env), all of
  which are kept, with one warning, and count for nothing;
- a preview (``pr=`` in its mark) goes when its pull request is closed (with
  ``github-token``: ``GET /repos/{owner}/{repo}/pulls/{number}``) or when it was
  not updated for ``max-age``;
- a leftover (``state=building``, no pull request: a release that failed or
  was cancelled and kept, or whose cleanup was cut off) goes when its run is
  over: with ``github-token`` as GitHub says (``GET .../actions/runs/{id}/
  attempts/{n}``), else when it started longer than ``max-age`` ago. A run
  GitHub says is still going keeps it, and so does one that succeeded (a
  successful run leaves no leftover: its mark could not say released). A
  workspace another release's mark names as replaced (``previous``) served a
  path, so it is no leftover but a release, judged as the next point says;
- an earlier release (``state=released``) goes when it is older than the
  newest ``keep`` per domain path (its mark's ``domain`` and ``path``: a path
  is one app's, whatever ``workspace-name`` its releases had), and without a
  domain per app (its mark's ``app``; for an earlier version's mark, which has
  none, the app its name can only be, ``_app_by_name``, else it is kept: never
  a guess toward a delete). Older and newer
  mean what they mean to the superseded rule (``ownership.Start``: the
  workflow run's id first, then ``started``), so the release prune keeps to
  roll back to is the one a rollback would go back to. Releases newer than the
  one that serves their path (staged, not promoted yet) do not count and stay;
  in a group nothing of this repository serves, the newest one is the current
  release and stays too. A release an earlier version made (no
  route in its mark) is kept: nothing says which path it was for.

The age of a preview or a leftover is the time since its mark's ``started``
(the last run that made or updated it), or, for an earlier version's mark,
since the workspace's ``createdAt``. Whatever GitHub cannot tell (no token, an
error, a run it does not know) falls back to the age, with one warning per
kind of question. The flow re-reads the domains and the mark right before each
delete (``delete_unless_serving``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cmp_to_key

from ..context import Context
from ..github_api import GitHubApi, GitHubError, pull_request_state, run_attempt_state
from ..models import Workspace
from ..timings import CHECK_SECONDS, Deadline
from .ownership import (
    BUILDING,
    RELEASED,
    Mark,
    Start,
    compare_starts,
    copy_of,
    is_ours,
    shared_marks,
)

DAY = 86400.0


@dataclass(frozen=True)
class Verdict:
    """One workspace of the team: to be deleted or kept, and why."""

    workspace: Workspace
    mark: Mark | None
    delete: bool
    why: str


def format_age(seconds: float) -> str:
    """``10 min``, ``5 h``, ``1 day``, ``10 days``: an age in its largest sensible unit."""
    if seconds < 60:
        return "less than a minute"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * DAY:
        return f"{round(seconds / 3600)} h"
    days = round(seconds / DAY)
    return f"{days} day{'s' if days != 1 else ''}"


def moment(text: str) -> datetime | None:
    """A mark's ``started`` or an answer's ``createdAt`` as a UTC time; None when
    it is none."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class GitHubAnswers:
    """What GitHub says of pull requests and workflow runs (with github-token),
    each asked once, all within one deadline; None where it cannot say, with one
    warning per kind of question."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        token = ctx.config.github.token
        self.api = GitHubApi(ctx.config, ctx.reporter, ctx.clock) if token else None
        self.deadline: Deadline = ctx.deadline(CHECK_SECONDS)
        self.pulls: dict[int, str | None] = {}
        self.runs: dict[str, str | None] = {}
        self.warned: set[str] = set()

    def close(self) -> None:
        if self.api is not None:
            self.api.close()

    def pull(self, number: int) -> str | None:
        """``open`` or ``closed``; None when it cannot be asked or GitHub cannot say."""
        if self.api is None:
            return None
        if number not in self.pulls:
            try:
                self.pulls[number] = pull_request_state(self.api, number, self.deadline)
            except GitHubError as exc:
                self.pulls[number] = None
                self._warn("pull requests", f"whether pull request #{number} is closed", exc)
        return self.pulls[number]

    def run(self, run: str) -> str | None:
        """The run's attempt's status (``completed:failure``, ``in_progress``); None
        when it cannot be asked (no token, a run outside GitHub) or GitHub cannot say."""
        run_id, _, attempt = run.partition(".")
        if self.api is None or not (run_id.isdigit() and attempt.isdigit()):
            return None
        if run not in self.runs:
            try:
                self.runs[run] = run_attempt_state(self.api, run_id, attempt, self.deadline)
            except GitHubError as exc:
                self.runs[run] = None
                self._warn("workflow runs", f"whether workflow run {run} is over", exc)
        return self.runs[run]

    def _warn(self, kind: str, what: str, exc: GitHubError) -> None:
        if kind in self.warned:
            return
        self.warned.add(kind)
        self.ctx.reporter.warning(
            f"could not ask GitHub {what}: {exc}. For the {kind} GitHub cannot tell about, "
            f"prune goes by max-age ({format_age(self.ctx.config.max_age)})",
            title="GitHub could not tell",
        )


def judge_team(
    ctx: Context,
    team: list[Workspace],
    marks: dict[int, Mark | None],
    serving: dict[int, list[str]],
    github: GitHubAnswers,
) -> list[Verdict]:
    """A verdict for every workspace of ``team`` (by id), as the module docstring
    says; ``serving``: the routes that reach each workspace."""
    now = moment(ctx.config.run.started) or datetime.now(UTC)
    verdicts: list[Verdict] = []
    releases: list[tuple[Workspace, Mark]] = []
    way_back = _ways_back(ctx, marks)
    shared = _shared(ctx, marks)
    for workspace in sorted(team, key=lambda w: w.id):
        mark = marks.get(workspace.id)
        why = _not_ours(ctx, mark) or _serves(serving.get(workspace.id, []))
        why = why or copy_of(workspace) or _copied(shared.get(workspace.id, []))
        if why or mark is None:
            verdicts.append(Verdict(workspace, mark, False, why))
        elif mark.pr is not None:
            verdicts.append(_preview(ctx, workspace, mark, github, _age(workspace, mark, now)))
        elif mark.state == BUILDING and workspace.id in way_back:
            releases.append((workspace, mark))  # its mark could not say released
        elif mark.state == BUILDING:
            verdicts.append(_leftover(ctx, workspace, mark, github, _age(workspace, mark, now)))
        elif mark.state == RELEASED:
            releases.append((workspace, mark))
        else:
            why = f"its mark's state, {mark.state}, is one this version does not know"
            verdicts.append(Verdict(workspace, mark, False, why))
    live = _live_starts(ctx, team, marks, serving)
    verdicts += _releases(ctx, releases, live)
    return sorted(verdicts, key=lambda v: v.workspace.id)


def _ways_back(ctx: Context, marks: dict[int, Mark | None]) -> set[int]:
    """The workspaces a release of this repository replaced by its switch (its
    mark's ``previous``): they served a path, so they were released, whatever
    their own marks say (an update that failed, a cancel right after a switch)."""
    found: set[int] = set()
    for mark in marks.values():
        if mark is not None and is_ours(ctx.config, mark):
            found.update(mark.previous)
    return found


def _shared(ctx: Context, marks: dict[int, Mark | None]) -> dict[int, list[int]]:
    """``ownership.shared_marks`` of this repository's marks, with one warning
    naming the workspaces (never what their env holds)."""
    ours = {i: m for i, m in marks.items() if is_ours(ctx.config, m)}
    shared = shared_marks(ours)
    groups = sorted({tuple(g) for g in shared.values()})
    if groups:
        listed = "; ".join(", ".join(str(i) for i in group) for group in groups)
        ctx.reporter.warning(
            f"workspaces {listed} carry one mark of codesphere-release (one id, which is one "
            "per run of the action): all but one are copies of a release's environment "
            "variables, and which one is the release cannot be told, so prune keeps them all. "
            "Remove CODESPHERE_RELEASE from the copies (or delete what is not needed by hand)",
            title="Copied mark",
        )
    return shared


def _copied(group: list[int]) -> str:
    if not group:
        return ""
    return (
        f"its mark's id is carried by workspaces {', '.join(str(i) for i in group)} "
        "together: a copy of a release's env, kept whichever it is"
    )


def _not_ours(ctx: Context, mark: Mark | None) -> str:
    if mark is None:
        return "not created by codesphere-release"
    if not is_ours(ctx.config, mark):
        return (
            f"made by codesphere-release for {mark.repository or 'a run outside GitHub'}, not "
            "for this repository"
        )
    return ""


def _serves(routes: list[str]) -> str:
    return f"it serves {', '.join(routes)}" if routes else ""


def _age(workspace: Workspace, mark: Mark, now: datetime) -> tuple[float | None, str]:
    """(seconds since its mark's run started, or since the workspace was made for an
    earlier version's mark; None when neither is known) and which of the two."""
    started = moment(mark.started) if mark.started else None
    if started is not None:
        return (now - started).total_seconds(), "started"
    created = moment(workspace.created_at) if workspace.created_at else None
    return (None if created is None else (now - created).total_seconds()), "created"


def _preview(
    ctx: Context,
    workspace: Workspace,
    mark: Mark,
    github: GitHubAnswers,
    age: tuple[float | None, str],
) -> Verdict:
    number, limit = mark.pr, ctx.config.max_age
    state = github.pull(number) if number is not None else None
    if state == "closed":
        return Verdict(workspace, mark, True, f"pull request #{number} is closed")
    seconds, since = age
    max_age = f"max-age {format_age(limit)}"
    if seconds is not None and seconds > limit:
        if since == "created":
            why = (
                f"the preview of pull request #{number} was made {format_age(seconds)} ago by an "
                f"earlier version of codesphere-release ({max_age})"
            )
        else:
            why = f"the preview of pull request #{number}: not updated for {format_age(seconds)}"
            why += f" ({max_age})"
        return Verdict(workspace, mark, True, why)
    done = "updated" if since == "started" else "made"
    updated = "made at an unknown time" if seconds is None else f"{done} {format_age(seconds)} ago"
    if state == "open":
        return Verdict(
            workspace,
            mark,
            False,
            f"pull request #{number} is open, and its preview was {updated} ({max_age})",
        )
    unknown = "unknown without github-token" if github.api is None else "not known"
    return Verdict(
        workspace,
        mark,
        False,
        f"the preview of pull request #{number} was {updated} ({max_age}); whether the pull "
        f"request is closed is {unknown}",
    )


def _leftover(
    ctx: Context,
    workspace: Workspace,
    mark: Mark,
    github: GitHubAnswers,
    age: tuple[float | None, str],
) -> Verdict:
    run, limit = mark.run, ctx.config.max_age
    state = github.run(run)
    if state == "completed:success":
        why = (
            f"its run {run} succeeded, so its mark should not say building: a release whose "
            "mark could not be updated (or a superseded run's workspace whose delete failed); "
            "kept, never taken for a leftover: delete it by hand if it is no longer needed"
        )
        return Verdict(workspace, mark, False, why)
    if state is not None and state.startswith("completed"):
        conclusion = state.partition(":")[2] or "completed"
        why = f"left over from run {run}, which is over ({conclusion}); it was never released"
        return Verdict(workspace, mark, True, why)
    if state is not None:
        return Verdict(workspace, mark, False, f"run {run} is still {state}: it may be building it")
    seconds, since = age
    max_age = f"max-age {format_age(limit)}"
    if seconds is not None and seconds > limit:
        why = f"left over from run {run}, {since} {format_age(seconds)} ago ({max_age})"
        why += ", and never released"
        return Verdict(workspace, mark, True, why)
    when = "at an unknown time" if seconds is None else f"{format_age(seconds)} ago"
    why = f"it may still be in the works of run {run} ({since} {when}; {max_age})"
    return Verdict(workspace, mark, False, why)


def _live_starts(
    ctx: Context,
    team: list[Workspace],
    marks: dict[int, Mark | None],
    serving: dict[int, list[str]],
) -> dict[str, Start]:
    """Per route, the start of the newest release of this repository that serves
    something (newest as the superseded rule has it, ``Start.after``)."""
    live: dict[str, Start] = {}
    for workspace in team:
        mark = marks.get(workspace.id)
        if mark is None or not is_ours(ctx.config, mark) or not serving.get(workspace.id):
            continue
        known = live.get(mark.route)
        if mark.route and (known is None or mark.start.after(known)):
            live[mark.route] = mark.start
    return live


def _releases(
    ctx: Context, releases: list[tuple[Workspace, Mark]], live: dict[str, Start]
) -> list[Verdict]:
    """The earlier releases that serve nothing, per route: the newest ``keep`` stay."""
    keep = ctx.config.keep
    verdicts: list[Verdict] = []
    groups: dict[tuple[str, str], list[tuple[Workspace, Mark]]] = {}
    for workspace, mark in releases:
        app = mark.app or _app_by_name(workspace, mark)
        if not mark.started:
            why = (
                "released by an earlier version of codesphere-release, whose mark names no "
                "domain path: delete it by hand if it is no longer needed"
            )
            verdicts.append(Verdict(workspace, mark, False, why))
        elif not mark.route and app is None:
            why = (
                "released without a domain by an earlier version of codesphere-release, whose "
                f"mark does not name the app; its name, {workspace.name}, may be another app's "
                "(workspace-name), so it is not ranked: delete it by hand if it is no longer "
                "needed"
            )
            verdicts.append(Verdict(workspace, mark, False, why))
        else:
            # A route is one app's: every release on it is one line (the superseded
            # rule's); without a route, the app tells the releases apart.
            groups.setdefault((mark.route, "" if mark.route else app or ""), []).append(
                (workspace, mark)
            )
    for (route, app), members in groups.items():
        verdicts += _release_group(keep, route, app, members, live.get(route))
    return verdicts


def _app_by_name(workspace: Workspace, mark: Mark) -> str | None:
    """The app of a release whose mark does not name it (an earlier version's),
    when its name can be only that app's: ``<app>-<sha7>`` (``-2``, ``-3`` ...
    after it), the default name, whose sha7 is the mark's commit; a name without
    a ``-<number>`` ending, which is ``workspace-name`` itself. None when it
    could be more than one app's (``worker-2``: the app ``worker`` or
    ``worker-2``): prune never guesses toward a delete."""
    sha7 = mark.commit[:7]
    if len(sha7) == 7:
        default = re.fullmatch(rf"(.+)-{re.escape(sha7)}(?:-\d+)?", workspace.name)
        if default:
            return default[1]
    if not workspace.name or re.fullmatch(r".*-\d+", workspace.name):
        return None
    return workspace.name


def _newest_first(pair: tuple[Workspace, Mark], other: tuple[Workspace, Mark]) -> int:
    """The order of ``_release_group``: the newer release first (``Start.after``),
    the higher workspace id first between two the rule cannot tell apart."""
    newer = compare_starts(other[1].start, pair[1].start)
    return newer or other[0].id - pair[0].id


def _release_group(
    keep: int,
    route: str,
    app: str,
    members: list[tuple[Workspace, Mark]],
    serving_start: Start | None,
) -> list[Verdict]:
    """One route's (or, without one, one app's) earlier releases, newest first:
    the newest ``keep`` stay. ``serving_start``: the start of this repository's
    release that serves the route (None: none serves it, so the newest here is
    the current one)."""
    of = f"of {route}" if route else "without a domain"
    of_app = f" of app {app}" if app and not route else ""
    members = sorted(members, key=cmp_to_key(_newest_first))
    newest = f"the newest earlier release {of}" if keep == 1 else f"one of the newest {keep}"
    if keep != 1:
        newest += f" earlier releases {of}"
    current, counted, verdicts = serving_start is None, 0, []
    for workspace, mark in members:
        if serving_start is not None and mark.start.after(serving_start):
            why = f"newer than the release that serves {route}: staged, not promoted yet?"
        elif current:
            current = False
            why = f"the newest release {of}{of_app}; nothing of this repository serves its path"
        else:
            counted += 1
            if counted > keep:
                why = f"an earlier release {of} beyond the newest {keep}{of_app} (keep: {keep})"
                verdicts.append(Verdict(workspace, mark, True, why))
                continue
            why = f"{newest}{of_app}, kept to roll back to (keep: {keep})"
        verdicts.append(Verdict(workspace, mark, False, why))
    return verdicts
