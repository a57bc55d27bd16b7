"""A local fake of the few GitHub REST API endpoints the action calls with
``github-token``, for end-to-end tests: Deployments and their statuses, a pull
request's (issue) comments, the pull request itself and the token's user.

    with FakeGitHub(token="ghs-123") as gh:
        run_the_action(extra={"GITHUB_API_URL": gh.url})
        assert [r.summary for r in gh.requests] == ["POST /repos/acme/shop/deployments", ...]

It listens on 127.0.0.1, records every request, answers 401 unless the request
carries ``Authorization: Bearer <token>``, and keeps deployments, comments and
pull requests in memory. ``fail(method, path_regex, status)`` makes matching
requests answer an error (``status=0``: drop the connection).

Shapes follow GitHub's REST API (version 2022-11-28) where the action reads them:
- lists are paginated with ``per_page`` (default 30, at most 100) and ``page``,
  and a ``Link`` header with ``first``/``prev``/``next``/``last`` links. Like
  GitHub's, those links name the repository by id
  (``/repositories/<id>/...``), not by ``owner/name``;
- an issue comment has ``id``, ``body``, ``user`` (``login``, ``id``, ``type``:
  ``User`` or ``Bot``), ``created_at``, ``updated_at``; comments list oldest first;
- a comment the token writes is authored by the token's identity: with
  ``identity="app"`` (GITHUB_TOKEN, or a GitHub App's token) the bot
  ``github-actions[bot]`` (type ``Bot``), and ``GET /user`` answers 403 "Resource
  not accessible by integration"; with ``identity="user"`` (a personal access
  token) the user ``USER_LOGIN`` (type ``User``), which ``GET /user`` returns;
- a deployment has ``id``, ``sha``, ``ref``, ``task``, ``payload`` (``{}`` when
  none was given), ``environment``, ``description``, ``transient_environment``,
  ``production_environment``, ``created_at``; they list newest first and filter
  by ``sha``, ``ref``, ``task`` and ``environment``;
- ``GET /repos/{owner}/{repo}/pulls/{number}`` answers the pull request
  (``number``, ``state`` ``open``/``closed``, ``merged``, ``head``, ``base``): every
  number a test's event names is an open pull request until ``set_pull`` says
  otherwise;
- ``GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}`` answers
  a workflow run's attempt (``id``, ``run_attempt``, ``status``: ``queued``,
  ``in_progress``, ``completed``, ...; ``conclusion``: ``success``, ``failure``,
  ``cancelled``, ... or null while it runs) as ``set_run`` left it; a run it was
  not told of is 404 "Not Found", as GitHub answers for a run it does not know.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPOSITORY_ID = 424242  # GitHub's Link headers name the repository by its id
BOT_LOGIN = "github-actions[bot]"
BOT: dict[str, Any] = {"login": BOT_LOGIN, "id": 41898282, "type": "Bot"}
USER_LOGIN = "release-user"
USER: dict[str, Any] = {"login": USER_LOGIN, "id": 5551, "type": "User"}
MAX_PER_PAGE = 100


@dataclass
class GitHubRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def summary(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Deployment:
    id: int
    ref: str
    environment: str
    body: dict[str, Any]
    statuses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [s["state"] for s in self.statuses]

    @property
    def payload(self) -> Any:
        return self.body.get("payload", {})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha": self.ref if re.fullmatch(r"[0-9a-f]{40}", self.ref) else "0" * 40,
            "ref": self.ref,
            "task": self.body.get("task", "deploy"),
            "payload": self.payload,
            "original_environment": self.environment,
            "environment": self.environment,
            "description": self.body.get("description"),
            "creator": BOT,
            "created_at": _now(),
            "updated_at": _now(),
            "transient_environment": bool(self.body.get("transient_environment", False)),
            "production_environment": bool(
                self.body.get("production_environment", self.environment == "production")
            ),
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeGitHub:
    def __init__(self, token: str, repository: str = "acme/shop", *, identity: str = "app") -> None:
        if identity not in ("app", "user"):
            raise ValueError(f"identity {identity!r}: expected 'app' or 'user'")
        self.token = token
        self.repository = repository
        self.identity = identity
        self.requests: list[GitHubRequest] = []
        self.deployments: dict[int, Deployment] = {}
        # id -> {"id", "issue", "body", "user", "created_at", "updated_at"}
        self.comments: dict[int, dict[str, Any]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.runs: dict[tuple[int, int], dict[str, Any]] = {}  # (run id, attempt) -> run
        self._next_comment = 9001
        self.failures: list[tuple[str, re.Pattern[str], int]] = []
        self.delay = 0.0  # seconds every answer is held back
        self._next_id = 501
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def do_PATCH(self) -> None:
                fake._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def me(self) -> dict[str, Any]:
        """The author of what the token writes."""
        return BOT if self.identity == "app" else USER

    def __enter__(self) -> FakeGitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, method: str, path: str, status: int) -> None:
        """Requests matching ``method`` and the ``path`` regex answer ``status``
        (0: the connection is closed without an answer)."""
        self.failures.append((method, re.compile(path), status))

    def add_deployment(self, environment: str, ref: str = "0" * 40, payload: Any = None) -> int:
        body: dict[str, Any] = {"ref": ref, "environment": environment}
        if payload is not None:
            body["payload"] = payload
        with self._lock:
            return self._create(body).id

    def summaries(self, containing: str = "") -> list[str]:
        return [r.summary for r in self.requests if containing in r.path]

    def add_comment(
        self, issue: int, body: str, *, user: str = "octocat", user_type: str = "User"
    ) -> int:
        """A comment written by someone else (by default a person, ``octocat``)."""
        author = {"login": user, "id": 1000 + len(user), "type": user_type}
        with self._lock:
            return int(self._comment(issue, body, author)["id"])

    def add_comments(self, issue: int, count: int, body: str = "a comment") -> None:
        for number in range(count):
            self.add_comment(issue, f"{body} {number}")

    def comments_of(self, issue: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == issue]

    def set_pull(
        self,
        number: int,
        *,
        state: str = "open",
        merged: bool = False,
        head_repository: str | None = None,
    ) -> None:
        """``head_repository``: where its branch lives (default: this repository;
        another for a fork's pull request)."""
        with self._lock:
            self._set_pull(number, state, merged=merged, head=head_repository)

    def _set_pull(self, number: int, state: str, *, merged: bool, head: str | None = None) -> None:
        self.pulls[number] = {
            "number": number,
            "state": state,
            "merged": merged,
            "head": {"ref": "feature", "repo": {"full_name": head or self.repository}},
            "base": {"ref": "main", "repo": {"full_name": self.repository}},
        }

    def set_run(
        self,
        run_id: int,
        *,
        attempt: int = 1,
        status: str = "completed",
        conclusion: str | None = "success",
    ) -> None:
        """A workflow run's attempt as ``GET .../actions/runs/{id}/attempts/{n}``
        answers it (``conclusion`` None while it is not completed)."""
        with self._lock:
            self.runs[(run_id, attempt)] = {
                "id": run_id,
                "run_attempt": attempt,
                "status": status,
                "conclusion": conclusion if status == "completed" else None,
                "html_url": f"https://github.com/{self.repository}/actions/runs/{run_id}",
            }

    def _comment(self, issue: int, body: str, user: dict[str, Any]) -> dict[str, Any]:
        comment = {
            "id": self._next_comment,
            "issue": issue,
            "body": body,
            "user": dict(user),
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.comments[self._next_comment] = comment
        self._next_comment += 1
        return comment

    # -- serving ---------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> Deployment:
        deployment = Deployment(self._next_id, body["ref"], body["environment"], body)
        self.deployments[deployment.id] = deployment
        self._next_id += 1
        return deployment

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = GitHubRequest(
            handler.command,
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        with self._lock:
            self.requests.append(request)
            status, answer, headers = self._answer(request)
        if self.delay:
            time.sleep(self.delay)
        if status == 0:
            handler.close_connection = True
            handler.connection.close()
            return
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, request: GitHubRequest) -> tuple[int, Any, dict[str, str]]:
        for method, pattern, status in self.failures:
            if request.method == method and pattern.search(request.path):
                return status, {"message": f"injected {status}"}, {}
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}, {}
        if request.headers.get("accept") != "application/vnd.github+json":
            return 415, {"message": "Unsupported Accept header"}, {}
        if request.path == "/user" and request.method == "GET":
            if self.identity == "app":
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, dict(USER), {}
        pull = re.fullmatch(rf"/repos/{re.escape(self.repository)}/pulls/(\d+)", request.path)
        if pull and request.method == "GET":
            number = int(pull.group(1))
            if number not in self.pulls:
                self._set_pull(number, "open", merged=False)
            return 200, self.pulls[number], {}
        run = re.fullmatch(
            rf"/repos/{re.escape(self.repository)}/actions/runs/(\d+)/attempts/(\d+)", request.path
        )
        if run and request.method == "GET":
            found = self.runs.get((int(run.group(1)), int(run.group(2))))
            if found is None:
                return 404, {"message": "Not Found"}, {}
            return 200, dict(found), {}
        status, answer, headers = self._answer_deployments(request)
        if status:
            return status, answer, headers
        return self._answer_comments(request)

    def _answer_deployments(self, request: GitHubRequest) -> tuple[int, Any, dict[str, str]]:
        base = f"/repos/{self.repository}/deployments"
        if request.path == base and request.method == "POST":
            body = request.body
            if not isinstance(body, dict) or not isinstance(body.get("ref"), str):
                return 422, {"message": "Invalid request: ref is required"}, {}
            if "payload" in body and not isinstance(body["payload"], dict | str):
                return 422, {"message": "Invalid request: payload"}, {}
            deployment = self._create(body)
            return 201, deployment.to_json(), {}
        if request.path == base and request.method == "GET":
            wanted = {
                k: request.query[k]
                for k in ("sha", "ref", "task", "environment")
                if k in request.query
            }
            found = [
                d.to_json()
                for d in sorted(self.deployments.values(), key=lambda d: -d.id)
                if all(d.to_json()[k] == v for k, v in wanted.items())
            ]
            return self._page(request, found, f"/repositories/{REPOSITORY_ID}/deployments")
        match = re.fullmatch(rf"{re.escape(base)}/(\d+)/statuses", request.path)
        if match and request.method == "POST":
            target = self.deployments.get(int(match.group(1)))
            if target is None:
                return 404, {"message": "Not Found"}, {}
            body = request.body
            states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
            if not isinstance(body, dict) or body.get("state") not in states:
                return 422, {"message": "Invalid request: state"}, {}
            target.statuses.append(body)
            return 201, {"id": len(target.statuses), **body}, {}
        return 0, None, {}

    def _answer_comments(self, request: GitHubRequest) -> tuple[int, Any, dict[str, str]]:
        issues = f"/repos/{self.repository}/issues"
        listed = re.fullmatch(rf"{re.escape(issues)}/(\d+)/comments", request.path)
        if listed and request.method == "GET":
            issue = int(listed.group(1))
            found = [_public(c) for c in self.comments.values() if c["issue"] == issue]
            return self._page(
                request, found, f"/repositories/{REPOSITORY_ID}/issues/{issue}/comments"
            )
        if listed and request.method == "POST":
            body = request.body
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "Invalid request: body"}, {}
            return 201, _public(self._comment(int(listed.group(1)), body["body"], self.me)), {}
        edited = re.fullmatch(rf"{re.escape(issues)}/comments/(\d+)", request.path)
        if edited and request.method == "PATCH":
            comment = self.comments.get(int(edited.group(1)))
            if comment is None:
                return 404, {"message": "Not Found"}, {}
            if not isinstance(request.body, dict) or not isinstance(request.body.get("body"), str):
                return 422, {"message": "Invalid request: body"}, {}
            comment["body"] = request.body["body"]
            comment["updated_at"] = _now()
            return 200, _public(comment), {}
        return 404, {"message": "Not Found"}, {}

    def _page(
        self, request: GitHubRequest, items: list[Any], link_path: str
    ) -> tuple[int, Any, dict[str, str]]:
        """One page of ``items`` as GitHub pages a list, with its Link header."""
        try:
            page = max(1, int(request.query.get("page", "1")))
            size = min(MAX_PER_PAGE, max(1, int(request.query.get("per_page", "30"))))
        except ValueError:
            return 422, {"message": "Invalid request: page"}, {}
        last = max(1, -(-len(items) // size))
        headers: dict[str, str] = {}
        if last > 1:
            extra = "".join(
                f"&{k}={v}" for k, v in request.query.items() if k not in ("page", "per_page")
            )

            def link(number: int, rel: str) -> str:
                return f'<{self.url}{link_path}?per_page={size}{extra}&page={number}>; rel="{rel}"'

            rels = []
            if page > 1:
                rels += [link(page - 1, "prev")]
            if page < last:
                rels += [link(page + 1, "next"), link(last, "last")]
            if page > 1:
                rels += [link(1, "first")]
            headers["Link"] = ", ".join(rels)
        return 200, items[(page - 1) * size : page * size], headers


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    """A comment as the API shows it (without the fake's own ``issue`` key)."""
    return {k: v for k, v in comment.items() if k != "issue"}
