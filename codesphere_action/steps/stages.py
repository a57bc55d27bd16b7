"""Running a pipeline stage and waiting until the run this release started ends.

``run_stage`` owns the stage's time (``stage-timeout``): one deadline for the
status reads, the stop of a run in progress, the landscape deploy, the start
and the wait. Which status entries are the run it started, and whether it is
done, is ``waiting.StageTracker``'s; the end cues from the running step's log
stream are ``cues.StepFollower``'s.
"""

from __future__ import annotations

import re

from ..context import Context
from ..cues import Cue, StepFollower
from ..errors import ActionError, ApiError, StageFailed, WaitTimeout, outcome_unknown
from ..models import StageEntry
from ..timings import (
    CONFIRM_SECONDS,
    LOG_READ_SECONDS,
    NO_SERVER_SECONDS,
    NO_SIGN_SECONDS,
    SHOW_LOGS_SECONDS,
    STOP_SETTLE_SECONDS,
    Deadline,
)
from ..waiting import (
    IDE_SERVER,
    Baseline,
    Progress,
    StageTracker,
    WaitStats,
    is_active,
    relevant,
    running_step,
)
from .logs import LogSource, reads_every_log, show_stage_logs, show_step_log, show_timed_out_logs
from .secrets import in_vault

SINGLE_SERVER = re.compile(r"multi.?server", re.IGNORECASE)


def stage_plan(ctx: Context) -> list[str]:
    """The stages a release runs before ``run``, as the inputs ask."""
    return [
        stage
        for stage, wanted in (("prepare", ctx.config.prepare), ("test", ctx.config.test))
        if wanted
    ]


def run_stage(ctx: Context, workspace_id: int, stage: str) -> None:
    """Start ``stage`` (with the profile) and wait until it succeeds (prepare, test)
    or its servers run (run). A run of the stage that is still in progress is
    stopped first; the run stage gets its landscape deployed first.

    With ``show-logs: always`` each step's log is shown once it succeeded (and
    the steps' before a failing one). Raises StageFailed with the failing step's
    log shown, or when the run never
    shows or the run stage starts no server; WaitTimeout after ``stage-timeout``,
    with the running step's log shown (``show_timed_out_logs``).
    """
    client, config = ctx.client, ctx.config
    with ctx.phase(f"Stage {stage}") as phase:
        if config.profile:
            phase.detail = f"profile {config.profile}"
        deadline = ctx.deadline(config.stage_timeout)
        # Every read before the start goes into the baseline: a landscape deploy
        # lists no server for a moment, then the stopped run's entries again.
        reads = [client.stage_status(workspace_id, stage, deadline=deadline)]
        if any(is_active(e) for e in relevant(stage, reads[-1])):
            reads.append(_stop_and_settle(ctx, workspace_id, stage, deadline))
        landscape = stage == "run" and sync_landscape(ctx, workspace_id, deadline)
        if landscape:
            reads.append(client.stage_status(workspace_id, stage, deadline=deadline))
        tracker = StageTracker(stage, Baseline.of(*reads))
        profile_note = f" (profile {config.profile})" if config.profile else ""
        ctx.reporter.info(f"Starting {stage}{profile_note}")
        _start(ctx, workspace_id, stage, tracker, deadline)
        outcome, entries = _wait(ctx, workspace_id, stage, tracker, deadline, confirm=landscape)
        if outcome.state == "failed":
            phase.outcome = "failed"
            message = _failure_message(ctx, workspace_id, stage, outcome, multi=landscape)
            raise StageFailed(stage, message)
    # After the phase's group: GitHub's log groups do not nest.
    show_stage_logs(ctx, workspace_id, stage, entries, multi=landscape)


