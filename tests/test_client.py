"""The API client against canned answers (responses): retries, redirects, errors."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)

from codesphere_action.addresses import token_scope
from codesphere_action.api.codesphere import Codesphere
from codesphere_action.api.transport import Transport
from codesphere_action.errors import ApiError, BadAnswer, RedirectRefused, TransportError
from codesphere_action.inputs import DEFAULT_API_URL
from codesphere_action.models import DomainMap
from codesphere_action.timings import CONNECT_BUDGET, Deadline, RetryPolicy

from .fakes import FakeClock, capture_reporter

API = "https://codesphere.com/api"
TOKEN = "tok-client-secret-99"


class Body:
    """A create body as a test writes it (a dict), as the client takes it."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def to_json(self) -> dict[str, Any]:
        return self.value


class Api:
    """The client as a phase with an hour to go calls it: every method gets that
    deadline unless the test gives one (a number: the instant it ends); a create
    body may be a dict, ``limit`` of a log stream the instant its deadline ends."""

    def __init__(self, client: Codesphere, clock: FakeClock, cap: float | None) -> None:
        self.client, self.clock, self.cap = client, clock, cap

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            at = kwargs.pop("deadline", kwargs.pop("limit", self.clock.now() + 3600))
            kwargs["deadline"] = Deadline(at, self.clock, lambda: self.cap, at - self.clock.now())
            args = tuple(
                Body(a) if isinstance(a, dict) and name == "create_workspace" else a for a in args
            )
            return method(*args, **kwargs)

        return call


def make_client(api: str = API, budget: float = 60.0) -> tuple[Api, FakeClock]:
    client, clock, _ = make_client_and_log(api, budget)
    return client, clock


def make_client_and_log(
    api: str = API, budget: float = 60.0, cap: float | None = None
) -> tuple[Api, FakeClock, io.StringIO]:
    clock = FakeClock()
    reporter, log = capture_reporter()
    reporter.mask(TOKEN)
    transport = Transport(
        api, TOKEN, reporter=reporter, clock=clock, retry=RetryPolicy(budget=budget)
    )
    client = Api(Codesphere(transport), clock, cap)
    return client, clock, log


def problem(status: int, title: str, detail: str = "") -> dict[str, object]:
    return {"status": status, "title": title, "detail": detail, "traceId": "trace-1"}


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def unresolved(host: str) -> requests.ConnectionError:
    reason = NameResolutionError(host, None, socket.gaierror("Name or service not known"))  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


@responses.activate
def test_get_sends_the_token_and_decodes_json() -> None:
    responses.get(f"{API}/workspaces/1/status", json={"isRunning": True})
    client, _ = make_client()
    assert client.is_running(1) is True
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "codesphere-release" in sent.headers["User-Agent"]


@responses.activate
@pytest.mark.parametrize("status", [502, 503, 504])
def test_idempotent_calls_retry_transient_statuses(status: int) -> None:
    url = f"{API}/workspaces/1"
    responses.get(url, status=status, json=problem(status, "Bad Gateway"))
    responses.get(url, json={"id": 1})
    client, clock = make_client()
    assert client.get_workspace(1).id == 1
    assert len(responses.calls) == 2
    assert 0.1 <= clock.sleeps[0] <= 0.25


@responses.activate
def test_429_waits_for_retry_after() -> None:
    url = f"{API}/workspaces/1"
    responses.get(url, status=429, headers={"Retry-After": "3"}, json=problem(429, "Slow down"))
    responses.get(url, json={"id": 1})
    client, clock = make_client()
    client.get_workspace(1)
    assert clock.sleeps == [3.0]


@responses.activate
def test_connection_errors_and_read_timeouts_retry_for_idempotent_calls() -> None:
    url = f"{API}/workspaces/1"
    responses.get(url, body=dropped())
    responses.get(url, body=requests.ReadTimeout("slow"))
    responses.get(url, json={"id": 1})
    client, _ = make_client()
    assert client.get_workspace(1).id == 1
    assert len(responses.calls) == 3


@responses.activate
def test_retries_stop_at_the_overall_bound() -> None:
    responses.get(f"{API}/workspaces/1", status=503, json=problem(503, "Unavailable"))
    client, clock = make_client(budget=10)
    start = clock.now()
    with pytest.raises(ApiError, match="503"):
        client.get_workspace(1)
    assert clock.now() - start <= 10
    assert len(responses.calls) > 3
    assert max(clock.sleeps) <= 5.0  # capped


