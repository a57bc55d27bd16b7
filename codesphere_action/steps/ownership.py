"""What the action may delete, and how it knows what it made.

The rule, in every flow (leftovers, ``delete-previous``, teardown, cleanup):
a workspace that serves any path of any domain of the team is never deleted
(``GET /domains/team/{teamId}`` lists them all, read right before each
delete). Besides the workspace a run created itself, only a workspace this
action created for this repository (its mark) may be deleted, and only when
it serves nothing.

The mark: every workspace the action creates carries the environment variable
``CODESPHERE_RELEASE`` (the apps see it too), e.g.
``repo=acme/shop flow=zero-downtime run=4711.1 commit=4b825dc642cb app=shop
domain=shop.example.com path=/ state=building started=2026-12-03T17:04:05.123Z
id=9f86d081``: the repository, the flow, the run
(``GITHUB_RUN_ID.GITHUB_RUN_ATTEMPT``), the commit released (GITHUB_SHA, a
preview's head; 12 characters), for a preview ``pr=<number>``, the app
(``workspace-name``, else the repository part of the default name: what
tells two apps of one repository apart), after a switch ``previous=<ids>``
(the workspaces it replaced: its way back), for a release with a domain the
route it is for (``domain``, ``path``), ``state=released`` once a release
switched (or, without a switch, succeeded), ``started`` (when the run of the
action that made it, or took a preview over, started: UTC with
milliseconds; it orders releases across workflows, see
``steps/superseded.py``), and ``id``, one per run of the action (two jobs of
one workflow run share the run). Marks made by earlier versions lack the
app, the route or ``started``: without ``started`` they count as older than
any mark that has it; without the app, prune reads what it can from the
workspace's name (``steps/pruning.py``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from ..config import Config
from ..context import Context
from ..dotenv import MARK_NAME
from ..errors import ActionError, NotFound
from ..models import DomainInfo, EnvVar, Workspace
from ..timings import Deadline

MAX_NAME = 63
BUILDING, RELEASED = "building", "released"
# A mark's started: UTC with milliseconds, so that the text sorts as the time does.
STARTED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass(frozen=True)
class Start:
    """When a release began, to tell which of two is the newer: ``run``, the
    workflow run (``GITHUB_RUN_ID.GITHUB_RUN_ATTEMPT``), and ``at``, the UTC
    moment its run of the action started (the mark's ``started``).

    Of two runs of GitHub, the one with the higher run id is the newer: GitHub
    hands run ids out as runs are created, across every workflow of the
    repository, and a re-run keeps its run's id, so re-running an old run's
    job never makes an older commit the newest release. Within one run (its
    attempts, its jobs), and for a run outside GitHub, the later ``at`` is the
    newer; a release whose mark has no ``at`` (an earlier version's) is older
    than any that has one."""

    run: str = ""
    at: str = ""

    def after(self, other: Start) -> bool:
        mine, theirs = _run_number(self.run), _run_number(other.run)
        if mine is not None and theirs is not None and mine != theirs:
            return mine > theirs
        return bool(self.at) and (not other.at or self.at > other.at)

    def runs_decide(self, other: Start) -> bool:
        """Whether the workflow runs tell the two apart (two runs of GitHub),
        rather than the starts."""
        mine, theirs = _run_number(self.run), _run_number(other.run)
        return mine is not None and theirs is not None and mine != theirs

    def __str__(self) -> str:
        return self.at


def compare_starts(one: Start, other: Start) -> int:
    """1 when ``one`` is the newer (``Start.after``), -1 when ``other`` is, else 0:
    for ``functools.cmp_to_key``, so that whatever ranks releases ranks them as
    the superseded rule does."""
    return 1 if one.after(other) else -1 if other.after(one) else 0


def _run_number(run: str) -> int | None:
    number = run.partition(".")[0]
    return int(number) if number.isdigit() else None


@dataclass(frozen=True)
class Mark:
    repository: str
    flow: str
    run: str  # "<run id>.<attempt>"
    commit: str = ""  # the commit released, 12 characters (Config.deployment_ref)
    state: str = BUILDING
    pr: int | None = None
    # One per run of the action: two jobs of one workflow run (a matrix) share
    # the run and the attempt, never this.
    nonce: str = ""
    # When the run of the action that wrote it started ("" for an earlier
    # version's mark, which counts as older than any that has it).
    started: str = ""
    # The route a release is for ("" for a preview, a release without a domain,
    # or an earlier version's mark): the domain as given (lower case) and path.
    domain: str = ""
    path: str = ""
    # The app (Config.app: workspace-name, or the default name's repository part;
    # "" for an earlier version's mark).
    app: str = ""
    # Once released by a switch: the workspaces it replaced on its path, its way
    # back (they served the path, so they were released, whatever their own
    # marks say).
    previous: tuple[int, ...] = ()

    def render(self) -> str:
        parts = [f"repo={self.repository or '-'}", f"flow={self.flow}", f"run={self.run}"]
        if self.commit:
            parts.append(f"commit={self.commit}")
        if self.pr is not None:
            parts.append(f"pr={self.pr}")
        if self.app:
            parts.append(f"app={self.app}")
        if self.previous:
            parts.append(f"previous={','.join(str(i) for i in self.previous)}")
        if self.domain:
            parts += [f"domain={self.domain}", f"path={self.path or '/'}"]
        parts.append(f"state={self.state}")
        if self.started:
            parts.append(f"started={self.started}")
        if self.nonce:
            parts.append(f"id={self.nonce}")
        return " ".join(parts)

    @classmethod
    def parse(cls, text: str) -> Mark | None:
        fields = dict(part.partition("=")[::2] for part in text.split())
        if not {"repo", "flow", "run"} <= fields.keys():
            return None
        pr = fields.get("pr", "")
        started = fields.get("started", "")
        return cls(
            repository="" if fields["repo"] == "-" else fields["repo"],
            flow=fields["flow"],
            run=fields["run"],
            commit=fields.get("commit", ""),
            state=fields.get("state", BUILDING),
            pr=int(pr) if pr.isdigit() else None,
            nonce=fields.get("id", ""),
            started=started if STARTED.match(started) else "",
            domain=fields.get("domain", "").lower(),
            path=fields.get("path", "/") if fields.get("domain") else "",
            app=fields.get("app", ""),
            previous=tuple(int(i) for i in fields.get("previous", "").split(",") if i.isdigit()),
        )

    @property
    def route(self) -> str:
        """``domain/path`` as the mark names it ("" without a domain)."""
        return f"{self.domain}{self.path}" if self.domain else ""

    @property
    def start(self) -> Start:
        return Start(self.run, self.started)

    def newer_than(self, start: Start) -> bool:
        """Whether this mark's release is newer than the one that began at ``start``."""
        return self.start.after(start)

    def earlier_attempt_of(self, run: str) -> bool:
        """Whether this mark was made by an earlier attempt of ``run`` (a re-run of
        the job keeps GITHUB_RUN_ID and counts GITHUB_RUN_ATTEMPT up)."""
        mine, _, my_attempt = self.run.partition(".")
        theirs, _, their_attempt = run.partition(".")
        return (
            mine == theirs
            and my_attempt.isdigit()
            and their_attempt.isdigit()
            and int(my_attempt) < int(their_attempt)
        )

    def as_env(self) -> EnvVar:
        return EnvVar(MARK_NAME, self.render())

    def released(self, previous: Iterable[int] = ()) -> Mark:
        """This mark once its release is released: by a switch that replaced
        ``previous`` on its path, or without one."""
        return replace(self, state=RELEASED, previous=tuple(previous))


def new_mark(config: Config) -> Mark:
    pull = config.pull_request
    pr = pull.number if config.spec.creates and pull is not None else None
    routed = pr is None and bool(config.domain)
    return Mark(
        repository=config.run.repository,
        flow=config.flow,
        run=config.run.id,
        commit=config.deployment_ref[:12],
        pr=pr,
        nonce=secrets.token_hex(4),
        started=config.run.started,
        domain=config.domain if routed else "",
        path=config.domain_path if routed else "",
        app=config.app,
    )


def is_ours(config: Config, mark: Mark | None) -> bool:
    """Made by this action for this repository (as far as its mark says: see
    ``copy_of`` and ``shared_marks`` for a mark copied into another workspace)."""
    return mark is not None and mark.repository.lower() == config.run.repository.lower()


def copy_of(workspace: Workspace) -> str:
    """Why ``workspace`` is not one the action made although its mark may say so
    ("" when nothing says it): Codesphere made it as a copy of another
    (``sourceWorkspaceId``), with that one's env, mark included; the action
    never makes a copy."""
    source = workspace.source_workspace_id
    if source is None:
        return ""
    return (
        f"it was made as a copy of workspace {source} (sourceWorkspaceId), with that one's "
        "mark: codesphere-release never makes a copy"
    )


def shared_marks(
    marks: Mapping[int, Mark | None], names: Mapping[int, str] | None = None
) -> dict[int, list[int]]:
    """For each workspace whose mark's ``id`` another workspace's mark carries
    too: all of them (ids, sorted). The ``id`` is one per run of the action, so
    all but one of them at most are copies (a hand-made workspace with a copy of
    a release's env), and which is not cannot be told. With ``names``: only ids
    carried by workspaces of different names (two of one name are twins of one
    create, the action's own)."""
    holders: dict[str, list[int]] = {}
    for workspace_id, mark in marks.items():
        if mark is not None and mark.nonce:
            holders.setdefault(mark.nonce, []).append(workspace_id)
    out: dict[int, list[int]] = {}
    for group in holders.values():
        if len(group) < 2 or (names is not None and len({names.get(i) for i in group}) < 2):
            continue
        for workspace_id in group:
            out[workspace_id] = sorted(group)
    return out


def team_marks(ctx: Context, deadline: Deadline) -> tuple[list[Workspace], dict[int, Mark | None]]:
    """The team's workspaces and each one's mark (one deleted meanwhile left out)."""
    team_id = ctx.config.team_id
    assert team_id is not None  # every flow that deletes needs team-id
    team = ctx.client.list_team_workspaces(team_id, deadline=deadline)
    marks: dict[int, Mark | None] = {}
    for workspace in team:
        try:
            marks[workspace.id] = read_mark(ctx, workspace.id, deadline)
        except NotFound:
            continue
    return [w for w in team if w.id in marks], marks


def read_mark(
    ctx: Context, workspace_id: int, deadline: Deadline, *, read_timeout: float | None = None
) -> Mark | None:
    """The workspace's mark, None when it has none (made by hand or another tool)."""
    variables = ctx.client.list_env_vars(workspace_id, deadline=deadline, read_timeout=read_timeout)
    for var in variables:
        if var.name == MARK_NAME:
            return Mark.parse(var.value)
    return None


def routes(domains: list[DomainInfo]) -> dict[int, list[str]]:
    """workspace id -> the ``domain/path`` routes that reach it."""
    out: dict[int, list[str]] = {}
    for domain in domains:
        for path, ids in domain.workspaces.items():
            for workspace_id in ids:
                out.setdefault(workspace_id, []).append(f"{domain.name}{path}")
    return {k: sorted(v) for k, v in out.items()}


def team_routes(ctx: Context, deadline: Deadline) -> dict[int, list[str]]:
    team_id = ctx.config.team_id
    assert team_id is not None  # every flow that deletes needs team-id
    return routes(ctx.client.list_domains(team_id, deadline=deadline))


def delete_unless_serving(
    ctx: Context,
    workspace_id: int,
    deadline: Deadline,
    *,
    kept_by: Callable[[Deadline], str] | None = None,
) -> list[str]:
    """Delete the workspace unless a domain of the team routes to it, as the
    domains are right now. Return the routes that kept it ([] when deleted or
    gone already). ``kept_by``: asked last, right before the DELETE (after the
    domains were listed); a non-empty answer keeps the workspace and is
    returned as the reason (a preview another run took over)."""
    serving = team_routes(ctx, deadline).get(workspace_id, [])
    if serving:
        return serving
    held = kept_by(deadline) if kept_by is not None else ""
    if held:
        return [held]
    ctx.client.delete_workspace(workspace_id, deadline=deadline)
    return []


def exists(ctx: Context, workspace_id: int, deadline: Deadline) -> bool | None:
    """Whether the workspace still exists; None when the API could not tell."""
    try:
        return ctx.client.exists(workspace_id, deadline=deadline)
    except ActionError:
        return None


def candidate_names(base: str) -> Iterator[str]:
    """``base``, then ``base-2``, ``base-3``, ..., each cut to 63 characters."""
    yield base
    for number in range(2, 100):
        suffix = f"-{number}"
        yield base[: MAX_NAME - len(suffix)] + suffix
