"""The health check against canned answers: where the token goes, the schedule,
accepted statuses, the error it ends with."""

from __future__ import annotations

import io

import pytest
import requests
import responses

from codesphere_action.config import load_config
from codesphere_action.errors import ConfigError
from codesphere_action.health import (
    SCAN_BYTES,
    HealthCheck,
    HealthCheckFailed,
    Outcome,
    placeholder_phrase,
    sign_in_redirect,
)
from codesphere_action.inputs import parse_statuses
from codesphere_action.timings import DOMAIN_CHECK_SECONDS, Deadline
from codesphere_action.waiting import Waiter

from .fakes import FakeClock, capture_reporter

TOKEN = "cs-health-token-55"
DEV = "1001-3000.dc2.codesphere.test"


class Check:
    """A HealthCheck given its deadlines as the flows give them (steps/verify.py)."""

    def __init__(self, health: HealthCheck, clock: FakeClock) -> None:
        self.health, self.clock, self.config = health, clock, health.config

    def workspace(self, dev_domain: str) -> Outcome:
        timeout = self.config.health.timeout
        return self.health.workspace(dev_domain, Deadline.after(timeout, self.clock))

    def domain(self) -> Outcome:
        timeout = min(DOMAIN_CHECK_SECONDS, self.config.health.timeout)
        return self.health.domain(Deadline.after(timeout, self.clock))


def checker(resolve: str = "", **inputs: str) -> tuple[Check, FakeClock]:
    """A health check as the flows make it; ``resolve``: CODESPHERE_RELEASE_RESOLVE."""
    check, clock, _ = checker_and_log(resolve, **inputs)
    return check, clock


def checker_and_log(resolve: str = "", **inputs: str) -> tuple[Check, FakeClock, io.StringIO]:
    environ = {
        "CODESPHERE_RELEASE_RESOLVE": resolve,
        "INPUT_API-TOKEN": TOKEN,
        "INPUT_FLOW": "rollback",
        "INPUT_TEAM-ID": "7",
        "INPUT_WORKSPACE-ID": "1001",
        "INPUT_DOMAIN": "shop.example.com",
        "INPUT_HEALTH-CHECK-PATH": "/healthz",
        **{f"INPUT_{k.upper().replace('_', '-')}": v for k, v in inputs.items()},
    }
    config = load_config(environ)
    reporter, log = capture_reporter()
    reporter.mask(TOKEN)
    clock = FakeClock()
    return Check(HealthCheck(config, reporter, Waiter(clock)), clock), clock, log


