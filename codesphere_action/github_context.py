"""The workflow's context: the event and its pull request, the run, GitHub's API.

Read from the ``GITHUB_*`` variables the runner sets and the event payload at
``GITHUB_EVENT_PATH``. Errors here are ``ContextError`` (the workflow does not
suit the inputs) or ``Skipped`` (nothing to do: a fork's pull request, an
event action that does not fit the flow).
"""

from __future__ import annotations

import json
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, ContextError, Skipped
from .inputs import COMMIT_SHA, DEFAULT_GITHUB_API_URL, parse_api_url, parse_branch

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True)
class PullRequest:
    """The pull request a ``pull_request`` / ``pull_request_target`` event is about."""

    number: int
    head_ref: str
    head_sha: str
    head_repository: str = ""  # owner/name of the head branch's repository, "" if unknown
    action: str = ""  # the event's action: opened, synchronize, reopened, closed, ...
    state: str = ""  # pull_request.state when the event was sent: open or closed

    @property
    def closed(self) -> bool:
        """Whether the event says the pull request is closed (its action or its state)."""
        return self.action == "closed" or self.state == "closed"


def read_pull_request(environ: Mapping[str, str]) -> PullRequest | None:
    """The pull request of a ``pull_request(_target)`` event, from the JSON file
    at GITHUB_EVENT_PATH; None for any other event. Raises ContextError when the
    payload cannot be read or lacks the fields a preview needs."""
    event = environ.get("GITHUB_EVENT_NAME", "")
    if event not in PULL_REQUEST_EVENTS:
        return None
    path = environ.get("GITHUB_EVENT_PATH", "")
    where = f"the {event} event payload (GITHUB_EVENT_PATH '{path}')"
    if not path:
        raise ContextError(
            f"GITHUB_EVENT_NAME is '{event}' but GITHUB_EVENT_PATH is not set: "
            "run the action in a GitHub workflow, or set both for a local run"
        )
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ContextError(f"could not read {where}: {exc}") from None
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    head = pull.get("head") if isinstance(pull, dict) else None
    if not isinstance(pull, dict) or not isinstance(head, dict):
        raise ContextError(f"{where} has no pull_request.head: is it really a {event} event?")
    number, ref, sha = pull.get("number"), head.get("ref"), head.get("sha")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ContextError(f"{where} has pull_request.number {number!r}: expected a number")
    if not isinstance(ref, str) or not ref:
        raise ContextError(f"{where} has pull_request.head.ref {ref!r}: expected a branch name")
    try:
        parse_branch("branch", ref)
    except ConfigError:
        raise ContextError(
            f"the pull request's head branch '{ref}' is not a branch name the API accepts: "
            "set the input 'branch'"
        ) from None
    if not isinstance(sha, str) or not COMMIT_SHA.match(sha):
        raise ContextError(f"{where} has pull_request.head.sha {sha!r}: expected a commit SHA")
    action, state = payload.get("action"), pull.get("state")
    return PullRequest(
        number,
        ref,
        sha,
        _full_name(head),
        action=action if isinstance(action, str) else "",
        state=state if isinstance(state, str) else "",
    )


def _full_name(side: object) -> str:
    """``owner/name`` of a pull request's head or base repository; "" when the
    payload has none (GitHub sends ``"repo": null`` once a fork is deleted)."""
    repo = side.get("repo") if isinstance(side, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) else ""


def fork_source(pull: object, repository: str) -> str:
    """What the pull request comes from when its head branch is not this
    repository's ("the fork owner/name", or "a fork that was deleted"); "" when
    it is. Told from the event payload alone: the head repository against the
    base repository and GITHUB_REPOSITORY. A head repository the payload does
    not name counts as a fork: nothing shows the branch is this repository's."""
    head = _full_name(pull.get("head")) if isinstance(pull, dict) else ""
    base = _full_name(pull.get("base")) if isinstance(pull, dict) else ""
    if not head:
        return "a fork that was deleted (the event names no head repository)"
    ours = [name.lower() for name in (base, repository) if name]
    if not ours or any(head.lower() != name for name in ours):
        return f"the fork {head}"
    return ""


