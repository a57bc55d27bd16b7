"""Checks before (and right after) the domain moves: the commit that shipped,
and whether the app answers.

- ``check_commit``: the create takes a branch, not a commit, so the workspace
  may run a newer commit than the one this run releases. Said in the log and
  the summary; with ``require-commit: true`` the release stops before the switch.
- ``check_health``: GET the workspace's ``health-check-path`` until it answers
  with an accepted status (``health.py``), before the switch.
- ``check_domain``: after the switch, the same through the custom domain (as
  many accepted answers in a row as workspaces on the path: a canary's path
  has several); when it fails within the timeout, the path is pointed back at
  what served it before (an automatic rollback, ``switch_back``; the bake
  uses it too) and the release fails saying so.
"""

from __future__ import annotations

from ..context import Context
from ..errors import ActionError
from ..github import count
from ..health import HealthCheck, HealthCheckFailed
from ..models import DomainMap, Workspace
from ..timings import DOMAIN_CHECK_SECONDS, SWITCH_READ_SECONDS, SWITCH_SECONDS
from .creation import State, ids, restore_marks
from .domain import domain_map, write_map


def health_check(ctx: Context) -> HealthCheck:
    return HealthCheck(ctx.config, ctx.reporter, ctx.waiter)


def check_commit(ctx: Context) -> None:
    """Compare ``deployed-commit`` with the commit this run releases."""
    config = ctx.config
    expected, deployed = config.expected_commit, ctx.result.outputs["deployed-commit"]
    if expected and not deployed and config.require_commit:
        raise ActionError(
            f"the commit the workspace runs could not be read, so it could not be compared "
            f"with {expected[:7]}, the commit this run releases. require-commit is true, so "
            "the release stops here"
        )
    if not expected or not deployed or deployed == expected:
        return
    commit = config.spec.commit
    source = "the pull request's head" if commit == "pull-request" else "GITHUB_SHA"
    why = (
        f"branch {config.branch or config.run.ref_name} moved on after the run started (a newer "
        "run releases that commit)"
    )
    if commit == "own-branch" and config.branch != config.run.ref_name:
        # Compared only because require-commit asks for it: another branch.
        branch = f"branch {config.branch}" if config.branch else "the workspace's current branch"
        why = f"{branch} is not at the commit of this run (branch {config.run.ref_name or '?'})"
    message = (
        f"the workspace runs commit {deployed[:7]}, not {expected[:7]} ({source}), the commit "
        f"this run releases: {why}"
    )
    ctx.result.commit_expected = expected
    if config.require_commit:
        raise ActionError(f"{message}. require-commit is true, so the release stops here")
    ctx.reporter.warning(message[:1].upper() + message[1:], title="Another commit was deployed")


def check_health(ctx: Context, workspace: Workspace) -> None:
    """Wait until the workspace answers on ``health-check-path`` (if set)."""
    if not ctx.config.health.path:
        return
    if not workspace.dev_domain:
        raise ActionError(
            f"health-check-path is set, but workspace {workspace.id} reports no devDomain to "
            "check: remove the input, or check the workspace in Codesphere"
        )
    with ctx.phase("Health check") as phase:
        checker = health_check(ctx)
        try:
            outcome = checker.workspace(
                workspace.dev_domain, ctx.deadline(ctx.config.health.timeout)
            )
        finally:
            checker.close()
        ctx.result.health.append(f"{outcome.answer.status} from {outcome.url}")
        phase.detail = f"{outcome.answer.status} after {count(outcome.attempts, 'request')}"


def check_domain(ctx: Context, state: State) -> None:
    """After the switch, with ``health-check-domain``: check the app through the
    custom domain; on failure point the path back and raise HealthCheckFailed."""
    config = ctx.config
    if not (config.health.path and config.health.domain and config.domain):
        state.domain_checked = True
        return
    if config.domain_path != "/":
        # Whether the proxy strips the path prefix is not documented, so the
        # health path under it could miss the app: no automatic rollback on that.
        ctx.reporter.info(
            f"Not checking through {config.domain_url}: for a domain-path other than /, "
            "Codesphere's documents do not say which path reaches the app"
        )
        state.domain_checked = True
        return
    with ctx.phase("Domain check") as phase:
        checker = health_check(ctx)
        try:
            deadline = ctx.deadline(min(DOMAIN_CHECK_SECONDS, config.health.timeout))
            outcome = checker.domain(deadline, in_a_row=max(1, len(state.targets)))
        except HealthCheckFailed as exc:
            restored = switch_back(ctx, state)
            raise HealthCheckFailed(
                f"{exc}. The switch was undone: {config.domain_url} points at "
                f"{ids(state.previous) or 'nothing'} again ({restored.describe()})"
            ) from None
        finally:
            checker.close()
        ctx.result.health.append(f"{outcome.answer.status} from {outcome.url}")
        phase.detail = f"{outcome.answer.status} after {count(outcome.attempts, 'request')}"
        state.domain_checked = True


def switch_back(ctx: Context, state: State, why: str = "") -> DomainMap:
    """Point the path the switch changed (``state.path``) back at the workspaces
    that served it before (remove the path if none did), every other path as it
    is now; unless the path no longer points at ``state.targets`` alone (another
    release came in meanwhile: it stands). ``why``: what made it go back, for
    the errors (default: the check through the domain failed)."""
    config = ctx.config
    key, targets = state.path, state.targets
    why = why or f"the app failed its check through {config.domain_url}"

    def stuck(exc: ActionError) -> ActionError:
        return ActionError(
            f"{why}, and pointing the domain "
            f"back at {ids(state.previous) or 'nothing'} failed: {exc}. The domain still "
            f"points at workspace {ids(targets)}: roll back by hand (flow: rollback)"
        )

    with ctx.guard.shield():
        deadline = ctx.deadline(SWITCH_SECONDS)
        try:
            current = domain_map(ctx, deadline, read_timeout=SWITCH_READ_SECONDS)
        except ActionError as exc:
            raise stuck(exc) from None
        if not current.lists(key, targets):
            state.switched = False  # the path is no longer ours: what serves it stands
            state.domain_note = f"the domain {config.domain} was left as another change set it"
            raise ActionError(
                f"{why}, and the path no "
                f"longer points at workspace {ids(targets)} alone ({current.describe()}): "
                "another change came in meanwhile, so it was left as it is"
            )
        wanted = current.without(key)
        if state.previous:
            wanted = wanted.with_path(key, state.previous)
        try:
            now = write_map(ctx, wanted, deadline, key)  # a lost answer: the map read back decides
        except ActionError as exc:
            raise stuck(exc) from None
        state.switched = False
        state.switched_back = True
        ctx.result.set("domain-url", "")
        restore_marks(ctx, state, deadline)  # no way back: it did not stand
    ctx.reporter.warning(f"Switched {config.domain_url} back: {now.describe()}")
    return now
