"""A small client for the parts of Codesphere's public API a release needs.

One method per endpoint; everything that is the same for all of them (base
URL, auth, timeouts, redirects, retries, checking the answer) lives in
``_request``. Every answer that carries a body is parsed into a typed result
(``models.py``) at this boundary: HTML from a login page or a proxy, or JSON
of the wrong shape, is a ``BadAnswer``, never an empty result.

Time: every call runs against one deadline, the earliest of the caller's
(the wait or switch it serves), the call's own retry budget, and the cancel
budget once the runner has signalled. Each attempt's connect and read
timeouts are cut to the time that is left, so no request outlives its wait.

Retries are decided on exception types and status codes only:
- idempotent calls (GET, PUT, DELETE, PATCH of an absolute value, stage stop,
  landscape deploy) retry on connection errors, read timeouts, 429 and
  500/502/503/504 (repeating them is safe, and one 500 on the domain read
  right before a switch must not throw a finished build away);
- non-idempotent calls (create, stage start, git pull) retry only when the
  request provably never reached the server (connection refused, unknown
  host, connect timeout) or the server said 429; otherwise
  ``TransportError(maybe_landed=True)`` tells the caller to look at the state
  before repeating anything.
A server that cannot be reached at all (refused, unknown host) is given up on
after ``CONNECT_BUDGET`` seconds, with the cause and the ``api-url`` input named.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import backoff
import requests
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)

from .addresses import is_loopback, token_scope
from .clock import Clock
from .errors import ActionError, ApiError, BadAnswer, RedirectRefused, TransportError
from .github import Reporter, format_seconds
from .models import DomainInfo, EnvVar, LogEntry, StageEntry, Workspace

T = TypeVar("T")

USER_AGENT = "codesphere-release/1 (+https://github.com/features/actions)"
# The spec's server and the official CLI's default: the example the hints give.
API_URL_EXAMPLE = "https://cloud.codesphere.com/api"
# 500 only for idempotent calls: a non-idempotent one retries on 429 alone.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CONNECT_BUDGET = 10.0  # seconds to keep trying a host that refuses or does not resolve
RETRY_NOTICE_SECONDS = 3.0  # a retry loop longer than this says so in the log
HINTS = {
    401: "Check the api-token input: the token is missing, wrong or expired",
    403: "The token's account lacks access to this resource: check the team and its role",
}
Expect = Literal["json", "none"]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped, jittered exponential backoff with an overall bound per call.

    No wait is ever shorter than ``min_delay``, whatever the jitter draws or a
    ``Retry-After: 0`` says, so a misbehaving server cannot make us hammer it.
    """

    base: float = 0.25
    factor: float = 2.0
    cap: float = 5.0
    budget: float = 60.0  # total seconds one call may spend retrying
    min_delay: float = 0.1

    def delays(self, rng: random.Random) -> Iterator[float]:
        """Wait before each retry: full jitter over an exponential ceiling."""
        ceilings = backoff.expo(base=self.factor, factor=self.base, max_value=self.cap)
        next(ceilings)  # backoff's generators yield None first (their .send() priming)
        for ceiling in ceilings:
            yield max(self.min_delay, rng.uniform(0, ceiling))


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


