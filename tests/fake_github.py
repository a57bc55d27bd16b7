"""A local fake of the GitHub REST API's Deployments and issue-comment endpoints,
for end-to-end tests.

    with FakeGitHub(token="ghs-123") as gh:
        run_the_action(extra={"GITHUB_API_URL": gh.url})
        assert [r.summary for r in gh.requests] == ["POST /repos/acme/shop/deployments", ...]

It listens on 127.0.0.1, records every request, answers 401 unless the request
carries ``Authorization: Bearer <token>``, and keeps deployments and their
statuses in memory. ``fail(method, path_regex, status)`` makes matching
requests answer an error (``status=0``: drop the connection).
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


class FakeGitHub:
    def __init__(self, token: str, repository: str = "acme/shop") -> None:
        self.token = token
        self.repository = repository
        self.requests: list[GitHubRequest] = []
        self.deployments: dict[int, Deployment] = {}
        self.comments: dict[int, dict[str, Any]] = {}  # id -> {"id", "issue", "body"}
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

    def add_deployment(self, environment: str, ref: str = "0" * 40) -> int:
        with self._lock:
            return self._create({"ref": ref, "environment": environment}).id

    def summaries(self, containing: str = "") -> list[str]:
        return [r.summary for r in self.requests if containing in r.path]

    def add_comment(self, issue: int, body: str) -> int:
        with self._lock:
            return int(self._comment(issue, body)["id"])

    def _comment(self, issue: int, body: str) -> dict[str, Any]:
        comment = {"id": self._next_comment, "issue": issue, "body": body}
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
            status, answer = self._answer(request)
        if self.delay:
            time.sleep(self.delay)
        if status == 0:
            handler.close_connection = True
            handler.connection.close()
            return
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, request: GitHubRequest) -> tuple[int, Any]:
        for method, pattern, status in self.failures:
            if request.method == method and pattern.search(request.path):
                return status, {"message": f"injected {status}"}
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}
        if request.headers.get("accept") != "application/vnd.github+json":
            return 415, {"message": "Unsupported Accept header"}
        base = f"/repos/{self.repository}/deployments"
        if request.path == base and request.method == "POST":
            body = request.body
            if not isinstance(body, dict) or not isinstance(body.get("ref"), str):
                return 422, {"message": "Invalid request: ref is required"}
            deployment = self._create(body)
            return 201, {"id": deployment.id, "ref": deployment.ref, **body}
        if request.path == base and request.method == "GET":
            wanted = request.query.get("environment")
            found = [
                {"id": d.id, "ref": d.ref, "environment": d.environment}
                for d in self.deployments.values()
                if wanted is None or d.environment == wanted
            ]
            return 200, sorted(found, key=lambda d: -int(d["id"]))
        match = re.fullmatch(rf"{re.escape(base)}/(\d+)/statuses", request.path)
        if match and request.method == "POST":
            target = self.deployments.get(int(match.group(1)))
            if target is None:
                return 404, {"message": "Not Found"}
            body = request.body
            states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
            if not isinstance(body, dict) or body.get("state") not in states:
                return 422, {"message": "Invalid request: state"}
            target.statuses.append(body)
            return 201, {"id": len(target.statuses), **body}
        return self._answer_comments(request)

    def _answer_comments(self, request: GitHubRequest) -> tuple[int, Any]:
        issues = f"/repos/{self.repository}/issues"
        listed = re.fullmatch(rf"{re.escape(issues)}/(\d+)/comments", request.path)
        if listed and request.method == "GET":
            issue = int(listed.group(1))
            found = [c for c in self.comments.values() if c["issue"] == issue]
            page = int(request.query.get("page", "1"))
            size = int(request.query.get("per_page", "30"))
            return 200, found[(page - 1) * size : page * size]
        if listed and request.method == "POST":
            body = request.body
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "Invalid request: body"}
            return 201, self._comment(int(listed.group(1)), body["body"])
        edited = re.fullmatch(rf"{re.escape(issues)}/comments/(\d+)", request.path)
        if edited and request.method == "PATCH":
            comment = self.comments.get(int(edited.group(1)))
            if comment is None:
                return 404, {"message": "Not Found"}
            if not isinstance(request.body, dict) or not isinstance(request.body.get("body"), str):
                return 422, {"message": "Invalid request: body"}
            comment["body"] = request.body["body"]
            return 200, comment
        return 404, {"message": "Not Found"}