@responses.activate
def test_retries_stop_at_the_callers_deadline() -> None:
    responses.get(f"{API}/workspaces/1/status", status=502, json=problem(502, "Bad Gateway"))
    client, clock = make_client()
    with pytest.raises(ApiError):
        client.is_running(1, deadline=clock.now() + 1.0)
    assert sum(clock.sleeps) <= 1.0


@responses.activate
def test_a_500_is_retried_for_idempotent_calls_only() -> None:
    """Issue 17: one 500 on a read must not end a release; a create that got a
    500 may have landed, so it is never sent again blindly."""
    url = f"{API}/domains/team/7/domain/a.example.com"
    responses.get(url, status=500, json=problem(500, "Internal Server Error"))
    responses.get(url, json={"name": "a.example.com", "workspaces": {"/": [1]}})
    client, _ = make_client()
    assert client.get_domain(7, "a.example.com").workspaces == {"/": [1]}
    assert len(responses.calls) == 2
    responses.post(f"{API}/workspaces", status=500, json=problem(500, "Internal Server Error"))
    responses.post(f"{API}/workspaces/1/pipeline/prepare/start", status=500, json=problem(500, "x"))
    with pytest.raises(ApiError, match="500"):
        client.create_workspace({"name": "x"})
    with pytest.raises(ApiError, match="500"):
        client.start_stage(1, "prepare")
    assert len(responses.calls) == 4


@responses.activate
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 501])
def test_other_errors_never_retry(status: int) -> None:
    responses.get(f"{API}/workspaces/1", status=status, json=problem(status, "Nope"))
    client, _ = make_client()
    with pytest.raises(ApiError):
        client.get_workspace(1)
    assert len(responses.calls) == 1


@responses.activate
def test_error_message_has_status_title_detail_trace_id_and_no_token() -> None:
    responses.post(
        f"{API}/workspaces/5/pipeline/prepare/start",
        status=400,
        json=problem(400, "Workspace is not running", f"token {TOKEN} rejected"),
    )
    client, _ = make_client()
    with pytest.raises(ApiError) as caught:
        client.start_stage(5, "prepare")
    message = str(caught.value)
    assert message.startswith(
        "Codesphere API returned 400 (Workspace is not running) for POST "
        "/workspaces/5/pipeline/prepare/start"
    )
    assert "(trace ID trace-1)" in message
    assert TOKEN not in message


@responses.activate
def test_401_says_to_check_the_token() -> None:
    responses.get(f"{API}/workspaces/1", status=401, json=problem(401, "Unauthorized"))
    client, _ = make_client()
    with pytest.raises(ApiError, match="Check the api-token input"):
        client.get_workspace(1)


@responses.activate
def test_non_idempotent_calls_do_not_retry_when_the_request_may_have_landed() -> None:
    responses.post(f"{API}/workspaces", body=dropped())
    client, _ = make_client()
    with pytest.raises(TransportError) as caught:
        client.create_workspace({"name": "x"})
    assert caught.value.maybe_landed
    assert len(responses.calls) == 1


@responses.activate
def test_non_idempotent_calls_do_not_retry_a_gateway_error() -> None:
    responses.post(f"{API}/workspaces/1/git/pull/origin", status=502, json=problem(502, "BG"))
    client, _ = make_client()
    with pytest.raises(ApiError):
        client.git_pull(1, "origin", "")
    assert len(responses.calls) == 1


@responses.activate
def test_non_idempotent_calls_retry_when_the_server_was_never_reached() -> None:
    url = f"{API}/workspaces/1/pipeline/run/start"
    responses.post(url, body=refused())
    responses.post(url, status=429, headers={"Retry-After": "1"}, json=problem(429, "Slow"))
    responses.post(url, status=200)
    client, _ = make_client()
    client.start_stage(1, "run")
    assert len(responses.calls) == 3


