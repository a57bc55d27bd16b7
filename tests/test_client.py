"""The API client against canned answers (responses): retries, redirects, errors."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from codesphere_action.client import Client, RetryPolicy, token_allowed_host
from codesphere_action.errors import ApiError, RedirectRefused, TransportError

from .fakes import FakeClock, capture_reporter

API = "https://codesphere.com/api"
TOKEN = "tok-client-secret-99"


def make_client(api: str = API, budget: float = 60.0) -> tuple[Client, FakeClock]:
    clock = FakeClock()
    reporter, _ = capture_reporter()
    reporter.mask(TOKEN)
    client = Client(api, TOKEN, reporter=reporter, clock=clock, retry=RetryPolicy(budget=budget))
    return client, clock


def problem(status: int, title: str, detail: str = "") -> dict[str, object]:
    return {"status": status, "title": title, "detail": detail, "traceId": "trace-1"}


def refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
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
    assert client.get_workspace(1) == {"id": 1}
    assert len(responses.calls) == 2
    assert 0 < clock.sleeps[0] <= 0.25


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
    assert client.get_workspace(1) == {"id": 1}
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
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500])
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
    client.set_domain_connections(1, "a.example.com", {"/": [3]})
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
    assert client.create_workspace({"name": "n"}) == {"id": 4}
    assert responses.calls[1].request.method == "POST"


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
    assert client.get_workspace(1) == {"id": 1}
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_token_scope_never_widens_to_a_public_suffix() -> None:
    assert token_allowed_host("codesphere.com") == ("codesphere.com", "codesphere.com")
    assert token_allowed_host("cloud.codesphere.com") == ("cloud.codesphere.com", "codesphere.com")
    assert token_allowed_host("codesphere.co.uk") == ("codesphere.co.uk", "codesphere.co.uk")


# -- logs ---------------------------------------------------------------------------


@responses.activate
def test_log_stream_yields_entries_and_raises_problems() -> None:
    body = (
        'event: data\ndata: [{"timestamp":"t","kind":"I","data":"npm install"}]\n\n'
        ": keep-alive\n\n"
        'event: data\ndata: [{"timestamp":"t","kind":"E","data":"npm ERR! boom"}]\n\n'
    )
    responses.get(f"{API}/workspaces/1/logs/prepare/0", body=body, content_type="text/event-stream")
    responses.get(
        f"{API}/workspaces/1/logs/prepare/1",
        body=f"event: problem\ndata: {json.dumps(problem(400, 'Workspace is not running'))}\n\n",
        content_type="text/event-stream",
    )
    client, _ = make_client()
    entries = list(client.stream_logs(1, "prepare", 0))
    assert [(e["kind"], e["data"]) for e in entries] == [
        ("I", "npm install"),
        ("E", "npm ERR! boom"),
    ]
    with pytest.raises(ApiError, match="Workspace is not running"):
        list(client.stream_logs(1, "prepare", 1))