class _Watch:
    """One stage wait's view across polls: the last progress, since when a
    multi-server run has looked up, the unlisted states said already."""

    def __init__(
        self, ctx: Context, workspace_id: int, stage: str, tracker: StageTracker, confirm: bool
    ) -> None:
        self.ctx, self.workspace_id, self.stage, self.tracker = ctx, workspace_id, stage, tracker
        self.confirm = confirm  # a landscape's servers may appear one after another
        self.started = ctx.clock.now()
        self.last = Progress("pending", "started")
        self.entries: list[StageEntry] = []  # our run's entries of the stage, last seen
        self.up_since: tuple[float, frozenset[tuple[str, str]]] | None = None
        self.unlisted: set[tuple[str, str]] = set()
        self.follower: StepFollower | None = None

    def check(self, limit: Deadline) -> Progress | None:
        ctx, stage = self.ctx, self.stage
        entries = ctx.client.stage_status(self.workspace_id, stage, deadline=limit)
        _say_unlisted(ctx, stage, entries, self.unlisted)
        progress = self.tracker.evaluate(entries)
        self.entries = [e for e in relevant(stage, entries) if e.key in self.tracker.ours]
        if progress.detail != self.last.detail:
            ctx.reporter.info(f"{stage}: {progress.detail}")
        self.last = progress
        if progress.state == "success" and self.confirm and not self._held(entries):
            return None  # servers may still be appearing: look again
        if progress.state in ("success", "failed"):
            return progress
        if self.follower is not None:
            self.follower.want(_running_step(stage, self.tracker, entries))
        self.no_sign(ctx.clock.now() - self.started, fail_at=True)
        return None

    def _held(self, entries: list[StageEntry]) -> bool:
        """Whether "up" held for ``CONFIRM_SECONDS`` with the same servers."""
        now, keys = self.ctx.clock.now(), frozenset(e.key for e in entries)
        if self.up_since is None or self.up_since[1] != keys:
            self.up_since = (now, keys)
        return now - self.up_since[0] >= CONFIRM_SECONDS

    def no_sign(self, elapsed: float, *, fail_at: bool) -> None:
        """StageFailed when the run stage lists no server, or the run never showed:
        once that lasted its bound (``fail_at``), or at the end of the wait."""
        no_server = self.stage == "run" and not self.last.servers
        if no_server and (not fail_at or elapsed > NO_SERVER_SECONDS):
            raise StageFailed(self.stage, _no_server_message(elapsed))
        if not self.last.seen and (not fail_at or elapsed > NO_SIGN_SECONDS):
            raise StageFailed(self.stage, _no_sign_message(self.stage, elapsed))


def _wait(
    ctx: Context,
    workspace_id: int,
    stage: str,
    tracker: StageTracker,
    deadline: Deadline,
    *,
    confirm: bool = False,
) -> tuple[Progress, list[StageEntry]]:
    """Poll until the run we started succeeds or fails, and return that with its
    entries of the stage; see ``run_stage``.
    ``confirm``: a multi-server landscape, whose servers may appear one after
    another: "up" counts once it held, with the same servers, for
    ``CONFIRM_SECONDS``."""
    watch = _Watch(ctx, workspace_id, stage, tracker, confirm)
    # prepare and test end, and their steps' log streams may end with them. The
    # run stage does not end, so its wait polls on the quick schedule instead.
    cue = Cue() if ctx.tuning.follow_step_logs and stage != "run" else None
    if cue is not None:
        trusted = not ctx.streams_end_early
        watch.follower = StepFollower(ctx.client, workspace_id, stage, cue, trusted=trusted)
    follower = watch.follower
    stats = WaitStats()
    try:
        progress = ctx.waiter.poll(
            watch.check,
            deadline=deadline,
            what=f"stage {stage}",
            cue=cue,
            stats=stats,
            last_state=lambda: watch.last.detail,
            false_cue=lambda: follower is not None and follower.cue_was_wrong,
        )
    except WaitTimeout as exc:
        watch.no_sign(ctx.clock.now() - watch.started, fail_at=False)
        if follower is not None:
            follower.stop()  # its stream of the running step is read next
        raise _timed_out(ctx, workspace_id, stage, watch.entries, exc, multi=confirm) from None
    finally:
        if follower is not None:
            follower.stop()
            ctx.streams_end_early = ctx.streams_end_early or not follower.cues_trusted
        ctx.reporter.debug(f"stage {stage}: {stats.polls} status polls")
    return progress, watch.entries