@responses.activate
def test_paths_are_built_with_profile_remote_and_branch_quoted() -> None:
    responses.post(f"{API}/workspaces/1/pipeline/prepare/start/prod.eu", status=200)
    responses.post(f"{API}/workspaces/1/git/pull/origin/release%2F1.2", status=200)
    client, _ = make_client()
    client.start_stage(1, "prepare", "prod.eu")
    client.git_pull(1, "origin", "release/1.2")
    assert len(responses.calls) == 2


# -- redirects --------------------------------------------------------------------


@responses.activate
def test_redirect_to_a_data_center_keeps_method_body_and_token() -> None:
    responses.put(
        f"{API}/domains/team/1/domain/a.example.com/workspace-connections",
        status=307,
        headers={"Location": "https://de-fra-1.codesphere.com/api/domains/x"},
    )
    responses.put("https://de-fra-1.codesphere.com/api/domains/x", json={"workspaces": {}})
    client, _ = make_client()
    client.set_domain_connections(1, "a.example.com", DomainMap.of({"/": [3]}))
    followed = responses.calls[1].request
    assert followed.method == "PUT"
    assert json.loads(followed.body or b"") == {"/": [3]}
    assert followed.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 308])
def test_post_stays_a_post_across_redirects(status: int) -> None:
    responses.post(f"{API}/workspaces", status=status, headers={"Location": "/api/v2/workspaces"})
    responses.post("https://codesphere.com/api/v2/workspaces", json={"id": 4})
    client, _ = make_client()
    assert client.create_workspace({"name": "n"}).id == 4
    assert responses.calls[1].request.method == "POST"


@responses.activate
def test_a_303_to_a_post_is_not_followed_the_post_was_carried_out() -> None:
    # 303 See Other: the server did what the POST asked and points at the result;
    # sending the POST again there could create a second workspace.
    responses.post(f"{API}/workspaces", status=303, headers={"Location": "/api/workspaces/4"})
    client, _ = make_client()
    with pytest.raises(TransportError, match="303") as caught:
        client.create_workspace({"name": "n"})
    assert caught.value.maybe_landed
    assert len(responses.calls) == 1


PROBLEM = {"status": 402, "title": "Payment Required", "traceId": "t-1"}


@responses.activate
@pytest.mark.parametrize(
    ("status", "kwargs", "via", "refused"),
    [
        (402, {"json": PROBLEM}, None, True),
        (422, {"json": {**PROBLEM, "status": 422}}, None, True),
        (408, {"json": {"status": 408, "title": "proxy"}}, None, False),
        (409, {"json": {"status": 409, "title": "Conflict"}}, None, False),
        (403, {"body": "<html>blocked by the firewall</html>"}, None, False),
        (402, {"json": PROBLEM}, 308, False),
    ],
    ids=["402", "422", "408-proxy", "409", "403-html", "402-after-redirect"],
)
def test_only_codesphere_turning_a_request_down_counts_as_refused(
    status: int, kwargs: dict[str, Any], via: int | None, refused: bool
) -> None:
    """An error that proves nothing was done: Codesphere's problem JSON, a status
    that means "not done", no redirect on the way. A create refused so needs no
    cleanup; anything else may have created the workspace."""
    target = f"{API}/workspaces"
    if via is not None:
        responses.post(target, status=via, headers={"Location": "/api/v2/workspaces"})
        target = "https://codesphere.com/api/v2/workspaces"
    responses.post(target, status=status, **kwargs)
    client, _ = make_client()
    with pytest.raises(ApiError) as caught:
        client.create_workspace({"name": "n"})
    assert caught.value.status_code == status
    assert caught.value.refused is refused


@responses.activate
@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/api/x",
        "https://codesphere.com.evil.io/api/x",
        "http://codesphere.com/api/x",
    ],
)
def test_redirect_elsewhere_is_refused_before_anything_is_sent(target: str) -> None:
    responses.get(f"{API}/workspaces/1", status=302, headers={"Location": target})
    client, _ = make_client()
    with pytest.raises(RedirectRefused) as caught:
        client.get_workspace(1)
    assert len(responses.calls) == 1  # the foreign host never got a request
    assert TOKEN not in str(caught.value)


@responses.activate
def test_loopback_redirect_to_another_port_is_followed_over_http() -> None:
    api = "http://127.0.0.1:5000/api"
    responses.get(
        f"{api}/workspaces/1",
        status=307,
        headers={"Location": "http://127.0.0.1:5001/api/workspaces/1"},
    )
    responses.get("http://127.0.0.1:5001/api/workspaces/1", json={"id": 1})
    client, _ = make_client(api)
    assert client.get_workspace(1).id == 1
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