@responses.activate
def test_the_token_goes_to_the_dev_domain_over_https_and_the_first_request_is_immediate() -> None:
    responses.get(f"https://{DEV}/healthz", body="ok")
    check, clock = checker()
    outcome = check.workspace(DEV)
    assert (outcome.answer.status, outcome.attempts) == (200, 1)
    assert clock.sleeps == []
    sent = responses.calls[0].request
    assert sent.headers["X-CS-Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in sent.headers


@responses.activate
def test_the_domain_check_never_sends_the_token() -> None:
    responses.get("https://shop.example.com/healthz", body="ok")
    check, _ = checker()
    assert check.domain().answer.status == 200
    sent = responses.calls[0].request
    assert "X-CS-Authorization" not in sent.headers and "Authorization" not in sent.headers


@responses.activate
def test_it_polls_every_third_of_a_second_until_an_accepted_status() -> None:
    url = f"https://{DEV}/healthz"
    for status in (502, 503, 500):
        responses.get(url, status=status, body="<html>not yet</html>")
    responses.get(url, body="ok")
    check, clock = checker()
    outcome = check.workspace(DEV)
    assert outcome.attempts == 4
    assert all(s == pytest.approx(0.3) for s in clock.sleeps)


@responses.activate
def test_after_60_s_the_polls_grow_to_3_s() -> None:
    responses.get(f"https://{DEV}/healthz", status=503, body="starting")
    check, clock = checker(health_check_timeout="120s")
    with pytest.raises(HealthCheckFailed):
        check.workspace(DEV)
    early = [s for i, s in enumerate(clock.sleeps) if sum(clock.sleeps[:i]) < 59.5]
    assert len(early) >= 198 and all(s == pytest.approx(0.3) for s in early)
    assert max(clock.sleeps) == pytest.approx(3.0)
    # 120 s: 200 quick polls, then about 25 slow ones
    assert len(clock.sleeps) < 240


@responses.activate
def test_a_slow_first_answer_counts_in_the_timeout() -> None:
    check, clock = checker(health_check_timeout="10s")
    start = clock.now()

    def slow(_request: object) -> tuple[int, dict[str, str], str]:
        clock.time += 4.0  # each answer takes 4 s
        return 503, {}, "starting"

    responses.add_callback(responses.GET, f"https://{DEV}/healthz", callback=slow)
    with pytest.raises(HealthCheckFailed, match=r"within 10\.0 s"):
        check.workspace(DEV)
    # The answers' own time counts: the check ends by its 10 s, not 10 s after the first.
    assert clock.now() - start <= 10.0 + 4.0
    assert len(responses.calls) <= 3


@responses.activate
def test_a_redirect_is_not_followed_and_counts_as_its_own_status() -> None:
    responses.get(f"https://{DEV}/healthz", status=302, headers={"Location": "https://sso.x/"})
    check, _ = checker()
    assert check.workspace(DEV).answer.status == 302  # 200-399 by default
    assert len(responses.calls) == 1
    responses.calls.reset()
    strict, _ = checker(health_check_status="200", health_check_timeout="2s")
    with pytest.raises(HealthCheckFailed, match="302"):
        strict.workspace(DEV)
    assert all((c.request.url or "").startswith(f"https://{DEV}/") for c in responses.calls)


@responses.activate
def test_failure_names_the_url_the_last_status_and_a_masked_excerpt() -> None:
    responses.get(
        f"https://{DEV}/healthz",
        status=500,
        body=f"<html><body>Traceback: token {TOKEN} rejected\n\n by db</body></html>",
    )
    check, clock = checker(health_check_timeout="10s")
    with pytest.raises(HealthCheckFailed) as caught:
        check.workspace(DEV)
    message = str(caught.value)
    assert f"GET https://{DEV}/healthz did not answer with 200-399 within 10.0 s" in message
    assert "the last answer: 500 Internal Server Error: <html><body>Traceback: token ***" in message
    assert TOKEN not in message
    assert clock.now() - 1000.0 <= 10.0


@responses.activate
def test_a_connection_error_is_an_answer_of_its_own() -> None:
    responses.get(f"https://{DEV}/healthz", body=requests.ConnectionError("refused"))
    check, _ = checker(health_check_timeout="1s")
    with pytest.raises(HealthCheckFailed, match="no answer: ConnectionError"):
        check.workspace(DEV)


@responses.activate
def test_loopback_dev_domains_use_http_and_the_resolve_seam_maps_a_domain_to_loopback() -> None:
    responses.get("http://127.0.0.1:4000/healthz", body="ok")
    responses.get("http://127.0.0.1:4100/healthz", body="ok")
    check, _ = checker()
    assert check.workspace("127.0.0.1:4000").answer.status == 200
    environ_check, _ = checker(resolve="shop.example.com=127.0.0.1:4100")
    assert environ_check.domain().answer.status == 200
    domain_call = responses.calls[1].request
    assert domain_call.headers["Host"] == "shop.example.com"
    assert "X-CS-Authorization" not in domain_call.headers


@pytest.mark.parametrize(
    ("text", "ranges"),
    [("200-399", ((200, 399),)), ("200, 204,301-302", ((200, 200), (204, 204), (301, 302)))],
)
def test_accepted_statuses_parse(text: str, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_statuses("health-check-status", text) == ranges


@pytest.mark.parametrize("text", ["", "ok", "399-200", "99", "600", "200-", "2xx"])
def test_bad_statuses_name_the_input(text: str) -> None:
    with pytest.raises(ConfigError, match="input 'health-check-status'"):
        parse_statuses("health-check-status", text)


@responses.activate
def test_the_resolve_seam_never_applies_to_a_request_with_the_token() -> None:
    responses.get(f"https://{DEV}/healthz", body="ok")
    check, _ = checker(resolve=f"{DEV}=127.0.0.1:4100")
    check.workspace(DEV)
    (call,) = responses.calls
    assert call.request.url == f"https://{DEV}/healthz"  # not sent to the loopback target
    assert call.request.headers["X-CS-Authorization"] == f"Bearer {TOKEN}"


# -- Codesphere's placeholder page (issue 20) -------------------------------------------
STARTING = "Workspace server is starting"
REASONS = {200: "OK", 429: "Too Many Requests", 503: "Service Unavailable"}


def page(phrase: str, padding: int = 0) -> str:
    return f"<html><head><style>{'x' * padding}</style></head><body>{phrase}</body></html>"


@responses.activate
@pytest.mark.parametrize("status", [200, 429, 503])
@pytest.mark.parametrize("phrase", [STARTING, "Too Many Requests"])
def test_the_placeholder_is_never_healthy_whatever_its_status(status: int, phrase: str) -> None:
    url = f"https://{DEV}/healthz"
    responses.get(url, status=status, body=page(phrase, 10_000), content_type="text/html")
    responses.get(url, status=status, body=f"{phrase}.", content_type="text/plain")
    responses.get(url, body="ok")
    check, _clock, log = checker_and_log(health_check_status="200-599")
    outcome = check.workspace(DEV)
    assert (outcome.attempts, outcome.answer.detail) == (3, "200 OK: ok")
    said = [line for line in log.getvalue().splitlines() if "placeholder" in line]
    assert said == [
        f"  not yet: {status} {REASONS[status]}: Codesphere's placeholder "
        f"page answered, not the app ('{phrase}'): the app is not listening yet"
    ]  # once: the second answer said the same


@responses.activate
def test_the_domain_check_knows_the_placeholder_too() -> None:
    url = "https://shop.example.com/healthz"
    responses.get(url, body=page(STARTING))
    responses.get(url, body="ok")
    check, _ = checker()
    assert check.domain().attempts == 2


@responses.activate
def test_a_placeholder_to_the_end_fails_saying_the_app_never_listened() -> None:
    responses.get(f"https://{DEV}/healthz", body=page(STARTING, 5000))
    check, _ = checker(health_check_timeout="3s")
    with pytest.raises(HealthCheckFailed) as caught:
        check.workspace(DEV)
    message = str(caught.value)
    assert "the last answer: 200 OK: Codesphere's placeholder page answered, not the app" in message
    assert "the app did not start listening in time" in message


def test_the_phrase_is_found_anywhere_in_the_bytes_read() -> None:
    assert placeholder_phrase(page(STARTING, 60_000).encode()) == STARTING
    assert placeholder_phrase(b"<h1>429 Too Many Requests</h1>") == "Too Many Requests"
    assert placeholder_phrase(b"workspace server is starting") == ""  # as the CLI: exact
    assert placeholder_phrase(b"ok") == ""


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"status":"ok","limiter":"429 Too Many Requests: 0"}', "application/json"),
        (b'{"status":"ok","limiter":"429 Too Many Requests: 0"}', "text/plain"),  # no type
        (b'[{"check":"Workspace server is starting","ok":true}]', ""),
        (b"ok\nrate limiter: 0 Too Many Requests answered\n", "text/plain"),
        (b'<html><script>const e = "Too Many Requests";</script><p>ok</p></html>', "text/html"),
        (b'<html><body><div title="Too Many Requests">ok</div></body></html>', ""),
        (b"<html><!-- Workspace server is starting --><p>ok</p></html>", "text/html"),
        (b"<html><style>" + b"x" * 70 + b"</style><script>Too Many Requests", ""),  # cut off
    ],
)
def test_an_answer_that_mentions_a_phrase_elsewhere_is_the_apps(
    body: bytes, content_type: str
) -> None:
    """The placeholder is a page: its phrase is in a page's text or a text's first
    line, never in JSON, a script, an attribute or a comment."""
    assert placeholder_phrase(body, content_type) == ""


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><head><title>429 Too Many Requests</title></head></html>", "text/html"),
        (b"\n  429 Too Many Requests\n", "text/plain"),
        (b"Too Many Requests", ""),
        (b"<h1>Workspace server is starting</h1>", "text/html; charset=utf-8"),
    ],
)
def test_the_placeholder_says_its_phrase_in_its_text(body: bytes, content_type: str) -> None:
    assert placeholder_phrase(body, content_type) != ""