class BearerAuth(requests.auth.AuthBase):
    """Explicit auth, so requests never swaps in ~/.netrc credentials."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _connect_failure(exc: requests.RequestException) -> str | None:
    """Why a connection could not even be opened ("connection refused", "unknown
    host", "connect timeout"), or None when the request may have been sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    reason = exc.args[0] if exc.args else None
    cause = reason.reason if isinstance(reason, MaxRetryError) else reason
    if isinstance(cause, NameResolutionError):
        return "unknown host"
    if isinstance(cause, NewConnectionError):
        text = str(cause).lower()
        if "refused" in text:
            return "connection refused"
        if "unreachable" in text:
            return "network unreachable"
        return "cannot connect"
    return None


class Client:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        reporter: Reporter,
        clock: Clock,
        deadline_cap: Callable[[], float | None] = lambda: None,
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
        self._scope: tuple[str, str] | None = None  # token_scope(), computed on first redirect
        self._auth = BearerAuth(token)
        self.reporter = reporter
        self.clock = clock
        self.deadline_cap = deadline_cap
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.session.close()

    # -- time ------------------------------------------------------------------
    def limit(self, deadline: float | None = None, budget: float | None = None) -> float:
        """The moment a call must be over: its own budget, the caller's deadline,
        the cancel budget, whichever comes first."""
        limit = self.clock.now() + (self.retry.budget if budget is None else budget)
        for other in (deadline, self.deadline_cap()):
            if other is not None:
                limit = min(limit, other)
        return limit

    def timeouts(self, limit: float, read: float | None = None) -> tuple[float, float]:
        """(connect, read) timeouts of one attempt, cut to the time left before ``limit``."""
        left = max(0.05, limit - self.clock.now())
        return min(self.connect_timeout, left), min(read or self.read_timeout, left)

    # -- the one place requests are made --------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        idempotent: bool,
        expect: Expect = "json",
        deadline: float | None = None,
        read_timeout: float | None = None,
        retries: bool = True,
    ) -> Any:
        """Send one API call; return its decoded JSON (None when ``expect`` is "none").

        Raises ApiError for an error status, TransportError when no answer came,
        BadAnswer when the answer is not Codesphere's JSON, RedirectRefused for a
        redirect out of the token's scope. Retries as described in the module
        docstring, until the call's limit (see ``limit``).
        """
        start = self.clock.now()
        limit = self.limit(deadline)
        delays = self.retry.delays(self.rng)
        attempt = 0
        first_refusal: float | None = None
        told = False
        while True:
            attempt += 1
            if self.clock.now() >= limit:
                raise TransportError(
                    f"{method} {path}: no time left to send it (its wait or the cancel budget "
                    "ran out)",
                    maybe_landed=False,
                )
            wait: float | None = None
            try:
                response = self._send(method, path, body, self.timeouts(limit, read_timeout))
            except requests.RequestException as exc:
                error = self._transport_error(method, path, exc, attempt, start)
                if isinstance(exc, requests.exceptions.SSLError):
                    raise error from None  # a certificate or a scheme: retrying will not help
                failure = _connect_failure(exc)
                if failure is not None:
                    # A host that cannot be reached is given up on quickly.
                    first_refusal = self.clock.now() if first_refusal is None else first_refusal
                    limit = min(limit, first_refusal + CONNECT_BUDGET)
                if not retries or not (failure or idempotent):
                    raise error from None
                last_error: Exception = error
            else:
                if response.status_code < 400:
                    return self._decode(method, path, response, expect)
                self._check_route(method, path, response)
                error_api = self._api_error(method, path, response)
                retryable = response.status_code in RETRY_STATUSES and (
                    idempotent or response.status_code == 429
                )
                if not retries or not retryable:
                    raise error_api
                last_error = error_api
                wait = retry_after_seconds(response)
            # Retry-After is a floor, never a licence to go faster than the backoff.
            delay = next(delays) if wait is None else max(next(delays), wait)
            if self.clock.now() + delay > limit:
                raise last_error
            elapsed = self.clock.now() - start
            if not told and elapsed + delay > RETRY_NOTICE_SECONDS:
                told = True
                left = format_seconds(max(0.0, limit - self.clock.now()))
                self.reporter.info(
                    f"Codesphere API: {method} {path} failed ({_short(last_error)}); "
                    f"retrying for up to {left}"
                )
            self.reporter.debug(f"retrying {method} {path} in {delay:.2f} s: {last_error}")
            self.clock.sleep(delay)

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException, attempt: int, start: float
    ) -> TransportError:
        tries = f"{attempt} attempt(s) in {format_seconds(self.clock.now() - start)}"
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(
                f"TLS error talking to {self._host} for {method} {path}: check the api-url "
                f"input ('{self.base_url}') and the runner's CA certificates",
                maybe_landed=False,
            )
        failure = _connect_failure(exc)
        if failure == "unknown host":
            return TransportError(
                f"cannot reach the Codesphere API: the host {self._host} does not resolve "
                f"({method} {path}, {tries}). Check the api-url input ('{self.base_url}')",
                maybe_landed=False,
            )
        if failure is not None:
            return TransportError(
                f"cannot reach the Codesphere API at {self._host}: {failure} ({method} {path}, "
                f"{tries}). Check the api-url input ('{self.base_url}') and whether the "
                "runner can reach that host",
                maybe_landed=False,
            )
        what = "no answer in time" if isinstance(exc, requests.Timeout) else "connection broke"
        return TransportError(
            f"{method} {path} failed: {what} talking to {self._host} ({tries})",
            maybe_landed=True,
        )

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
        only within its scope (see ``token_scope``), over https (http on loopback)."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        history: list[requests.Response] = []
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
                response.history = history  # the redirects followed, as requests does
                return response
            response.close()
            if response.status_code == 303 and method not in ("GET", "HEAD"):
                # See Other: the request was carried out and its result is elsewhere.
                # Sending it again there could do it twice; the caller checks.
                raise TransportError(
                    f"{method} {path}: the API answered 303 See Other (to {location}): it "
                    "was carried out, with its result elsewhere",
                    maybe_landed=True,
                )
            history.append(response)
            url = urljoin(url, location)
            self._check_redirect(url)
        raise TransportError(
            f"{method} {path}: more than {MAX_REDIRECTS} redirects", maybe_landed=False
        )

    def _check_redirect(self, url: str) -> None:
        target = urlsplit(url)
        host = (target.hostname or "").lower()
        if self._scope is None:
            self._scope = token_scope(self._host)
        exact, domain = self._scope
        in_scope = host == exact or bool(domain and (host == domain or host.endswith("." + domain)))
        secure = target.scheme == "https" or (
            target.scheme == "http" and self._scheme == "http" and is_loopback(host)
        )
        if not (in_scope and secure):
            scope = f"{exact} or a host under {domain}" if domain and domain != exact else exact
            raise RedirectRefused(
                f"the API at {self._host} redirected to {target.scheme}://{host}, which is not "
                f"{scope} over https: the redirect was refused; the token is not sent there. "
                "If your installation moved, set the api-url input to its new address"
            )
        self.reporter.debug(f"following redirect to {target.scheme}://{target.netloc}")

    def _decode(self, method: str, path: str, response: requests.Response, expect: Expect) -> Any:
        """The answer's JSON; BadAnswer unless it is Codesphere's JSON (or, for
        calls that answer nothing, empty)."""
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if not response.content:
            if expect == "none":
                return None
            raise self._bad_answer(method, path, "an empty answer")
        if not is_json and (content_type or response.content.lstrip()[:1] == b"<"):
            kind = (
                "HTML"
                if "html" in content_type or response.content.lstrip()[:1] == b"<"
                else (content_type or "an untyped body")
            )
            raise self._bad_answer(method, path, kind)
        try:
            return response.json()
        except ValueError:
            raise self._bad_answer(method, path, "a body that is not JSON") from None

    def _bad_answer(self, method: str, path: str, what: str) -> BadAnswer:
        return BadAnswer(
            f"the API at {self.base_url} answered {method} {path} with {what}, not Codesphere's "
            f"JSON: {self._api_url_hint()}"
        )

    def _check_route(self, method: str, path: str, response: requests.Response) -> None:
        """A 404 with a body that is not Codesphere's problem JSON (an HTML page)
        comes from something that does not know the API's routes, a website:
        BadAnswer saying the api-url looks wrong, never "not found", which would
        blame the id in the path."""
        if response.status_code != 404 or not response.content:
            return
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            return
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        html = "html" in content_type or response.content.lstrip()[:1] == b"<"
        raise BadAnswer(
            f"the API at {self.base_url} answered {method} {path} with 404 and "
            f"{'an HTML page' if html else 'a body that is not JSON'}, not Codesphere's problem "
            f"JSON: that path is not a route of its API, so {self._api_url_hint()}"
        )

    def _api_url_hint(self) -> str:
        if not urlsplit(self.base_url).path.rstrip("/").endswith("/api"):
            return (
                f"the api-url input ('{self.base_url}') looks wrong: it should end in /api, "
                f"e.g. {API_URL_EXAMPLE} (self-hosted: https://<your host>/api)"
            )
        return (
            "check the api-url input (it usually ends in /api) and that no proxy or sign-in "
            "page stands in between"
        )

    def _parse(self, method: str, path: str, parse: Callable[[Any], T], value: Any) -> T:
        try:
            return parse(value)
        except BadAnswer as exc:
            raise BadAnswer(
                f"the API at {self.base_url} answered {method} {path} with JSON of an "
                f"unexpected shape ({exc}): check the api-url input"
            ) from None

    def _api_error(self, method: str, path: str, response: requests.Response) -> ApiError:
        title, detail, trace_id = response.reason or "error", "", ""
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            title = str(problem.get("title") or problem.get("reason") or title)
            detail = str(problem.get("detail") or "")
            trace_id = str(problem.get("traceId") or "")
        elif response.text:
            detail = " ".join(response.text.split())[:200]
        return ApiError(
            method,
            path,
            response.status_code,
            self.reporter.redact(title),
            self.reporter.redact(detail),
            trace_id,
            HINTS.get(response.status_code, ""),
            problem=isinstance(problem, dict),
            redirected=bool(response.history),
        )

    # -- workspaces ------------------------------------------------------------
    def get_workspace(self, workspace_id: int, *, deadline: float | None = None) -> Workspace:
        path = f"/workspaces/{workspace_id}"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, Workspace.parse, answer)

    def is_running(self, workspace_id: int, *, deadline: float | None = None) -> bool:
        path = f"/workspaces/{workspace_id}/status"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, lambda a: _field(a, "isRunning", bool), answer)

    def set_replicas(
        self, workspace_id: int, replicas: int, *, deadline: float | None = None
    ) -> None:
        # An absolute value: repeating it is harmless, so it counts as idempotent.
        self._request(
            "PATCH",
            f"/workspaces/{workspace_id}",
            body={"replicas": replicas},
            idempotent=True,
            expect="none",
            deadline=deadline,
        )

    def list_team_workspaces(
        self, team_id: int, *, deadline: float | None = None
    ) -> list[Workspace]:
        path = f"/workspaces/team/{team_id}"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, Workspace.parse_list, answer)

    def create_workspace(
        self, body: dict[str, Any], *, deadline: float | None = None, read_timeout: float = 60.0
    ) -> Workspace:
        answer = self._request(
            "POST",
            "/workspaces",
            body=body,
            idempotent=False,
            deadline=deadline,
            read_timeout=read_timeout,
        )
        return self._parse("POST", "/workspaces", Workspace.parse, answer)

    def delete_workspace(self, workspace_id: int, *, deadline: float | None = None) -> bool:
        """Delete; return False when it was already gone (404)."""
        try:
            self._request(
                "DELETE",
                f"/workspaces/{workspace_id}",
                idempotent=True,
                expect="none",
                deadline=deadline,
            )
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def exists(self, workspace_id: int, *, deadline: float | None = None) -> bool:
        """Whether the workspace exists (a 404 says it does not)."""
        try:
            self.get_workspace(workspace_id, deadline=deadline)
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def list_env_vars(self, workspace_id: int, *, deadline: float | None = None) -> list[EnvVar]:
        path = f"/workspaces/{workspace_id}/env-vars"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, EnvVar.parse_list, answer)

    def set_env_vars(
        self, workspace_id: int, variables: list[EnvVar], *, deadline: float | None = None
    ) -> None:
        self._request(
            "PUT",
            f"/workspaces/{workspace_id}/env-vars",
            body=[{"name": v.name, "value": v.value} for v in variables],
            idempotent=True,
            expect="none",
            deadline=deadline,
        )

    # -- git -----------------------------------------------------------------
    def git_pull(
        self, workspace_id: int, remote: str, branch: str, *, deadline: float | None = None
    ) -> None:
        path = f"/workspaces/{workspace_id}/git/pull/{quote(remote, safe='')}"
        if branch:
            path += f"/{quote(branch, safe='')}"
        # A pull of a big repository takes a while: wait for its answer rather
        # than pull again while the first may still run.
        self._request(
            "POST", path, idempotent=False, expect="none", deadline=deadline, read_timeout=120.0
        )

    def git_head(self, workspace_id: int, *, deadline: float | None = None) -> str:
        path = f"/workspaces/{workspace_id}/git/head"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, lambda a: _field(a, "head", str), answer)

    # -- pipeline and landscape ------------------------------------------------
    def start_stage(
        self, workspace_id: int, stage: str, profile: str = "", *, deadline: float | None = None
    ) -> None:
        path = f"/workspaces/{workspace_id}/pipeline/{stage}/start"
        if profile:
            path += f"/{quote(profile, safe='')}"
        self._request("POST", path, idempotent=False, expect="none", deadline=deadline)

    def stop_stage(self, workspace_id: int, stage: str, *, deadline: float | None = None) -> None:
        # Stopping twice leaves the same state: safe to repeat.
        self._request(
            "POST",
            f"/workspaces/{workspace_id}/pipeline/{stage}/stop",
            idempotent=True,
            expect="none",
            deadline=deadline,
        )

    def deploy_landscape(
        self, workspace_id: int, profile: str = "", *, deadline: float | None = None
    ) -> None:
        # Syncs the servers to ci.yml: deploying the same config twice is harmless.
        path = f"/workspaces/{workspace_id}/landscape/deploy"
        if profile:
            path += f"/{quote(profile, safe='')}"
        self._request("POST", path, idempotent=True, expect="none", deadline=deadline)

    def stage_status(
        self, workspace_id: int, stage: str, *, deadline: float | None = None
    ) -> list[StageEntry]:
        path = f"/workspaces/{workspace_id}/pipeline/{stage}"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, StageEntry.parse_list, answer)

    def open_log_stream(
        self,
        workspace_id: int,
        stage: str,
        step: int,
        *,
        idle_timeout: float,
        limit: float,
        server: str = "",
    ) -> LogStream:
        """Open the SSE log of one step (of one ``server``'s run, for the run stage of
        a multi-server workspace). Raises ApiError for an error answer, TransportError
        when it cannot be opened before ``limit``. Each stream has its own session:
        safe to read in another thread beside other calls."""
        path = f"/workspaces/{workspace_id}/logs/{stage}/{step}"
        if server:
            path += f"/server/{quote(server, safe='')}"
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        # Bytes as they come: a compressed stream would be read undecoded.
        session.headers["Accept-Encoding"] = "identity"
        opened = self.clock.now()
        try:
            response = self._send(
                "GET", path, None, self.timeouts(limit, idle_timeout), stream=True, session=session
            )
        except requests.RequestException as exc:
            session.close()
            raise self._transport_error("GET", path, exc, 1, opened) from None
        except BaseException:
            session.close()
            raise
        if response.status_code >= 400:
            try:
                self._check_route("GET", path, response)
                error: ActionError = self._api_error("GET", path, response)
            except BadAnswer as wrong:
                error = wrong
            response.close()
            session.close()
            raise error
        return LogStream(self, path, response, session)

    # -- domains -------------------------------------------------------------
    def get_domain(
        self,
        team_id: int,
        domain: str,
        *,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ) -> DomainInfo:
        path = f"/domains/team/{team_id}/domain/{quote(domain, safe='')}"
        answer = self._request(
            "GET", path, idempotent=True, deadline=deadline, read_timeout=read_timeout
        )
        return self._parse("GET", path, DomainInfo.parse, answer)

    def list_domains(self, team_id: int, *, deadline: float | None = None) -> list[DomainInfo]:
        path = f"/domains/team/{team_id}"
        answer = self._request("GET", path, idempotent=True, deadline=deadline)
        return self._parse("GET", path, DomainInfo.parse_list, answer)

    def set_domain_connections(
        self,
        team_id: int,
        domain: str,
        connections: dict[str, list[int]],
        *,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ) -> DomainInfo:
        # PUT replaces the whole map: repeating it with the same map is harmless.
        path = f"/domains/team/{team_id}/domain/{quote(domain, safe='')}/workspace-connections"
        answer = self._request(
            "PUT",
            path,
            body=connections,
            idempotent=True,
            deadline=deadline,
            read_timeout=read_timeout,
        )
        return self._parse("PUT", path, DomainInfo.parse, answer)