CLOUD = "https://cloud.codesphere.com/api"  # the default api-url (issue 20)
OLD = "https://codesphere.com/api"  # the default before; it keeps working


@responses.activate
@pytest.mark.parametrize(
    ("api", "target"),
    [
        (CLOUD, "https://de-fra-1.codesphere.com/api/workspaces/1"),
        (CLOUD, "https://codesphere.com/api/workspaces/1"),
        (OLD, "https://cloud.codesphere.com/api/workspaces/1"),
        (OLD, "https://de-fra-1.codesphere.com/api/workspaces/1"),
    ],
    ids=["cloud->dc", "cloud->old", "old->cloud", "old->dc"],
)
def test_both_addresses_follow_redirects_between_data_centers_with_the_token(
    api: str, target: str
) -> None:
    responses.get(f"{api}/workspaces/1", status=308, headers={"Location": target})
    responses.get(target, json={"id": 1, "name": "w"})
    client, _ = make_client(api)
    assert client.get_workspace(1).id == 1
    assert [c.request.url for c in responses.calls] == [f"{api}/workspaces/1", target]
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_a_post_from_the_new_default_to_a_data_center_stays_a_post_with_its_body() -> None:
    target = "https://de-fra-1.codesphere.com/api/workspaces"
    responses.post(f"{CLOUD}/workspaces", status=307, headers={"Location": target})
    responses.post(target, json={"id": 4})
    client, _ = make_client(CLOUD)
    assert client.create_workspace({"name": "n"}).id == 4
    followed = responses.calls[1].request
    assert followed.method == "POST" and json.loads(followed.body or b"") == {"name": "n"}
    assert followed.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
@pytest.mark.parametrize(
    "target",
    [
        "https://cloud.codesphere.com.evil.io/api/x",
        "https://codesphere.co/api/x",
        "http://de-fra-1.codesphere.com/api/x",
        "https://evil.example.com/api/x",
    ],
)
def test_the_new_default_refuses_redirects_out_of_codesphere_com(target: str) -> None:
    responses.get(f"{CLOUD}/workspaces/1", status=302, headers={"Location": target})
    client, _ = make_client(CLOUD)
    with pytest.raises(RedirectRefused) as caught:
        client.get_workspace(1)
    assert len(responses.calls) == 1
    assert "codesphere.com" in str(caught.value) and TOKEN not in str(caught.value)


def test_the_default_api_url_is_the_cloud_and_scopes_codesphere_com() -> None:
    assert DEFAULT_API_URL == CLOUD
    assert token_scope("cloud.codesphere.com") == ("cloud.codesphere.com", "codesphere.com")
    assert token_scope("de-fra-1.codesphere.com") == ("de-fra-1.codesphere.com", "codesphere.com")


def test_token_scope_follows_the_public_suffix_list() -> None:
    assert token_scope("codesphere.com") == ("codesphere.com", "codesphere.com")
    assert token_scope("cloud.codesphere.com") == ("cloud.codesphere.com", "codesphere.com")
    assert token_scope("codesphere.co.uk") == ("codesphere.co.uk", "codesphere.co.uk")
    # A platform's shared domain (PSL private section): only the app itself.
    assert token_scope("x.azurewebsites.net") == ("x.azurewebsites.net", "x.azurewebsites.net")
    # IP addresses and single labels are never widened.
    assert token_scope("10.20.0.5") == ("10.20.0.5", "")
    assert token_scope("localhost") == ("localhost", "")


@responses.activate
@pytest.mark.parametrize(
    ("api", "target"),
    [
        ("https://10.20.0.5/api", "https://x.20.0.5/api/x"),
        ("https://10.20.0.5/api", "https://10.20.0.6/api/x"),
        ("https://x.azurewebsites.net/api", "https://y.azurewebsites.net/api/x"),
        ("https://api.codesphere.co.uk/api", "https://evil.co.uk/api/x"),
    ],
)
def test_redirect_out_of_the_tokens_scope_is_refused(api: str, target: str) -> None:
    responses.get(f"{api}/workspaces/1", status=307, headers={"Location": target})
    client, _ = make_client(api)
    with pytest.raises(RedirectRefused, match="the token is not sent there"):
        client.get_workspace(1)
    assert len(responses.calls) == 1


