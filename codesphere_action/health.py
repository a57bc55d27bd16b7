"""Health checks: does the released app really answer?

``running`` in the stage status says the servers started, not that the app
answers (the official CLI's ``wake-up`` polls the workspace URL afterwards for
that reason). With ``health-check-path`` set, the flows GET
``https://<devDomain><path>`` until a status in ``health-check-status`` comes
back, within ``health-check-timeout``, before the domain moves; after a switch
they may check ``https://<domain><domain-path><path>`` too.

The token: a restricted dev domain takes the API token in
``X-CS-Authorization: Bearer <token>`` (cs-go's wake-up and curl). It is sent
to the workspace's own devDomain, exactly as the API reports it, over https,
and to no other host: never to the custom domain, and redirects are not
followed. Plain http is used only for loopback hosts (local tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from .addresses import workspace_url
from .client import USER_AGENT
from .config import Config
from .errors import ActionError, Cancelled, WaitTimeout
from .github import Reporter, format_seconds
from .waiting import PollPolicy, Waiter

# The first request at once, then every 0.3 s for 60 s (an app that gets ready
# within a minute of its servers running, a JVM's start included, is seen within
# 0.3 s; about 200 requests to a health endpoint, which is cheap), then growing
# to every 3 s. No jitter: one job checks its own app, no herd to spread out.
HEALTH_POLLS = PollPolicy(first=0.3, steady=0.3, steady_until=60.0, factor=1.3, cap=3.0, jitter=0.0)
CONNECT_SECONDS, READ_SECONDS = 3.0, 5.0
DOMAIN_SECONDS = 60.0  # the check through the domain, after the switch
EXCERPT = 160


class HealthCheckFailed(ActionError):
    """The app did not answer as expected within health-check-timeout."""

    title = "Health check failed"


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection refused, timeout, ...)
    detail: str  # "503 Service Unavailable: <excerpt>" or the connection error

    def accepted(self, ranges: tuple[tuple[int, int], ...]) -> bool:
        return self.status is not None and any(lo <= self.status <= hi for lo, hi in ranges)


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
        deadline_cap: Callable[[], float | None] = lambda: None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.waiter = Waiter(waiter.clock, HEALTH_POLLS, HEALTH_POLLS, waiter.rng)
        self.clock = waiter.clock
        self.deadline_cap = deadline_cap
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    # -- what the flows call ----------------------------------------------------
    def workspace(self, dev_domain: str) -> Outcome:
        """Wait until the workspace answers on ``health-check-path``; the token goes
        along, to this host only."""
        return self._wait(self._url(dev_domain), token_host=dev_domain, where="the workspace")

    def domain(self) -> Outcome:
        """Wait until the custom domain answers (after a switch); no token. The
        app answered on its dev domain already, so only the routing can fail
        here, and it does in production: no longer than ``DOMAIN_SECONDS``."""
        config = self.config
        url = self._url(config.domain)
        return self._wait(
            url,
            token_host=None,
            where="the domain",
            timeout=min(DOMAIN_SECONDS, config.health.timeout),
        )

    # -- the loop -----------------------------------------------------------------
    def _url(self, host: str, prefix: str = "") -> str:
        return f"{workspace_url(host)}{prefix}{self.config.health.path}"

    def _wait(
        self, url: str, *, token_host: str | None, where: str, timeout: float | None = None
    ) -> Outcome:
        config = self.config
        timeout = config.health.timeout if timeout is None else timeout
        start = self.clock.now()
        deadline = start + timeout
        attempts = [0]
        last = [Answer(None, "no answer yet")]
        self.reporter.info(f"Health check of {where}: GET {url}")

        def check(_limit: float) -> Answer | None:
            attempts[0] += 1
            answer = self._get(url, token_host, deadline)
            accepted = answer.accepted(config.health.statuses)
            if not accepted and answer.detail != last[0].detail:
                self.reporter.info(f"  not yet: {answer.detail}")
            last[0] = answer
            return answer if accepted else None

        # The first request goes out at once: an app that is ready costs no wait.
        answer = check(deadline)
        if answer is None:
            try:
                left = max(0.0, deadline - self.clock.now())  # the first answer's time counts
                answer = self.waiter.poll(check, timeout=left, what=f"health check of {url}")
            except WaitTimeout:
                within = format_seconds(timeout)
                raise HealthCheckFailed(
                    f"the health check of {where} failed: GET {url} did not answer with "
                    f"{_ranges(config.health.statuses)} within {within} ({attempts[0]} "
                    f"attempts); the last answer: {last[0].detail}"
                ) from None
        seconds = self.clock.now() - start
        self.reporter.info(
            f"Health check passed after {format_seconds(seconds)} ({attempts[0]} request(s)): "
            f"{answer.detail}"
        )
        return Outcome(url, attempts[0], seconds, answer)

    def _get(self, url: str, token_host: str | None, deadline: float) -> Answer:
        headers = {"Accept": "*/*"}
        target = urlsplit(url)
        if token_host is not None and target.netloc == token_host:
            headers["X-CS-Authorization"] = f"Bearer {self.config.api_token}"
        connect, read = self._timeouts(deadline)
        resolved, host_header = f"{target.scheme}://{target.netloc}", ""
        if "X-CS-Authorization" not in headers:  # the seam never sees the token
            resolved, host_header = self._resolve(target.scheme, target.netloc)
        if host_header:
            headers["Host"] = host_header
        try:
            response = self.session.get(
                url.replace(f"{target.scheme}://{target.netloc}", resolved, 1),
                headers=headers,
                timeout=(connect, read),
                allow_redirects=False,
                stream=True,
            )
        except Cancelled:
            raise
        except requests.RequestException as exc:
            return Answer(None, f"no answer: {type(exc).__name__}")
        body = b""
        stop_at = self.clock.now() + read
        try:
            # A few bytes of the body for the error, within the request's own time.
            while len(body) < 4096 and self.clock.now() < stop_at:
                chunk = response.raw.read1(4096 - len(body), decode_content=True)
                if not chunk:
                    break
                body += chunk
        except Exception:  # noqa: BLE001, S110 (the status is what counts; the body is a courtesy)
            pass
        finally:
            response.close()
        excerpt = " ".join(body.decode("utf-8", "replace").split())[:EXCERPT]
        excerpt = self.reporter.redact(excerpt)
        reason = f"{response.status_code} {response.reason or ''}".strip()
        return Answer(response.status_code, f"{reason}: {excerpt}" if excerpt else reason)

    def _timeouts(self, deadline: float) -> tuple[float, float]:
        limit = deadline
        cap = self.deadline_cap()
        if cap is not None:
            limit = min(limit, cap)
        left = max(0.05, limit - self.clock.now())
        return min(CONNECT_SECONDS, left), min(READ_SECONDS, left)

    def _resolve(self, scheme: str, netloc: str) -> tuple[str, str]:
        """(scheme://host[:port] to connect to, Host header to send or ""): the
        test seam CODESPHERE_RELEASE_RESOLVE maps a host to a loopback port."""
        for host, target in self.config.health.resolve:
            if netloc.lower() == host:
                return f"http://{target}", netloc
        return f"{scheme}://{netloc}", ""


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