class LogStream:
    """One open SSE connection with the log of one step.

    The thread that reads ``entries()`` owns the connection and closes it.
    ``abort()`` may be called from any other thread: it shuts the socket down
    for reading (urllib3's ``shutdown()``), which never waits for a lock, so the
    reader's blocked ``recv`` returns at once and the stream ends.
    """

    def __init__(
        self, client: Client, path: str, response: requests.Response, session: requests.Session
    ) -> None:
        self.client = client
        self.path = path
        self.response = response
        self.session = session
        self.aborted = False
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type and content_type != "text/event-stream":
            self.close()
            raise client._bad_answer("GET", path, content_type)

    def abort(self) -> None:
        self.aborted = True
        # Not connected (any more): nothing to unblock.
        with contextlib.suppress(OSError, ValueError, RuntimeError, AttributeError):
            self.response.raw.shutdown()

    def close(self) -> None:
        self.response.close()
        self.session.close()

    def set_idle(self, seconds: float) -> None:
        """From now on a read that gets no byte for ``seconds`` raises (idle)."""
        connection = getattr(self.response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(seconds)

    def entries(self, *, stop: Callable[[], bool] | None = None) -> Iterator[LogEntry]:
        """Yield log entries until the server ends the stream, or ``stop()`` says so
        (asked whenever bytes arrive, keep-alive comments too).

        SSE is UTF-8 whatever the Content-Type says; lines end in CR, LF or CRLF
        (sseclient-py splits the bytes, then decodes). ``data`` and ``message``
        events carry ``[{"timestamp","kind","data"}]``; a ``problem`` event raises
        ApiError. A broken or idle connection raises TransportError.
        """
        from sseclient import SSEClient  # noqa: PLC0415

        for event in SSEClient(self._utf8_chunks(stop)).events():
            if event.event == "problem":
                raise self._problem(event.data)
            if event.event not in ("data", "message"):
                continue
            try:
                payload = json.loads(event.data)
            except ValueError:
                self.client.reporter.debug(f"{self.path}: skipped a log event that is not JSON")
                continue
            for item in payload if isinstance(payload, list) else [payload]:
                if isinstance(item, dict):
                    # "E"/"I" in the spec; "stderr"/"stdout" in a CLI test fixture.
                    kind = "E" if str(item.get("kind", "")).upper() in ("E", "STDERR") else "I"
                    yield LogEntry(kind, str(item.get("data", "")))

    def _utf8_chunks(self, stop: Callable[[], bool] | None) -> Iterator[bytes]:
        """The body's bytes as they arrive, made valid UTF-8 (an invalid byte becomes
        U+FFFD; a character split between chunks is kept whole), until EOF or
        ``stop()``."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        raw = self.response.raw
        while True:
            if stop is not None and stop():
                return
            try:
                chunk = raw.read1(8192, decode_content=True)
            except Exception as exc:  # noqa: BLE001 (urllib3's ProtocolError, ReadTimeoutError, OSError...)
                if self.aborted:
                    return
                idle = isinstance(exc, (ReadTimeoutError, TimeoutError))
                what = "was silent too long" if idle else f"broke ({type(exc).__name__})"
                raise TransportError(
                    f"GET {self.path}: the log stream {what}", maybe_landed=False, idle=idle
                ) from None
            if not chunk:
                text = decoder.decode(b"", final=True)
                if text:
                    yield text.encode()
                return
            text = decoder.decode(chunk)
            if text:
                yield text.encode()

    def _problem(self, data: str) -> ApiError:
        try:
            problem = json.loads(data)
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        status = problem.get("status")
        return ApiError(
            "GET",
            self.path,
            status if isinstance(status, int) else 200,  # a problem event of a 200 stream
            str(problem.get("title") or problem.get("reason") or "problem"),
            str(problem.get("detail") or ""),
            str(problem.get("traceId") or ""),
        )


def _field(answer: Any, key: str, kind: type[T]) -> T:
    """``answer[key]``, which must be a ``kind``; BadAnswer otherwise."""
    value = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(value, kind):
        raise BadAnswer(f"expected an object with {key}, got {str(answer)[:80]!r}")
    return value


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 160 else text[:157] + "..."