# -- answers that are not Codesphere's JSON -----------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        ("<html><body>Sign in</body></html>", "text/html", "HTML"),
        ("<!doctype html><p>proxy</p>", "", "HTML"),
        ("just text", "text/plain", "text/plain"),
        ("", "application/json", "an empty answer"),
        ("{not json", "application/json", "not JSON"),
    ],
)
def test_a_200_that_is_not_json_is_a_clear_error_never_an_empty_result(
    body: str, content_type: str, what: str
) -> None:
    responses.get(
        f"{API}/workspaces/team/7", body=body, content_type=content_type or None, status=200
    )
    client, _ = make_client()
    with pytest.raises(BadAnswer) as caught:
        client.list_team_workspaces(7)
    message = str(caught.value)
    assert what in message
    assert f"the API at {API} answered GET /workspaces/team/7" in message
    assert "check the api-url input (it usually ends in /api)" in message
    assert len(responses.calls) == 1  # a login page is not retried


@responses.activate
@pytest.mark.parametrize(
    ("path", "call", "body"),
    [
        ("/workspaces/team/7", lambda c: c.list_team_workspaces(7), {"items": []}),
        ("/workspaces/1", lambda c: c.get_workspace(1), [{"id": 1}]),
        ("/workspaces/1", lambda c: c.get_workspace(1), {"id": "1"}),
        ("/workspaces/1/status", lambda c: c.is_running(1), {"running": True}),
        ("/workspaces/1/git/head", lambda c: c.git_head(1), {"sha": "abc"}),
        ("/workspaces/1/pipeline/run", lambda c: c.stage_status(1, "run"), [{"state": "ok"}]),
        (
            "/workspaces/1/pipeline/run",
            lambda c: c.stage_status(1, "run"),
            [{"server": "web", "replica": "0", "state": 7, "steps": []}],
        ),
        ("/domains/team/7", lambda c: c.list_domains(7), [{"workspaces": {"/": "3"}}]),
    ],
)
def test_json_of_the_wrong_shape_is_a_clear_error(path: str, call: Any, body: Any) -> None:
    responses.get(f"{API}{path}", json=body)
    client, _ = make_client()
    with pytest.raises(BadAnswer, match="unexpected shape"):
        call(client)


@responses.activate
def test_calls_that_answer_nothing_accept_an_empty_body_but_not_a_login_page() -> None:
    responses.delete(f"{API}/workspaces/1", status=200)
    responses.delete(f"{API}/workspaces/2", body="<html>sign in</html>", content_type="text/html")
    client, _ = make_client()
    assert client.delete_workspace(1) is True
    with pytest.raises(BadAnswer, match="HTML"):
        client.delete_workspace(2)


@responses.activate
def test_stage_status_is_typed_with_optional_timestamps() -> None:
    responses.get(
        f"{API}/workspaces/1/pipeline/prepare",
        json=[
            {"server": "web", "replica": "web-58d657cdc5-m8rrp", "state": "waiting", "steps": []},
            {
                "server": "codesphere-ide",
                "replica": "0",
                "state": "running",
                "startedAt": "2026-11-27T10:00:00.000Z",
                "steps": [{"state": "success"}, {"state": "running"}],
            },
        ],
    )
    client, _ = make_client()
    web, ide = client.stage_status(1, "prepare")
    assert (web.key, web.state, web.started_at, web.steps) == (
        ("web", "web-58d657cdc5-m8rrp"),
        "waiting",
        None,
        (),
    )
    assert (ide.started_at, [s.state for s in ide.steps]) == (
        "2026-11-27T10:00:00.000Z",
        ["success", "running"],
    )


# -- retries: floors, unreachable hosts, budgets -------------------------------------


@responses.activate
def test_retry_after_zero_never_makes_it_faster_than_the_minimum_delay() -> None:
    url = f"{API}/workspaces/1"
    for _ in range(20):
        responses.get(url, status=429, headers={"Retry-After": "0"}, json=problem(429, "Slow"))
    responses.get(url, json={"id": 1})
    client, clock = make_client()
    assert client.get_workspace(1).id == 1
    assert len(clock.sleeps) == 20
    assert min(clock.sleeps) >= RetryPolicy().min_delay


