"""A small client for the parts of Codesphere's public API a release needs.

One method per endpoint; everything that is the same for all of them (base
URL, auth, timeouts, redirects, retries, error decoding) lives in ``_request``.

Retries are decided on exception types and status codes only:
- idempotent calls (GET, PUT, DELETE, PATCH of an absolute value, stage stop)
  retry on connection errors, read timeouts, 429 and 502/503/504;
- non-idempotent calls (create, stage start, git pull) retry only when the
  request provably never reached the server (connection refused or connect
  timeout) or the server said 429; otherwise ``TransportError(maybe_landed=True)``
  tells the caller to look at the state before repeating anything.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import backoff
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from .clock import Clock
from .config import is_loopback
from .errors import ApiError, RedirectRefused, TransportError
from .github import Reporter

USER_AGENT = "codesphere-release/1 (+https://github.com/features/actions)"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
HINTS = {
    401: "Check the api-token input: the token is missing, wrong or expired",
    403: "The token's account lacks access to this resource: check the team and its role",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff with an overall bound per call."""

    base: float = 0.25
    factor: float = 2.0
    cap: float = 5.0
    budget: float = 60.0  # total seconds one call may spend retrying

    def delays(self, rng: random.Random) -> Iterator[float]:
        """Wait before each retry: full jitter over an exponential ceiling, with a
        floor of a tenth of the base so a retry never hammers the API."""
        ceilings = backoff.expo(base=self.factor, factor=self.base, max_value=self.cap)
        next(ceilings)  # backoff's generators yield None first (their .send() priming)
        for ceiling in ceilings:
            yield max(self.base / 10, rng.uniform(0, ceiling))


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
        date_header = response.headers.get("Date")
        now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def token_allowed_host(api_host: str) -> tuple[str, str]:
    """(host, domain): the token may go to ``host`` and to subdomains of ``domain``.

    The domain is the API host minus its first label (data centers are siblings:
    ``de-fra-1.codesphere.com`` beside ``codesphere.com``), but only when what
    remains still names a registrable domain; with no public suffix list at hand
    we refuse to widen to anything that looks like ``co.uk``.
    """
    labels = api_host.split(".")
    if len(labels) >= 3 and not (len(labels) == 3 and len(labels[1]) <= 3 and len(labels[2]) == 2):
        return api_host, ".".join(labels[1:])
    return api_host, api_host