def _timed_out(
    ctx: Context,
    workspace_id: int,
    stage: str,
    entries: list[StageEntry],
    exc: WaitTimeout,
    *,
    multi: bool,
) -> WaitTimeout:
    """The timeout, with the last line of the running step's log: the logs are
    shown first, within a few seconds past the stage's end (a cancel ends them)."""
    lines = show_timed_out_logs(ctx, workspace_id, stage, entries, multi=multi)
    last = next((text.strip() for _, text in reversed(lines) if text.strip()), "")
    return WaitTimeout(f"{exc}; the running step's last log line: {last}") if last else exc


def _say_unlisted(
    ctx: Context, stage: str, entries: list[StageEntry], said: set[tuple[str, str]]
) -> None:
    """Say once per stage wait which states the spec does not list came up, and
    what the wait makes of them (an entry: not finished; a step: not failed)."""
    new = sorted(set().union(*(e.unlisted_states() for e in entries)) - said)
    if not new:
        return
    said.update(new)
    where: dict[str, list[str]] = {}
    for kind, state in new:
        where.setdefault(state, []).append("entries" if kind == "entry" else "steps")
    seen = ", ".join(f"'{state}' ({' and '.join(kinds)})" for state, kinds in where.items())
    ctx.reporter.info(
        f"{stage}: the status shows {seen}, a state the API spec does not list: an entry in "
        "it counts as not finished (the stage-timeout still holds), a step as not failed"
    )


def _running_step(stage: str, tracker: StageTracker, entries: list[StageEntry]) -> int | None:
    ours = [e for e in relevant(stage, entries) if e.key in tracker.ours]
    return running_step(ours[0]) if ours else None


def _no_sign_message(stage: str, elapsed: float) -> str:
    return (
        f"stage {stage} was started, but {elapsed:.0f} s later its status still shows no sign "
        "of the new run (the same entries as before the start). Codesphere may not have "
        "started it: look at the workspace's pipeline in Codesphere and re-run the job"
    )


def _no_server_message(elapsed: float) -> str:
    return (
        f"the run stage started no server within {elapsed:.0f} s: the status lists no server "
        "but codesphere-ide. Check the run section of ci.yml (for the profile in use): it must "
        "define at least one server (a service with its steps)"
    )


def sync_landscape(ctx: Context, workspace_id: int, deadline: Deadline) -> bool:
    """Deploy the landscape (ci.yml's run section, same profile) as the official
    flows do before the run stage: it allocates the servers of a multi-server
    workspace and applies a changed ci.yml. Return False on a single-server
    workspace (the API answers 400 "does not support Multi Server Deployments");
    any other error fails the release with the API's message."""
    profile = ctx.config.profile
    where = f"ci.{profile}.yml" if profile else "ci.yml"
    try:
        ctx.client.deploy_landscape(workspace_id, profile, deadline=deadline)
    except ApiError as exc:
        if exc.status_code == 400 and SINGLE_SERVER.search(f"{exc.problem_title} {exc.detail}"):
            # Only a multi-server workspace has a landscape worth a line in the log.
            ctx.reporter.debug(
                "Landscape: nothing to deploy, this is not a multi-server workspace "
                f"(the API said: {exc.problem_title})"
            )
            if in_vault(ctx):
                ctx.reporter.warning(
                    "secret-store is vault, but this is not a multi-server workspace: "
                    "Codesphere resolves ci.yml's ${{ vault.NAME }} templates when it deploys "
                    "a landscape, so its stages may not see the secrets"
                )
            return False
        hint = f". Check the run section of {where}" if exc.status_code < 500 else ""
        if "vault." in f"{exc.problem_title} {exc.detail}" and not in_vault(ctx):
            hint += (
                f". {where} reads a secret from the workspace's vault: put it there with "
                "secret-env and secret-store: vault (or in the shared vault named by "
                "shared-vault-name)"
            )
        raise ActionError(
            f"deploying the landscape of workspace {workspace_id} from {where} failed: {exc}{hint}"
        ) from None
    ctx.reporter.info(f"Landscape deployed from {where}")
    return True