@responses.activate
@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (refused, "connection refused"),
        (lambda: unresolved("codesphere.com"), "does not resolve"),
    ],
)
def test_an_unreachable_api_is_given_up_within_15_s_naming_the_cause(
    error: Any, cause: str
) -> None:
    url = f"{API}/workspaces/1"
    for _ in range(200):
        responses.get(url, body=error())
    client, clock, log = make_client_and_log()
    start = clock.now()
    with pytest.raises(TransportError) as caught:
        client.get_workspace(1)
    message = str(caught.value)
    assert clock.now() - start <= CONNECT_BUDGET
    assert cause in message and "Check the api-url input ('https://codesphere.com/api')" in message
    assert not caught.value.maybe_landed
    # A retry loop that lasts more than a few seconds says so in the log.
    assert "retrying for up to" in log.getvalue()


@responses.activate
def test_short_retry_loops_stay_quiet_in_the_log() -> None:
    url = f"{API}/workspaces/1"
    responses.get(url, status=503, json=problem(503, "Unavailable"))
    responses.get(url, json={"id": 1})
    client, _clock, log = make_client_and_log()
    client.get_workspace(1)
    assert "retrying" not in log.getvalue()


@responses.activate
def test_every_attempt_is_cut_to_the_cancel_budget() -> None:
    url = f"{API}/workspaces/1"
    responses.get(url, status=503, json=problem(503, "Unavailable"))
    responses.get(url, json={"id": 1})
    clock_start = 1000.0
    client, clock, _ = make_client_and_log(cap=clock_start + 1.5)
    client.get_workspace(1)
    sent = [call.request.req_kwargs["timeout"] for call in responses.calls]  # type: ignore[attr-defined]
    assert all(connect <= 1.5 and read <= 1.5 for connect, read in sent)
    assert clock.now() <= clock_start + 1.5


@responses.activate
def test_no_request_is_sent_once_the_budget_is_spent() -> None:
    responses.get(f"{API}/workspaces/1", json={"id": 1})
    client, _clock, _ = make_client_and_log(cap=999.0)  # the fake clock is at 1000
    with pytest.raises(TransportError, match="no time left") as unsent:
        client.get_workspace(1)
    assert len(responses.calls) == 0
    assert unsent.value.out_of_time  # the caller's time ran out: no failure of the API


@responses.activate
def test_a_read_the_deadline_cut_short_is_out_of_time_one_within_it_is_not() -> None:
    """A wait's last status read, cut by the wait's end, is the wait running out
    (waiting.py keeps the error before it); a read timeout with time left is a
    failure of the API."""
    client, clock = make_client(budget=3.0)  # retries end 3 s after the first attempt
    url = f"{API}/workspaces/1/status"

    def slow(_request: object) -> tuple[int, dict[str, str], str]:
        clock.time += 2.0  # each read times out after 2 s
        raise requests.ReadTimeout("slow")

    responses.add_callback(responses.GET, url, callback=slow)
    with pytest.raises(TransportError, match="no answer in time") as cut:
        client.is_running(1, deadline=clock.now() + 1.0)
    assert cut.value.out_of_time
    with pytest.raises(TransportError, match="no answer in time") as failed:
        client.is_running(1, deadline=clock.now() + 60.0)
    assert not failed.value.out_of_time


# -- logs ---------------------------------------------------------------------------


def sse(*events: tuple[str, Any], end: str = "\n") -> bytes:
    text = ""
    for name, data in events:
        text += f"event: {name}{end}data: {json.dumps(data, ensure_ascii=False)}{end}{end}"
    return text.encode()