class BearerAuth(requests.auth.AuthBase):
    """Explicit auth, so requests never swaps in ~/.netrc credentials."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _never_reached_server(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


class Client:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        reporter: Reporter,
        clock: Clock,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self._scheme = base.scheme
        self._host = (base.hostname or "").lower()
        self._allowed_host, self._allowed_domain = token_allowed_host(self._host)
        self._auth = BearerAuth(token)
        self.reporter = reporter
        self.clock = clock
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.session.close()

    # -- the one place requests are made --------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        idempotent: bool,
        deadline: float | None = None,
        timeout: tuple[float, float] | None = None,
        retries: bool = True,
    ) -> Any:
        """Send one API call; return its decoded JSON (None for an empty body).

        Raises ApiError for an error status, TransportError when no answer came,
        RedirectRefused for a redirect to a foreign host. Retries as described
        in the module docstring, within ``retry.budget`` and ``deadline``.
        """
        start = self.clock.now()
        limit = start + self.retry.budget
        if deadline is not None:
            limit = min(limit, deadline)
        delays = self.retry.delays(self.rng)
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                response = self._send(method, path, body, timeout or self.timeout)
            except requests.RequestException as exc:
                if isinstance(exc, requests.exceptions.SSLError):
                    raise TransportError(
                        f"TLS error talking to {self._host} for {method} {path}: check api-url "
                        "and the runner's CA certificates",
                        maybe_landed=False,
                    ) from None
                safe = _never_reached_server(exc)
                error = TransportError(
                    f"{method} {path} failed after {attempt} attempt(s): "
                    f"{type(exc).__name__} talking to {self._host}",
                    maybe_landed=not safe,
                )
                if not retries or not (safe or idempotent):
                    raise error from None
                last_error: Exception = error
            else:
                if response.status_code < 400:
                    return self._decode(response)
                error_api = self._api_error(method, path, response)
                retryable = response.status_code in RETRY_STATUSES and (
                    idempotent or response.status_code == 429
                )
                if not retries or not retryable:
                    raise error_api
                last_error = error_api
                wait = retry_after_seconds(response)
            delay = next(delays) if wait is None else wait
            if self.clock.now() + delay > limit:
                raise last_error
            self.reporter.debug(f"retrying {method} {path} in {delay:.2f} s: {last_error}")
            self.clock.sleep(delay)

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        timeout: tuple[float, float],
        *,
        stream: bool = False,
        session: requests.Session | None = None,
    ) -> requests.Response:
        """Send, following redirects ourselves: same method and body, the token
        only for the API's own host or its domain, over https (http on loopback)."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for _ in range(MAX_REDIRECTS + 1):
            started = self.clock.now()
            response = (session or self.session).request(
                method,
                url,
                data=data,
                headers=headers,
                auth=self._auth,
                timeout=timeout,
                allow_redirects=False,
                stream=stream,
            )
            if self.reporter.debug_enabled:
                elapsed_ms = (self.clock.now() - started) * 1000
                self.reporter.debug(
                    f"{method} {urlsplit(url).path} -> {response.status_code} ({elapsed_ms:.0f} ms)"
                )
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            url = urljoin(url, location)
            self._check_redirect(url)
        raise TransportError(
            f"{method} {path}: more than {MAX_REDIRECTS} redirects", maybe_landed=False
        )

    def _check_redirect(self, url: str) -> None:
        target = urlsplit(url)
        host = (target.hostname or "").lower()
        same_site = host == self._allowed_host or host.endswith("." + self._allowed_domain)
        secure = target.scheme == "https" or (
            target.scheme == "http" and self._scheme == "http" and is_loopback(host)
        )
        if not (same_site and secure):
            raise RedirectRefused(
                f"the API at {self._host} redirected to {target.scheme}://{host}, which is "
                f"neither {self._allowed_host} nor a subdomain of {self._allowed_domain} over "
                "https; the token is not sent there. If your installation moved, set api-url "
                "to its new address"
            )
        self.reporter.debug(f"following redirect to {target.scheme}://{target.netloc}")

    @staticmethod
    def _decode(response: requests.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _api_error(self, method: str, path: str, response: requests.Response) -> ApiError:
        title, detail, trace_id = response.reason or "error", "", ""
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            title = str(problem.get("title") or title)
            detail = str(problem.get("detail") or "")
            trace_id = str(problem.get("traceId") or "")
        elif response.text:
            detail = response.text.strip()[:200]
        return ApiError(
            method,
            path,
            response.status_code,
            self.reporter.redact(title),
            self.reporter.redact(detail),
            trace_id,
            HINTS.get(response.status_code, ""),
        )

    # -- workspaces ------------------------------------------------------------
    def get_workspace(self, workspace_id: int, *, deadline: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/workspaces/{workspace_id}", idempotent=True, deadline=deadline
        )
        return result

    def is_running(self, workspace_id: int, *, deadline: float | None = None) -> bool:
        result = self._request(
            "GET", f"/workspaces/{workspace_id}/status", idempotent=True, deadline=deadline
        )
        return bool(result and result.get("isRunning"))

    def set_replicas(self, workspace_id: int, replicas: int) -> None:
        # An absolute value: repeating it is harmless, so it counts as idempotent.
        self._request(
            "PATCH", f"/workspaces/{workspace_id}", body={"replicas": replicas}, idempotent=True
        )

    def list_team_workspaces(
        self, team_id: int, *, timeout: tuple[float, float] | None = None, retries: bool = True
    ) -> list[dict[str, Any]]:
        result = self._request(
            "GET", f"/workspaces/team/{team_id}", idempotent=True, timeout=timeout, retries=retries
        )
        return list(result or [])

    def create_workspace(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/workspaces", body=body, idempotent=False)
        return result

    def delete_workspace(
        self, workspace_id: int, *, timeout: tuple[float, float] | None = None, retries: bool = True
    ) -> bool:
        """Delete; return False when it was already gone (404)."""
        try:
            self._request(
                "DELETE",
                f"/workspaces/{workspace_id}",
                idempotent=True,
                timeout=timeout,
                retries=retries,
            )
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def set_env_vars(self, workspace_id: int, variables: list[dict[str, str]]) -> None:
        self._request(
            "PUT", f"/workspaces/{workspace_id}/env-vars", body=variables, idempotent=True
        )

    # -- git -----------------------------------------------------------------
    def git_pull(self, workspace_id: int, remote: str, branch: str) -> None:
        path = f"/workspaces/{workspace_id}/git/pull/{quote(remote, safe='')}"
        if branch:
            path += f"/{quote(branch, safe='')}"
        self._request("POST", path, idempotent=False)

    def git_head(self, workspace_id: int) -> str:
        result = self._request("GET", f"/workspaces/{workspace_id}/git/head", idempotent=True)
        return str((result or {}).get("head", ""))

    # -- pipeline ------------------------------------------------------------
    def start_stage(self, workspace_id: int, stage: str, profile: str = "") -> None:
        path = f"/workspaces/{workspace_id}/pipeline/{stage}/start"
        if profile:
            path += f"/{quote(profile, safe='')}"
        self._request("POST", path, idempotent=False)

    def stop_stage(self, workspace_id: int, stage: str) -> None:
        # Stopping twice leaves the same state: safe to repeat.
        self._request("POST", f"/workspaces/{workspace_id}/pipeline/{stage}/stop", idempotent=True)

    def stage_status(
        self, workspace_id: int, stage: str, *, deadline: float | None = None
    ) -> list[dict[str, Any]]:
        result = self._request(
            "GET",
            f"/workspaces/{workspace_id}/pipeline/{stage}",
            idempotent=True,
            deadline=deadline,
        )
        return list(result or [])

    def stream_logs(
        self,
        workspace_id: int,
        stage: str,
        step: int,
        *,
        read_timeout: float = 30.0,
        on_open: Callable[[requests.Response], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield log entries ``{"timestamp","kind","data"}`` of one step, as the
        SSE stream delivers them, until the server ends the stream. A ``problem``
        event raises ApiError. ``on_open`` gets the response, so another thread
        can close it. Each stream has its own session: safe beside other calls."""
        path = f"/workspaces/{workspace_id}/logs/{stage}/{step}"
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        response = self._send(
            "GET", path, None, (self.timeout[0], read_timeout), stream=True, session=session
        )
        if on_open is not None:
            on_open(response)
        try:
            if response.status_code >= 400:
                raise self._api_error("GET", path, response)
            event = "message"
            data_lines: list[str] = []
            for raw in response.iter_lines(decode_unicode=True):
                line = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if line.startswith(":"):
                    continue
                if line == "":
                    yield from self._sse_event(path, event, data_lines)
                    event, data_lines = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data_lines.append(line[5:].lstrip())
            yield from self._sse_event(path, event, data_lines)
        finally:
            response.close()
            session.close()

    def _sse_event(self, path: str, event: str, data_lines: list[str]) -> Iterator[dict[str, Any]]:
        if not data_lines:
            return
        try:
            payload = json.loads("\n".join(data_lines))
        except ValueError:
            return
        if event == "problem" and isinstance(payload, dict):
            raise ApiError(
                "GET",
                path,
                int(payload.get("status") or 0),
                str(payload.get("title") or "problem"),
                str(payload.get("detail") or ""),
                str(payload.get("traceId") or ""),
            )
        if event in ("data", "message") and isinstance(payload, list):
            yield from (entry for entry in payload if isinstance(entry, dict))

    # -- domains -------------------------------------------------------------
    def get_domain(self, team_id: int, domain: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/domains/team/{team_id}/domain/{quote(domain, safe='')}", idempotent=True
        )
        return result

    def list_domains(self, team_id: int) -> list[dict[str, Any]]:
        result = self._request("GET", f"/domains/team/{team_id}", idempotent=True)
        return list(result or [])

    def set_domain_connections(
        self, team_id: int, domain: str, connections: dict[str, list[int]]
    ) -> dict[str, Any]:
        # PUT replaces the whole map: repeating it with the same map is harmless.
        result: dict[str, Any] = self._request(
            "PUT",
            f"/domains/team/{team_id}/domain/{quote(domain, safe='')}/workspace-connections",
            body=connections,
            idempotent=True,
        )
        return result
