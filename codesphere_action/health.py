"""Health checks: does the released app really answer?

``running`` in the stage status says the servers started, not that the app
answers (the official CLI's ``wake-up`` polls the workspace URL afterwards for
that reason). With ``health-check-path`` set, the flows GET
``https://<devDomain><path>`` until a status in ``health-check-status`` comes
back, within ``health-check-timeout``, before the domain moves; after a switch
they may check ``https://<domain><domain-path><path>`` too.

Codesphere's placeholder: while the app does not listen yet, Codesphere's load
balancer answers its dev domain (and a custom domain routed to it) with a page
of its own, with a status no document gives (200, 429 and 503 are all
plausible). The official CLI (cs-go PR 288, ``cs curl``) takes any output that
contains ``Workspace server is starting`` or ``Too Many Requests`` for "not
ready yet", whatever its status. The action looks for the phrases only where
the placeholder puts them, so that an app's own healthy answer that mentions
one (a rate limiter's report) is never taken for it (``placeholder_phrase``):
in the text of an HTML page (not its scripts, styles or attributes), in the
first line of a text answer, and never in a JSON answer (by its content type,
or a body that starts with ``{`` or ``[``): the placeholder is a page, not
data. The body is read for them, up to ``SCAN_BYTES`` and within the
request's read time, and the log says once per change that the placeholder
answered, not the app.

Cookies: none are kept. Codesphere's load balancer may keep a visitor on one
of the workspaces of a path by a cookie (how is not documented); a check that
kept it would sample one workspace only, so every request is a new visitor.

The token: a restricted dev domain takes the API token in
``X-CS-Authorization: Bearer <token>`` (cs-go's wake-up and curl). It is sent
to the workspace's own devDomain, exactly as the API reports it, over https,
and to no other host: never to the custom domain, and redirects are not
followed. Plain http is used only for loopback hosts (local tests). A
restricted domain sends a visitor it does not let in to Codesphere's sign-in
page (Codesphere's documents), so a redirect from the dev domain to a sign-in
path on Codesphere's own host (``api-url``'s, or one under its registrable
domain) is the dev domain refusing the token, never the app, whatever
``health-check-status`` accepts (``sign_in_redirect``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import requests

from .addresses import token_scope, workspace_url
from .api.transport import Transport, new_session
from .config import Config
from .errors import ActionError, Cancelled, WaitTimeout
from .github import Reporter, count, format_seconds
from .timings import HEALTH_CONNECT_SECONDS, HEALTH_POLLS, HEALTH_READ_SECONDS, Deadline
from .waiting import Waiter

EXCERPT = 160  # characters of a failing answer's body shown in the log
# What marks Codesphere's placeholder page (cs-go cli/cmd/curl.go, checkOutput).
PLACEHOLDER_PHRASES = (b"Workspace server is starting", b"Too Many Requests")
# Bytes of a body read for them: a branded page may carry kilobytes of inline
# style before its text; a health endpoint's answer is far shorter.
SCAN_BYTES = 64 * 1024


class HealthCheckFailed(ActionError):
    """The app did not answer as expected within health-check-timeout."""

    title = "Health check failed"


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection refused, timeout, ...)
    detail: str  # "503 Service Unavailable: <excerpt>" or the connection error
    placeholder: str = ""  # the phrase of Codesphere's placeholder page, "" for the app's
    refused: str = ""  # the sign-in page a restricted dev domain sent the check to

    def accepted(self, ranges: tuple[tuple[int, int], ...]) -> bool:
        """An accepted status from the app itself (never the placeholder, never
        a restricted dev domain's way to its sign-in page)."""
        if self.status is None or self.placeholder or self.refused:
            return False
        return any(lo <= self.status <= hi for lo, hi in ranges)


@dataclass(frozen=True)
class Outcome:
    url: str
    attempts: int
    seconds: float
    answer: Answer


class HealthCheck:
    def __init__(
        self,
        config: Config,
        reporter: Reporter,
        waiter: Waiter,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.waiter = Waiter(waiter.clock, HEALTH_POLLS, HEALTH_POLLS, waiter.rng)
        self.clock = waiter.clock
        if session is None:  # no cookies: each request a new visitor (module docstring)
            session = new_session()
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # No token of its own: the dev domain's goes in a header, to that host only.
        self.transport = Transport(
            "", "", reporter=reporter, clock=self.clock, follow_redirects=False, session=session
        )

    def close(self) -> None:
        self.transport.close()

    # -- what the flows call ----------------------------------------------------
    def workspace(self, dev_domain: str, deadline: Deadline) -> Outcome:
        """Wait until the workspace answers on ``health-check-path`` (the first
        request at once), within ``deadline``; the token goes along, to this host
        only."""
        return self._wait(
            self._url(dev_domain), token_host=dev_domain, where="the workspace", deadline=deadline
        )

    def domain(self, deadline: Deadline, in_a_row: int = 1) -> Outcome:
        """Wait until the custom domain answers (after a switch) ``in_a_row``
        times in a row (one per workspace on the path: a balancer that places
        new visitors in turn reaches each), within ``deadline``; no token. The
        app answered on its dev domain already, so only the routing can fail
        here, and it does in production."""
        url = self._url(self.config.domain)
        return self._wait(
            url, token_host=None, where="the domain", deadline=deadline, in_a_row=in_a_row
        )

    def workspace_once(self, dev_domain: str, deadline: Deadline) -> Answer:
        """One GET of ``health-check-path`` on the dev domain (the token along)."""
        return self._get(self._url(dev_domain), dev_domain, deadline)

    def domain_once(self, deadline: Deadline) -> Answer:
        """One GET of ``health-check-path`` through the custom domain, no token."""
        return self._get(self._url(self.config.domain), None, deadline)

    def accepts(self, answer: Answer) -> bool:
        return answer.accepted(self.config.health.statuses)

    # -- the loop -----------------------------------------------------------------
    def _url(self, host: str, prefix: str = "") -> str:
        return f"{workspace_url(host)}{prefix}{self.config.health.path}"

    def _wait(
        self,
        url: str,
        *,
        token_host: str | None,
        where: str,
        deadline: Deadline,
        in_a_row: int = 1,
    ) -> Outcome:
        config = self.config
        start = self.clock.now()
        attempts, row = [0], [0]
        last = [Answer(None, "no answer yet")]
        times = f" {in_a_row} times in a row" if in_a_row > 1 else ""
        self.reporter.info(f"Health check of {where}: GET {url}{times}")

        def check(limit: Deadline) -> Answer | None:
            attempts[0] += 1
            answer = self._get(url, token_host, limit)
            accepted = answer.accepted(config.health.statuses)
            if not accepted and answer.detail != last[0].detail:
                self.reporter.info(f"  not yet: {answer.detail}")
            last[0] = answer
            row[0] = row[0] + 1 if accepted else 0
            return answer if row[0] >= in_a_row else None

        # The first request goes out at once: an app that is ready costs no wait
        # (and the first answer's time counts against the deadline).
        answer = check(deadline)
        if answer is None:
            try:
                answer = self.waiter.poll(check, deadline=deadline, what=f"health check of {url}")
            except WaitTimeout:
                hint = ""
                if last[0].placeholder:
                    hint = (
                        ". Codesphere answered for the app: the app did not start listening "
                        "in time; look at the run stage's log in Codesphere"
                    )
                elif last[0].refused:
                    hint = (
                        ". The app was never reached: make sure the API token's account is a "
                        "member of the workspace's team, or make the dev domain public (input "
                        "'restricted: false' for new workspaces, or the workspace's settings)"
                    )
                raise HealthCheckFailed(
                    f"the health check of {where} failed: GET {url} did not answer with "
                    f"{_ranges(config.health.statuses)}{times} within "
                    f"{format_seconds(deadline.seconds)} "
                    f"({count(attempts[0], 'attempt')}); the last answer: {last[0].detail}{hint}"
                ) from None
        seconds = self.clock.now() - start
        self.reporter.info(
            f"Health check passed after {format_seconds(seconds)} "
            f"({count(attempts[0], 'request')}): {answer.detail}"
        )
        return Outcome(url, attempts[0], seconds, answer)

    def _get(self, url: str, token_host: str | None, deadline: Deadline) -> Answer:
        headers = {"Accept": "*/*"}
        target = urlsplit(url)
        if token_host is not None and target.netloc == token_host:
            headers["X-CS-Authorization"] = f"Bearer {self.config.api_token}"
        resolved, host_header = f"{target.scheme}://{target.netloc}", ""
        if "X-CS-Authorization" not in headers:  # the seam never sees the token
            resolved, host_header = self._resolve(target.scheme, target.netloc)
        if host_header:
            headers["Host"] = host_header
        try:
            response = self.transport.open(
                url.replace(f"{target.scheme}://{target.netloc}", resolved, 1),
                deadline=deadline,
                headers=headers,
                connect=HEALTH_CONNECT_SECONDS,
                read=HEALTH_READ_SECONDS,
            )
        except Cancelled:
            raise
        except requests.RequestException as exc:
            return Answer(None, f"no answer: {type(exc).__name__}")
        # The body is read within the check's deadline (a cancel cuts it): it
        # says whether Codesphere's placeholder answered, and its excerpt why a
        # check failed.
        raw = _body(response, deadline.within(HEALTH_READ_SECONDS))
        reason = f"{response.status_code} {response.reason or ''}".strip()
        phrase = placeholder_phrase(raw, response.headers.get("Content-Type", ""))
        if phrase:
            return Answer(
                response.status_code,
                f"{reason}: Codesphere's placeholder page answered, not the app ('{phrase}'): "
                "the app is not listening yet",
                placeholder=phrase,
            )
        if token_host is not None and 300 <= response.status_code < 400:
            page = sign_in_redirect(url, response.headers.get("Location", ""), self.config.api_url)
            if page:
                return Answer(
                    response.status_code,
                    f"{reason}: the restricted dev domain refused the API token "
                    f"(X-CS-Authorization) and sent the check to Codesphere's sign-in page "
                    f"({page}), not to the app",
                    refused=page,
                )
        text = raw[:4096].decode("utf-8", "replace")
        excerpt = " ".join(self.reporter.redact(text).split())[:EXCERPT]  # redacted, then cut
        return Answer(response.status_code, f"{reason}: {excerpt}" if excerpt else reason)

    def _resolve(self, scheme: str, netloc: str) -> tuple[str, str]:
        """(scheme://host[:port] to connect to, Host header to send or ""): the
        test seam CODESPHERE_RELEASE_RESOLVE maps a host to a loopback port."""
        for host, target in self.config.health.resolve:
            if netloc.lower() == host:
                return f"http://{target}", netloc
        return f"{scheme}://{netloc}", ""


def placeholder_phrase(body: bytes, content_type: str = "") -> str:
    """The phrase of Codesphere's placeholder page in ``body``, where the page
    says it (see the module docstring), "" if none: in the text of an HTML page
    (its content type, or a body that starts with ``<``), in the first line of
    any other text; never in JSON (``content_type`` or a body that starts with
    ``{`` or ``[``)."""
    if not _mentions(body):
        return ""
    kind = content_type.partition(";")[0].strip().lower()
    text = body.decode("utf-8", "replace").lstrip()
    if kind.endswith(("/json", "+json")) or text.startswith(("{", "[")):
        return ""
    page = "html" in kind or text.startswith("<")
    text = _page_text(text) if page else text.partition("\n")[0]
    for phrase in PLACEHOLDER_PHRASES:
        if phrase.decode() in text:
            return phrase.decode()
    return ""


SIGN_IN = re.compile(r"(?:^|/)(?:sign-?in|log-?in|auth|oauth2?|sso)(?:/|$)", re.I)


def sign_in_redirect(url: str, location: str, api_url: str) -> str:
    """Where a redirect from ``url`` (the dev domain) to ``location`` goes, as
    ``scheme://host/path`` (no query: it may carry anything), when it is
    Codesphere's sign-in page: another host (or port) than the dev domain's,
    Codesphere's own (``api-url``'s host, or one under its registrable domain,
    ``addresses.token_scope``), at a sign-in path (``/ide/signin``, ``/login``,
    ``/auth/...``); "" for any other redirect, which is the app's."""
    if not location:
        return ""
    here, there = urlsplit(url), urlsplit(urljoin(url, location))
    name = (there.hostname or "").lower()
    if not name or there.netloc.lower() == here.netloc.lower():
        return ""
    host, domain = token_scope(urlsplit(api_url).hostname or "")
    ours = name == host or (bool(domain) and (name == domain or name.endswith(f".{domain}")))
    if not ours or not SIGN_IN.search(there.path):
        return ""
    return f"{there.scheme}://{there.netloc}{there.path}"


def _mentions(body: bytes) -> bool:
    """Whether ``body`` has a placeholder phrase anywhere (reading stops there)."""
    return any(phrase in body for phrase in PLACEHOLDER_PHRASES)


_HIDDEN = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)", re.I | re.S)
_TAG = re.compile(r"<[^>]*(?:>|\Z)")


def _page_text(page: str) -> str:
    """What an HTML page says: its text, without scripts, styles, comments,
    tags and their attributes; entities decoded, white space as single spaces."""
    text = _TAG.sub(" ", _HIDDEN.sub(" ", page))
    return " ".join(html.unescape(text).split())


def _body(response: requests.Response, deadline: Deadline) -> bytes:
    """The body, up to ``SCAN_BYTES``, within ``deadline``: it ends at the body's
    end, the bound, the deadline, or as soon as a placeholder phrase shows
    (``placeholder_phrase`` then decides whether it is where the page says it). The
    first read is bounded by the socket's timeout, cut to the deadline when the
    request was sent; no read starts once it passed."""
    body = b""
    try:
        while len(body) < SCAN_BYTES:
            chunk = response.raw.read1(SCAN_BYTES - len(body), decode_content=True)
            body += chunk
            if not chunk or _mentions(body[-len(chunk) - 64 :]) or deadline.expired:
                break
    except Exception:  # noqa: BLE001, S110 (a broken body: what came so far is the answer)
        pass
    finally:
        response.close()
    return body


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