@responses.activate
def test_log_stream_yields_entries_and_raises_problems() -> None:
    body = (
        'event: data\ndata: [{"timestamp":"t","kind":"I","data":"npm install"}]\n\n'
        ": keep-alive\n\n"
        'event: message\ndata: [{"timestamp":"t","kind":"E","data":"npm ERR! boom"}]\n\n'
    )
    responses.get(f"{API}/workspaces/1/logs/prepare/0", body=body, content_type="text/event-stream")
    responses.get(
        f"{API}/workspaces/1/logs/prepare/1",
        body=f"event: problem\ndata: {json.dumps(problem(400, 'Workspace is not running'))}\n\n",
        content_type="text/event-stream",
    )
    responses.get(
        f"{API}/workspaces/1/logs/prepare/2",
        body=sse(("problem", {"status": 404, "reason": "Step not found"})),
        content_type="text/event-stream",
    )
    client, clock = make_client()
    limit = clock.now() + 10

    def read(step: int) -> list[tuple[str, str]]:
        stream = client.open_log_stream(1, "prepare", step, idle_timeout=5, limit=limit)
        try:
            return [(e.kind, e.text) for e in stream.entries()]
        finally:
            stream.close()

    assert read(0) == [("I", "npm install"), ("E", "npm ERR! boom")]
    with pytest.raises(ApiError, match="Workspace is not running"):
        read(1)
    with pytest.raises(ApiError, match="Step not found"):
        read(2)


UTF8_LINE = "✅ café Привет: ошибка сборки"


@responses.activate
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize(
    "content_type", ["text/event-stream", "text/event-stream; charset=latin-1"]
)
def test_log_stream_is_utf8_whatever_the_line_ends_and_content_type(
    end: str, content_type: str
) -> None:
    # ✅ is E2 9C 85 in UTF-8: read as ISO-8859-1, its 0x85 is a line break (NEL).
    body = sse(
        ("data", [{"kind": "I", "data": "line one"}]),
        ("data", [{"kind": "E", "data": UTF8_LINE}, {"kind": "stderr", "data": "тоже"}]),
        end=end,
    )
    responses.get(f"{API}/workspaces/1/logs/test/0", body=body, content_type=content_type)
    client, clock = make_client()
    stream = client.open_log_stream(1, "test", 0, idle_timeout=5, limit=clock.now() + 10)
    entries = [(e.kind, e.text) for e in stream.entries()]
    stream.close()
    assert entries == [("I", "line one"), ("E", UTF8_LINE), ("E", "тоже")]


@responses.activate
def test_a_log_answer_that_is_not_an_event_stream_is_a_clear_error() -> None:
    responses.get(
        f"{API}/workspaces/1/logs/test/0", body="<html>login</html>", content_type="text/html"
    )
    client, clock = make_client()
    with pytest.raises(BadAnswer) as caught:
        client.open_log_stream(1, "test", 0, idle_timeout=5, limit=clock.now() + 10)
    # Review 23: the API's other calls were answered before any log is read, so
    # the api-url is right: what stands in front of the log routes is named.
    assert str(caught.value) == (
        "the log route answered GET /workspaces/1/logs/test/0 with HTML, not an event "
        "stream: the API's other calls were answered, so something in front of its log "
        "routes (a proxy or a sign-in page) answers them instead"
    )


@responses.activate
def test_a_log_routes_404_page_names_the_log_route_not_the_api_url() -> None:
    page = "<!DOCTYPE html><html><title>404</title></html>"
    url = f"{API}/workspaces/1/logs/test/0"
    responses.get(url, status=404, body=page, content_type="text/html")
    client, clock = make_client()
    with pytest.raises(BadAnswer) as caught:
        client.open_log_stream(1, "test", 0, idle_timeout=5, limit=clock.now() + 10)
    message = str(caught.value)
    assert message.startswith(
        "the log route answered GET /workspaces/1/logs/test/0 with 404 and HTML, not an "
        "event stream"
    ), message
    assert "api-url" not in message


@responses.activate
def test_a_tls_error_is_not_retried() -> None:
    responses.get(
        f"{API}/workspaces/1", body=requests.exceptions.SSLError("certificate verify failed")
    )
    client, _ = make_client()
    with pytest.raises(TransportError, match="TLS error"):
        client.get_workspace(1)
    assert len(responses.calls) == 1


@responses.activate
def test_a_domain_without_its_map_is_a_wrong_answer_never_an_empty_map() -> None:
    responses.get(f"{API}/domains/team/7/domain/shop.example.com", json={})
    client, _ = make_client()
    with pytest.raises(BadAnswer, match="workspaces"):
        client.get_domain(7, "shop.example.com")