def skip_fork(flow: str, environ: Mapping[str, str]) -> None:
    """A pull request from a fork, under any event (pull_request_target
    included) and whether or not the api-token input is set: raise Skipped,
    which ends the run as skipped, not failed, before any request.

    A fork's branch is code from outside the repository: building it with the
    repository's env, secret-env and API token (pull_request_target runs get
    the secrets) would hand them to whoever wrote it, and building any other
    branch would call the base repository's code the pull request's. So a fork
    gets no preview, and its teardown deletes nothing. ``flow``: one that works
    on a pull request (its FlowSpec says so)."""
    path = environ.get("GITHUB_EVENT_PATH", "")
    if not path:
        return
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return  # read_pull_request reports it
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    if not isinstance(pull, dict):
        return
    source = fork_source(pull, environ.get("GITHUB_REPOSITORY", ""))
    if not source:
        return
    number = pull.get("number")
    which = f"pull request #{number}" if isinstance(number, int) else "this pull request"
    raise Skipped(
        f"no {flow} for {which}: it comes from {source}. A fork's pull request gets no "
        "preview and no teardown, whatever the event (pull_request_target included), so "
        "its code never runs with this repository's token and secrets. Nothing was sent to "
        "Codesphere. "
        + (
            "To preview it, push its branch to this repository and open a pull request from there"
            if flow == "preview"
            else "Should an earlier version of codesphere-release have made a preview for it "
            "(before forks were refused), its workspace is named after the pull request's "
            "number: delete it by hand, or let a scheduled flow: prune clear it"
        )
    )


def read_run_id(environ: Mapping[str, str]) -> str:
    """``<run id>.<attempt>``; for a run outside GitHub a random one, so that two
    local runs never take each other's workspaces for their own."""
    run = environ.get("GITHUB_RUN_ID", "").strip()
    if not run.isdigit():
        return "local-" + _random.token_hex(4)
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "").strip()
    return f"{run}.{attempt if attempt.isdigit() else '1'}"


def read_github_api_url(environ: Mapping[str, str]) -> str:
    value = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_GITHUB_API_URL
    try:
        return parse_api_url("GITHUB_API_URL", value)
    except ConfigError:
        shown = "<redacted: contains credentials>" if "@" in value else value
        raise ContextError(
            f"GITHUB_API_URL is '{shown}': the Deployments option (input 'github-token') needs "
            "an https URL such as https://api.github.com (http only for loopback hosts); the "
            "runner sets it, so check the job's env"
        ) from None


def check_event_action(flow: str, pull: PullRequest) -> None:
    """A workflow without its ``types:`` or ``if:`` runs the preview job when the
    pull request closes and the teardown job on every push: the event's action
    (and the pull request's state) says which it is. Raise Skipped, in one line
    that names the action and the workflow change that fixes it."""
    seen = f"the event's action is '{pull.action or 'not given'}'"
    if pull.state:
        seen += f" and the pull request is {pull.state}"
    if flow == "preview" and pull.closed:
        raise Skipped(
            f"no preview for pull request #{pull.number}: {seen}, and a closed pull request "
            "gets no preview (nothing was created or updated). In the workflow, run the "
            "preview job only while it is open: give it `if: github.event.action != 'closed'` "
            "(or list only `types: [opened, synchronize, reopened]`), as in examples/preview.yml"
        )
    if flow == "teardown" and not pull.closed:
        raise Skipped(
            f"no teardown for pull request #{pull.number}: {seen}, and the preview of a pull "
            "request that is not closed is never deleted (nothing was deleted). In the "
            "workflow, run the teardown job only when it closes: `on: pull_request: types: "
            "[closed]`, or `if: github.event.action == 'closed'` on the job, as in "
            "examples/preview.yml"
        )
