"""The few GitHub REST calls the action makes with ``github-token``: deployments
(deployments.py) and the pull request's preview comment (pr_comment.py).

Bookkeeping only: a call that fails raises ``GitHubError``, which its callers
turn into one warning; it never fails a release. Redirects are not followed,
so the token stays with ``GITHUB_API_URL``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from .api.transport import Transport
from .clock import Clock
from .config import Config
from .github import Reporter
from .timings import GITHUB_CONNECT_SECONDS, GITHUB_MIN_SECONDS, GITHUB_READ_SECONDS, Deadline

API_VERSION = "2022-11-28"
HINTS = {
    401: "check the github-token input: the token is wrong or expired",
    403: "give the job the permission this needs (see the message)",
    404: "the token cannot see the repository, or the job lacks the permission",
}


class GitHubError(Exception):
    """A GitHub call failed; reported as a warning, never raised past its caller.
    ``status``: GitHub's answer's status, 0 when there was none."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class GitHubApi:
    """``/repos/{owner}/{repo}`` of ``GITHUB_API_URL``, with the github-token: one
    attempt per call, redirects not followed (the token stays with that host),
    each call cut to the deadline it is given."""

    def __init__(
        self,
        config: Config,
        reporter: Reporter,
        clock: Clock,
        session: requests.Session | None = None,
    ) -> None:
        self.transport = Transport(
            config.github.api_url,
            config.github.token,
            reporter=reporter,
            clock=clock,
            service="GitHub's API",
            input_name="GITHUB_API_URL",
            follow_redirects=False,
            connect_timeout=GITHUB_CONNECT_SECONDS,
            read_timeout=GITHUB_READ_SECONDS,
            session=session,
            read_only=config.dry_run,
        )
        self.repo_path = f"/repos/{config.run.repository}"

    def close(self) -> None:
        self.transport.close()

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        deadline: Deadline,
        params: dict[str, str] | None = None,
        hints: dict[int, str] | None = None,
        repo: bool = True,
    ) -> Any:
        """One request; its decoded JSON. ``path`` is under ``/repos/{owner}/{repo}``
        (``repo=False``: under the API's root, e.g. ``/user``). Raises GitHubError
        for anything but a 2xx answer, and when ``deadline`` (which a cancel cuts
        short) leaves no time for it."""
        return self._call(
            method, path, body, deadline=deadline, params=params, hints=hints, repo=repo
        )[0]

    def list_page(
        self,
        path: str,
        params: dict[str, str],
        *,
        deadline: Deadline,
        hints: dict[int, str] | None = None,
    ) -> tuple[list[Any], dict[str, int]]:
        """One page of a list (``page`` and ``per_page`` in ``params``): its items,
        and the page numbers its ``Link`` header gives by rel (``next``, ``last``,
        ...). The links' URLs are never requested (GitHub's name the repository
        by id): callers ask for a page of ``path`` by number."""
        items, response = self._call("GET", path, params=params, deadline=deadline, hints=hints)
        if not isinstance(items, list):
            raise GitHubError(f"GET {path} answered {type(items).__name__}, not a list")
        return items, link_pages(response.headers.get("Link", ""))

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        deadline: Deadline,
        params: dict[str, str] | None = None,
        hints: dict[int, str] | None = None,
        repo: bool = True,
    ) -> tuple[Any, requests.Response]:
        if deadline.left() < GITHUB_MIN_SECONDS:
            why = "after the cancellation" if deadline.cancelled else "for it"
            raise GitHubError(f"{method} {path}: no time left {why}")
        transport = self.transport
        transport.session.headers["X-GitHub-Api-Version"] = API_VERSION
        try:
            response = transport.send(
                method,
                (self.repo_path if repo else "") + path,
                deadline=deadline,
                body=body,
                params=params,
                accept="application/vnd.github+json",
            )
        except requests.RequestException as exc:
            raise GitHubError(
                f"{method} {path}: {type(exc).__name__} talking to {transport.host}"
            ) from None
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if not 200 <= response.status_code < 300:
            hint = {**HINTS, **(hints or {})}.get(response.status_code, "")
            raise GitHubError(
                f"{method} {path} answered {response.status_code} ({message(payload)})"
                + (f": {hint}" if hint else ""),
                response.status_code,
            )
        return payload, response


LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([a-z]+)"?')


def link_pages(header: str) -> dict[str, int]:
    """``Link: <...?page=2>; rel="next", <...?page=7>; rel="last"`` -> {"next": 2, "last": 7}."""
    pages = {}
    for url, rel in LINK.findall(header):
        page = parse_qs(urlsplit(url).query).get("page", [""])[-1]
        if page.isdigit():
            pages[rel] = int(page)
    return pages


def message(payload: Any) -> str:
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:200]
    return "no message"


PULL_HINTS = {
    403: "give the job `permissions: pull-requests: read` (or write)",
    404: "the token cannot see the pull request, or the job lacks `pull-requests: read`",
}


def pull_request_state(api: GitHubApi, number: int, deadline: Deadline) -> str:
    """The pull request's ``state`` as GitHub says it now: ``open`` or ``closed``.
    Raises GitHubError when GitHub cannot say."""
    answer = api.call("GET", f"/pulls/{number}", deadline=deadline, hints=PULL_HINTS)
    state = answer.get("state") if isinstance(answer, dict) else None
    if state not in ("open", "closed"):
        raise GitHubError(f"GET /pulls/{number} answered no state ({message(answer)})")
    return str(state)


RUN_HINTS = {
    403: "give the job `permissions: actions: read`",
    404: "the token cannot see the workflow run, or the job lacks `actions: read`",
}


def run_attempt_state(api: GitHubApi, run_id: str, attempt: str, deadline: Deadline) -> str:
    """A workflow run's attempt as GitHub says it now: its ``status`` (``queued``,
    ``in_progress``, ``completed``, ...), with the ``conclusion`` of a completed
    one after a colon (``completed:failure``). Raises GitHubError when GitHub
    cannot say (a run it does not know answers 404)."""
    path = f"/actions/runs/{run_id}/attempts/{attempt}"
    answer = api.call("GET", path, deadline=deadline, hints=RUN_HINTS)
    status = answer.get("status") if isinstance(answer, dict) else None
    if not isinstance(status, str) or not status:
        raise GitHubError(f"GET {path} answered no status ({message(answer)})")
    conclusion = answer.get("conclusion")
    return f"{status}:{conclusion}" if status == "completed" and conclusion else status
