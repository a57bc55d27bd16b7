"""The one place HTTP requests are made: session, auth, redirects, retries, time.

Every request is cut to the ``Deadline`` it serves: each attempt's connect and
read timeouts end by it (the cancel budget included), and a request whose
deadline has passed is never sent. Three kinds of caller share it:
- the Codesphere API (``api/codesphere.py``, ``api/logstream.py``): the token
  on every request, redirects followed by hand (same method and body; the
  token only within its scope, ``addresses.token_scope``), retries by
  ``call``;
- GitHub's API (``github_api.py``): its own token, no redirects, no retries;
- the health check (``health.py``): ``open`` a URL with the headers it
  chooses, no auth, no redirects.

Retries (``call``) are decided on exception types and status codes only:
- idempotent calls retry on connection errors, read timeouts, 429 and
  500/502/503/504;
- non-idempotent calls (create, stage start, git pull) retry only when the
  request provably never reached the server (connection refused, unknown
  host, connect timeout) or the server said 429; otherwise ``TransportError``
  with ``maybe_landed`` tells the caller to look at the state first.
Retries end ``RetryPolicy.budget`` seconds after the first attempt (never past
the deadline); the attempt in flight then may still wait for its answer, up
to its read timeout within the deadline. A host that cannot be reached at all
is given up on after ``CONNECT_BUDGET``.
"""

from __future__ import annotations

import json
import random
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from ..addresses import is_loopback, token_scope
from ..clock import Clock
from ..errors import RedirectRefused, TransportError, WriteInDryRun
from ..github import Reporter, count, format_seconds
from ..timings import (
    CONNECT_BUDGET,
    CONNECT_SECONDS,
    READ_SECONDS,
    RETRY,
    RETRY_NOTICE_SECONDS,
    Deadline,
    RetryPolicy,
)

USER_AGENT = "codesphere-release/1 (+https://github.com/features/actions)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # 500: idempotent calls only
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
READS = frozenset({"GET", "HEAD"})  # what a read-only (dry-run) transport sends


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