@responses.activate
def test_a_json_health_answer_that_mentions_a_phrase_passes() -> None:
    body = '{"status":"ok","rateLimit":{"rejects":"429 Too Many Requests"}}'
    responses.get(f"https://{DEV}/healthz", body=body, content_type="application/json")
    check, _ = checker()
    assert check.workspace(DEV).attempts == 1


@responses.activate
def test_the_body_is_read_up_to_its_bound_and_no_further() -> None:
    url = f"https://{DEV}/healthz"
    # An app whose own answer is larger than the bound, the phrase beyond it: the
    # app's (its first SCAN_BYTES are all that is read).
    responses.get(url, body=("a" * (SCAN_BYTES + 10)) + STARTING)
    check, _ = checker()
    assert check.workspace(DEV).attempts == 1


@responses.activate
def test_no_cookie_is_kept_so_every_request_is_a_new_visitor() -> None:
    """A load balancer that keeps a visitor on one workspace by a cookie (issue
    22): a check that kept it would sample one workspace of a canary's path."""
    url = "https://shop.example.com/healthz"
    responses.get(url, body="ok", headers={"Set-Cookie": "cs-workspace=1001; Path=/"})
    check, _clock = checker()
    for _ in range(3):
        assert check.health.accepts(check.health.domain_once(Deadline.after(5, check.clock)))
    assert [c.request.headers.get("Cookie") for c in responses.calls] == [None, None, None]