def _stop_and_settle(
    ctx: Context, workspace_id: int, stage: str, deadline: Deadline
) -> list[StageEntry]:
    """Stop the run in progress and wait until the status shows it ended, so the
    next start can be told apart from it. Return that status."""
    ctx.reporter.info(f"Stopping the {stage} run in progress")
    try:
        ctx.client.stop_stage(workspace_id, stage, deadline=deadline)
    except ApiError as exc:
        # Nothing to stop answers 400 on some installations; a real problem
        # (workspace down) shows at the start that follows.
        if exc.status_code != 400:
            raise
        ctx.reporter.debug(f"stop {stage}: {exc}")

    def check(limit: Deadline) -> list[StageEntry] | None:
        entries = ctx.client.stage_status(workspace_id, stage, deadline=limit)
        return None if any(is_active(e) for e in relevant(stage, entries)) else entries

    settle = deadline.within(STOP_SETTLE_SECONDS)
    try:
        return ctx.waiter.poll(check, deadline=settle, what=f"stopping {stage}")
    except WaitTimeout:
        # Starting now could take the old run's progress for the new run's.
        raise StageFailed(
            stage,
            f"the {stage} run in progress did not stop: it still shows as running "
            f"{settle.seconds:.0f} s after the stop. Stop it in Codesphere, then re-run",
        ) from None


def _start(
    ctx: Context, workspace_id: int, stage: str, tracker: StageTracker, deadline: Deadline
) -> None:
    """Start the stage once. A start whose outcome is unknown (its answer lost, a
    gateway's 5xx) is never sent again, since it may still land and a second
    start would replace the first run: its run is looked for, as long as a
    run's first sign may take (``NO_SIGN_SECONDS``)."""
    try:
        ctx.client.start_stage(workspace_id, stage, ctx.config.profile, deadline=deadline)
    except ActionError as exc:
        if not outcome_unknown(exc):
            raise
        ctx.reporter.warning(
            f"starting {stage} may have failed ({exc}); looking for its run (it is not sent "
            "again while it may still land)"
        )
        if not _run_appeared(ctx, workspace_id, stage, tracker, deadline):
            raise StageFailed(
                stage,
                f"the start of {stage} got no usable answer ({exc}), and no run of it showed "
                f"within {NO_SIGN_SECONDS:.0f} s. It was not sent again, as it may still land: "
                "look at the workspace's pipeline in Codesphere and re-run the job",
            ) from None


def _run_appeared(
    ctx: Context, workspace_id: int, stage: str, tracker: StageTracker, deadline: Deadline
) -> bool:
    def check(limit: Deadline) -> bool | None:
        entries = ctx.client.stage_status(workspace_id, stage, deadline=limit)
        return True if tracker.evaluate(entries).seen else None

    try:
        return ctx.waiter.poll(
            check, deadline=deadline.within(NO_SIGN_SECONDS), what=f"{stage} start"
        )
    except WaitTimeout:
        return False


def _failure_message(
    ctx: Context, workspace_id: int, stage: str, outcome: Progress, *, multi: bool
) -> str:
    """The failure, with the last line of the failing step's log (the log itself
    in a group): the failing server's (replica's) log on a multi-server run.
    With ``show-logs: always`` the logs of the steps before it come first."""
    step = outcome.failed_step
    message = f"stage {stage} {outcome.detail}"
    if step is None:
        return message
    server = outcome.failed_server if outcome.failed_server != IDE_SERVER else ""
    replica = outcome.failed_replica if outcome.replica_unique else ""
    where = f" on {server}" if server else ""
    if server and outcome.failed_replica:
        where += f" (replica {outcome.failed_replica})"
    deadline = ctx.deadline(SHOW_LOGS_SECONDS)
    for earlier in range(step):
        if reads_every_log(ctx):  # show-logs: always, and the log route answers
            source = LogSource.of(stage, earlier, server, replica, multi=multi)
            show_step_log(ctx, workspace_id, source, deadline.within(LOG_READ_SECONDS), where)
    source = LogSource.of(stage, step, server, replica, multi=multi)
    lines = show_step_log(ctx, workspace_id, source, ctx.deadline(LOG_READ_SECONDS), where)
    if not lines:
        return message
    errors = [text for kind, text in lines if kind == "E" and text.strip()]
    last = (errors or [text for _, text in lines if text.strip()] or [""])[-1]
    return f"{message}: {last.strip()}" if last.strip() else message