class NoAuth(requests.auth.AuthBase):
    """No credentials at all (and none from ~/.netrc)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def connect_failure(exc: requests.RequestException) -> str | None:
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


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


class Transport:
    """Requests to ``base_url`` with ``token`` ("" for none), cut to deadlines.

    ``follow_redirects``: follow them by hand, the token only within its scope
    (the Codesphere API between data centers); False: a redirect is returned
    as the answer (GitHub's API keeps its token to itself)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        reporter: Reporter,
        clock: Clock,
        service: str = "the Codesphere API",
        input_name: str = "api-url",
        follow_redirects: bool = True,
        retry: RetryPolicy = RETRY,
        connect_timeout: float = CONNECT_SECONDS,
        read_timeout: float = READ_SECONDS,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
        read_only: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self.scheme = base.scheme
        self.host = (base.hostname or "").lower()
        self.service = service
        self.input_name = input_name
        self.follow_redirects = follow_redirects
        self._scope: tuple[str, str] | None = None  # token_scope(), computed on first redirect
        self.auth: requests.auth.AuthBase = BearerAuth(token) if token else NoAuth()
        self.reporter = reporter
        self.clock = clock
        self.retry = retry
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.session = session or new_session()
        self.rng = rng or random.Random()
        # A dry run: any method but GET and HEAD is refused before it is sent.
        self.read_only = read_only

    def close(self) -> None:
        self.session.close()

    def timeouts(self, deadline: Deadline, read: float | None = None) -> tuple[float, float]:
        """(connect, read) timeouts of one attempt, cut to the time the deadline leaves."""
        return deadline.cap(self.connect_timeout), deadline.cap(read or self.read_timeout)

    # -- retries -----------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        idempotent: bool,
        body: Any = None,
        read_timeout: float | None = None,
        retries: bool = True,
    ) -> requests.Response:
        """Send with retries (module docstring); return the last answer, whatever
        its status. Raises TransportError when no answer came, RedirectRefused for
        a redirect out of the token's scope."""
        start = self.clock.now()
        until = deadline.within(self.retry.budget)  # when retries end
        delays = self.retry.delays(self.rng)
        attempt, first_refusal, told = 0, None, False
        while True:
            attempt += 1
            if deadline.expired:
                raise TransportError(
                    f"{method} {path}: no time left to send it (its wait or the cancel budget "
                    "ran out)",
                    maybe_landed=False,
                    out_of_time=True,
                )
            answer: requests.Response | None = None
            try:
                answer = self.send(
                    method, path, deadline=deadline, body=body, read_timeout=read_timeout
                )
            except requests.RequestException as exc:
                # A read cut short by the deadline: the caller's time ran out.
                cut = isinstance(exc, requests.Timeout) and deadline.expired
                error = self.transport_error(method, path, exc, attempt, start, cut=cut)
                if isinstance(exc, requests.exceptions.SSLError):
                    raise error from None  # a certificate or a scheme: retrying will not help
                failure = connect_failure(exc)
                if failure is not None:  # a host that cannot be reached is given up on quickly
                    first_refusal = self.clock.now() if first_refusal is None else first_refusal
                    until = until.within(first_refusal + CONNECT_BUDGET - self.clock.now())
                if not retries or not (failure or idempotent):
                    raise error from None
                last, wait = str(error), None
            else:
                status = answer.status_code
                retryable = status in RETRY_STATUSES and (idempotent or status == 429)
                if status < 400 or not retries or not retryable:
                    return answer
                last, wait = f"{status} {answer.reason or ''}".strip(), retry_after_seconds(answer)
            # Retry-After is a floor, never a licence to go faster than the backoff.
            delay = next(delays) if wait is None else max(next(delays), wait)
            if self.clock.now() + delay > until.limit:
                if answer is not None:
                    return answer  # the caller says what the last answer means
                raise error from None
            told = self._say_retry(method, path, last, delay, start, until, told=told)
            self.clock.sleep(delay)

    def _say_retry(
        self,
        method: str,
        path: str,
        last: str,
        delay: float,
        start: float,
        until: Deadline,
        *,
        told: bool,
    ) -> bool:
        """Say in the log, once, that a call retries (when that takes a while);
        return whether it was said."""
        if not told and self.clock.now() - start + delay > RETRY_NOTICE_SECONDS:
            told = True
            self.reporter.info(
                f"{self.service}: {method} {path} failed ({_short(last)}); retrying for up "
                f"to {format_seconds(until.left())}"
            )
        self.reporter.debug(f"retrying {method} {path} in {delay:.2f} s: {last}")
        return told

    # -- one attempt ----------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        body: Any = None,
        read_timeout: float | None = None,
        stream: bool = False,
        session: requests.Session | None = None,
        params: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """One attempt at ``base_url + path``, its timeouts cut to ``deadline``;
        redirects followed by hand when ``follow_redirects``: same method and
        body, the token only within its scope, over https (http on loopback).
        Raises requests' exceptions for no answer, TransportError for a 303 to
        a POST (carried out, its result elsewhere) or too many redirects, and
        WriteInDryRun for a write on a read-only transport (a bug: nothing sent)."""
        if self.read_only and method not in READS:
            raise WriteInDryRun(
                f"{method} {path} in a dry run: a dry run never writes, so the flow should "
                f"have stopped before this {self.service} call; nothing was sent"
            )
        timeout = self.timeouts(deadline, read_timeout)
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": accept}
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
                params=params,
                auth=self.auth,
                timeout=timeout,
                allow_redirects=False,
                stream=stream,
            )
            if self.reporter.debug_enabled:
                elapsed_ms = (self.clock.now() - started) * 1000
                self.reporter.debug(
                    f"{method} {urlsplit(url).path} -> {response.status_code} ({elapsed_ms:.0f} ms)"
                )
            target = self._redirect(method, path, url, response)
            if target is None:
                response.history = history  # the redirects followed, as requests does
                return response
            history.append(response)
            url, timeout = target, self.timeouts(deadline, read_timeout)
        raise TransportError(
            f"{method} {path}: more than {MAX_REDIRECTS} redirects", maybe_landed=False
        )

    def _redirect(
        self, method: str, path: str, url: str, response: requests.Response
    ) -> str | None:
        """Where a redirect sends the request (checked against the token's scope),
        or None when ``response`` is the answer."""
        location = response.headers.get("Location")
        if not self.follow_redirects or response.status_code not in REDIRECT_STATUSES:
            return None
        if not location:
            return None
        response.close()
        if response.status_code == 303 and method not in ("GET", "HEAD"):
            # See Other: the request was carried out and its result is elsewhere.
            # Sending it again there could do it twice; the caller checks.
            raise TransportError(
                f"{method} {path}: the API answered 303 See Other (to {location}): it "
                "was carried out, with its result elsewhere",
                maybe_landed=True,
            )
        target = urljoin(url, location)
        self._check_redirect(target)
        return target

    def open(
        self,
        url: str,
        *,
        deadline: Deadline,
        headers: dict[str, str],
        connect: float,
        read: float,
    ) -> requests.Response:
        """GET ``url`` (any host) once as a stream, with ``headers`` and no auth
        of this transport's, redirects not followed; the timeouts cut to
        ``deadline``. Raises requests' exceptions when no answer came."""
        return self.session.get(
            url,
            headers=headers,
            auth=NoAuth(),
            timeout=(deadline.cap(connect), deadline.cap(read)),
            allow_redirects=False,
            stream=True,
        )

    def _check_redirect(self, url: str) -> None:
        target = urlsplit(url)
        host = (target.hostname or "").lower()
        if self._scope is None:
            self._scope = token_scope(self.host)
        exact, domain = self._scope
        in_scope = host == exact or bool(domain and (host == domain or host.endswith("." + domain)))
        secure = target.scheme == "https" or (
            target.scheme == "http" and self.scheme == "http" and is_loopback(host)
        )
        if not (in_scope and secure):
            scope = f"{exact} or a host under {domain}" if domain and domain != exact else exact
            raise RedirectRefused(
                f"the API at {self.host} redirected to {target.scheme}://{host}, which is not "
                f"{scope} over https: the redirect was refused; the token is not sent there. "
                f"If your installation moved, set the {self.input_name} input to its new address"
            )
        self.reporter.debug(f"following redirect to {target.scheme}://{target.netloc}")

    def transport_error(
        self,
        method: str,
        path: str,
        exc: requests.RequestException,
        attempt: int,
        start: float,
        *,
        cut: bool = False,
    ) -> TransportError:
        """What ``exc`` means for the request, naming the host and the input to check;
        ``cut``: it timed out because the deadline ended (``out_of_time``)."""
        tries = f"{count(attempt, 'attempt')} in {format_seconds(self.clock.now() - start)}"
        where = f"the {self.input_name} input ('{self.base_url}')"
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(
                f"TLS error talking to {self.host} for {method} {path}: check {where} and the "
                "runner's CA certificates",
                maybe_landed=False,
            )
        failure = connect_failure(exc)
        if failure == "unknown host":
            return TransportError(
                f"cannot reach {self.service}: the host {self.host} does not resolve "
                f"({method} {path}, {tries}). Check {where}",
                maybe_landed=False,
            )
        if failure is not None:
            return TransportError(
                f"cannot reach {self.service} at {self.host}: {failure} ({method} {path}, "
                f"{tries}). Check {where} and whether the runner can reach that host",
                maybe_landed=False,
            )
        what = "no answer in time" if isinstance(exc, requests.Timeout) else "connection broke"
        return TransportError(
            f"{method} {path} failed: {what} talking to {self.host} ({tries})",
            maybe_landed=True,
            out_of_time=cut,
        )


def _short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."