@responses.activate
def test_in_a_row_needs_that_many_accepted_answers_one_after_another() -> None:
    url = "https://shop.example.com/healthz"
    for status in (200, 503, 200, 200):
        responses.get(url, status=status, body="x")
    check, clock = checker()
    outcome = check.health.domain(Deadline.after(60, clock), in_a_row=2)
    assert (outcome.attempts, outcome.answer.status) == (4, 200)
    assert len(clock.sleeps) == 3  # the poll schedule between the answers, as in any wait


# -- a restricted dev domain that sends the check to Codesphere's sign-in page ----------
API = "https://cloud.codesphere.com/api"


@pytest.mark.parametrize(
    ("location", "page"),
    [
        ("https://codesphere.com/ide/signin?redirect=x", "https://codesphere.com/ide/signin"),
        ("https://de-fra-1.codesphere.com/login", "https://de-fra-1.codesphere.com/login"),
        (
            "https://cloud.codesphere.com/auth/start?token=abc",
            "https://cloud.codesphere.com/auth/start",
        ),
        ("/login", ""),  # the app's own sign-in, on the dev domain
        (f"https://{DEV}/signin", ""),
        ("https://auth.example.com/login", ""),  # the app's identity provider
        ("https://codesphere.com/pricing", ""),  # not a sign-in page
        ("", ""),
    ],
)
def test_a_redirect_to_codesphere_sign_in_is_told_from_the_apps(location: str, page: str) -> None:
    assert sign_in_redirect(f"https://{DEV}/healthz", location, API) == page


@responses.activate
def test_a_redirect_to_sign_in_is_never_healthy_and_says_what_to_do() -> None:
    url = f"https://{DEV}/healthz"
    location = "https://codesphere.com/ide/signin?redirect=https%3A%2F%2Fx"
    responses.get(url, status=302, headers={"Location": location})
    responses.get(url, status=302, headers={"Location": "/healthz/"})  # the app's own: passes
    check, _clock, log = checker_and_log()
    assert check.workspace(DEV).attempts == 2
    assert "refused the API token (X-CS-Authorization)" in log.getvalue()
    responses.replace(responses.GET, url, status=302, headers={"Location": location})
    short, _ = checker(health_check_timeout="2s")
    with pytest.raises(HealthCheckFailed) as caught:
        short.workspace(DEV)
    message = str(caught.value)
    assert "Codesphere's sign-in page (https://codesphere.com/ide/signin)" in message
    assert "member of the workspace's team" in message and "restricted: false" in message