@responses.activate
def test_log_streams_ask_for_bytes_as_they_come() -> None:
    responses.get(f"{API}/workspaces/1/logs/test/0", body=b"", content_type="text/event-stream")
    client, clock = make_client()
    stream = client.open_log_stream(1, "test", 0, idle_timeout=5, limit=clock.now() + 10)
    stream.close()
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"


@responses.activate
def test_retry_after_zero_backs_off() -> None:
    url = f"{API}/workspaces/1"
    for _ in range(6):
        responses.get(url, status=429, headers={"Retry-After": "0"}, json=problem(429, "Slow"))
    responses.get(url, json={"id": 1})
    client, clock = make_client()
    client.get_workspace(1)
    ceilings = [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert all(0.1 <= d <= c for d, c in zip(clock.sleeps, ceilings, strict=True))


@responses.activate
def test_a_404_page_that_is_not_the_apis_says_the_api_url_looks_wrong() -> None:
    """Issue 17: https://codesphere.com (no /api) answers a website's 404 page;
    that is no "workspace not found", and deleting is not "already gone"."""
    site = "https://cs.example.org"
    page = "<!DOCTYPE html><html><title>404: This page could not be found</title></html>"
    responses.get(f"{site}/workspaces/1", status=404, body=page, content_type="text/html")
    responses.delete(f"{site}/workspaces/1", status=404, body=page, content_type="text/html")
    client, _ = make_client(site)
    calls: list[Callable[[], Any]] = [
        lambda: client.get_workspace(1),
        lambda: client.delete_workspace(1),
    ]
    for call in calls:
        with pytest.raises(BadAnswer) as caught:
            call()
        message = str(caught.value)
        assert "404 and an HTML page" in message
        assert f"the api-url input ('{site}') looks wrong: it should end in /api" in message
        assert "https://cloud.codesphere.com/api" in message


@responses.activate
def test_the_apis_own_404_stays_not_found() -> None:
    responses.get(f"{API}/workspaces/1", status=404, json=problem(404, "Workspace is not found"))
    responses.delete(f"{API}/workspaces/2", status=404)  # no body: still the API's 404
    client, _ = make_client()
    with pytest.raises(ApiError, match="404"):
        client.get_workspace(1)
    assert client.delete_workspace(2) is False


@responses.activate
@pytest.mark.parametrize(
    ("server", "replica", "path"),
    [
        ("", "", "/logs/run/2"),
        ("web", "", "/logs/run/2/server/web"),
        (
            "web",
            "workspace-1-web-0a1b2c3d4e-x9y8z",
            "/logs/run/2/replica/workspace-1-web-0a1b2c3d4e-x9y8z",
        ),
        ("a b", "", "/logs/run/2/server/a%20b"),
    ],
    ids=["plain", "server", "replica", "quoted"],
)
def test_run_logs_by_server_or_replica(server: str, replica: str, path: str) -> None:
    """The spec's routes for Multi Server Deployments: a replica's log by its id
    from the status (as the official CLI reads it), else the server's."""
    body = 'event: data\ndata: [{"timestamp": "t", "kind": "I", "data": "x"}]\n\n'
    responses.get(f"{API}/workspaces/1{path}", body=body, content_type="text/event-stream")
    client, clock = make_client()
    stream = client.open_log_stream(
        1, "run", 2, idle_timeout=5, limit=clock.now() + 10, server=server, replica=replica
    )
    assert [e.text for e in stream.entries(stop=lambda: False)] == ["x"]
    stream.close()


def test_a_domain_map_compares_a_paths_ids_in_any_order() -> None:
    """No document says the API lists a path's workspaces in the order a PUT
    gave (the emulator's map_order): ``lists`` and ``same_as`` ignore it."""
    written = DomainMap.of({"/": [1, 2, 3], "/api": [4]})
    listed = DomainMap.of({"/api": [4], "/": [3, 1, 2]})
    assert listed.lists("/", [1, 2, 3]) and not listed.lists("/", [1, 2])
    assert not listed.lists("/", [1, 2, 3, 3]) and DomainMap.of({}).lists("/", [])
    assert listed.same_as(written) and written.same_as(listed)
    assert not listed.same_as(written.with_path("/docs", [5]))
    assert not listed.same_as(written.with_path("/api", [4, 5]))
    assert not written.without("/api").same_as(listed)
