"""Tests of the local Codesphere API emulator itself (tests/emulator)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.emulator import Emulator, default_branch_head, load_spec

TOKEN = "tok-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST: dict[str, Any] = {
    "workspace_start_seconds": 0.15,
    "stage_seconds": {"prepare": 0.2, "test": 0.1, "run": 0.15},
    "start_latency": 0.1,
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, **FAST) as emulator:
        yield emulator
        assert emulator.response_violations == []
        assert emulator.internal_errors == []


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


def wait_until(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def check_shape(method: str, path: str, response: requests.Response) -> Any:
    """The answer validates against the spec's schema for its status."""
    body = response.json() if response.content else None
    assert load_spec().check_response(method, path, response.status_code, body) == []
    return body


def sse_events(response: requests.Response) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    kind = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((kind or "", json.loads(line[len("data: ") :])))
    return events


# ---------------------------------------------------------------------------- basics ------
def test_starts_fast_and_closes_promptly() -> None:
    began = time.perf_counter()
    emulator = Emulator(token=TOKEN)
    started = time.perf_counter() - began
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.url.endswith("/api")
    began = time.perf_counter()
    emulator.close()
    emulator.close()  # idempotent
    assert started < 0.1
    assert time.perf_counter() - began < 0.1


def test_auth_missing_or_wrong_token_is_401_problem(emu: Emulator) -> None:
    ws = emu.add_workspace()
    with requests.Session() as session:
        missing = session.get(f"{emu.url}/workspaces/{ws}")
        wrong = session.get(f"{emu.url}/workspaces/{ws}", headers={"Authorization": "Bearer x"})
        basic = session.get(f"{emu.url}/workspaces/{ws}", headers={"Authorization": TOKEN})
    traces = set()
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == 401
        assert body["title"] == "Authorization information is missing or invalid"
        traces.add(body["traceId"])
        check_shape("GET", f"/workspaces/{ws}", response)
    assert len(traces) == 3
    assert emu.spec_violations == []
    assert [r.status for r in emu.requests] == [401, 401, 401]


def test_request_recording(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    http.put(f"{emu.url}/workspaces/{ws}/env-vars?x=1", json=[{"name": "A", "value": "1"}])
    (rec,) = emu.requests
    assert rec.method == "PUT"
    assert rec.path == f"/workspaces/{ws}/env-vars"
    assert rec.raw_path == f"/api/workspaces/{ws}/env-vars?x=1"
    assert rec.query == {"x": "1"}
    assert rec.headers["authorization"] == f"Bearer {TOKEN}"
    assert rec.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "AUTHORIZATION" in rec.headers
    assert rec.body == [{"name": "A", "value": "1"}]
    assert rec.status == 200
    assert rec.route == "/workspaces/{workspaceId}/env-vars"
    assert rec.operation_id == "workspaces-setEnvVar"
    assert rec.port == emu.port
    assert rec.listener == "primary"
    assert rec.fault is None
    assert emu.find_requests("PUT", r"/workspaces/\d+/env-vars") == [rec]
    assert emu.find_requests(route="/workspaces/{workspaceId}") == []


# ---------------------------------------------------------------------------- spec --------
def test_bad_body_is_rejected_and_recorded(emu: Emulator, http: requests.Session) -> None:
    response = http.post(f"{emu.url}/workspaces", json={"teamId": 1, "name": "x"})
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Path or request body variable does not match schema"
    assert "'planId' is a required property" in body["detail"]
    check_shape("POST", "/workspaces", response)
    assert len(emu.spec_violations) == 1
    assert "'planId' is a required property" in emu.spec_violations[0]
    assert emu.workspaces() == []

    bad_env = [{"name": "1BAD", "value": "v"}]
    ws = emu.add_workspace()
    assert http.put(f"{emu.url}/workspaces/{ws}/env-vars", json=bad_env).status_code == 400
    assert http.patch(f"{emu.url}/workspaces/{ws}", json={"replicas": 0}).status_code == 400
    assert http.patch(f"{emu.url}/workspaces/{ws}", data=b"{nope").status_code == 400
    assert (
        http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start", json={"x": 1}).status_code == 400
    )
    assert len(emu.spec_violations) == 5
    # a nullable field accepts null
    response = http.patch(f"{emu.url}/workspaces/{ws}", json={"vpnConfig": None})
    assert response.status_code == 200
    assert len(emu.spec_violations) == 5


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/workspaces/abc"),
        ("GET", "/workspaces/-1"),
        ("POST", "/workspaces/{ws}/pipeline/deploy/start"),
        ("POST", "/workspaces/{ws}/pipeline/prepare/start/bad%20profile"),
        ("GET", "/workspaces/{ws}/logs/prepare/x"),
    ],
)
def test_bad_path_param_is_400_and_a_violation(
    emu: Emulator, http: requests.Session, method: str, path: str
) -> None:
    ws = emu.add_workspace()
    response = http.request(method, emu.url + path.format(ws=ws))
    if "/logs/" in path:  # the log stream reports problems as SSE events
        assert response.status_code == 200
        ((kind, problem),) = sse_events(response)
        assert (kind, problem["status"]) == ("problem", 400)
    else:
        assert response.status_code == 400
        assert response.json()["title"] == "Path or request body variable does not match schema"
    assert len(emu.spec_violations) == 1


def test_unknown_route_and_method(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    assert http.get(f"{emu.url}/workspaces/{ws}/nope").status_code == 404
    assert http.get(f"{emu.url}/workspaces/{ws}/").status_code == 404
    assert http.get(emu.url.removesuffix("/api") + f"/workspaces/{ws}").status_code == 404
    assert http.put(f"{emu.url}/workspaces/{ws}/status", json={}).status_code == 405
    # a branch with a slash must be percent-encoded: unencoded it is another route
    assert http.post(f"{emu.url}/workspaces/{ws}/git/pull/origin/feat/x").status_code == 404
    assert len(emu.spec_violations) == 5
    assert http.post(f"{emu.url}/workspaces/{ws}/git/pull/origin/feat%2Fx").status_code == 200
    assert emu.workspace(ws).branch == "feat/x"
    assert len(emu.spec_violations) == 5


def test_not_emulated_operation_is_501(emu: Emulator, http: requests.Session) -> None:
    assert http.get(f"{emu.url}/teams").status_code == 501
    assert emu.unemulated
    with pytest.raises(AssertionError, match="teams"):
        emu.assert_clean()


def test_responses_match_the_spec(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(team_id=3, env={"A": "1"})
    emu.add_domain(3, "app.example.com", {"/": [ws]})
    create = {"teamId": 3, "name": "new", "planId": 8, "isPrivateRepo": True, "replicas": 1}
    created = check_shape("POST", "/workspaces", http.post(f"{emu.url}/workspaces", json=create))
    assert created["name"] == "new"
    assert created["devDomain"]
    details = check_shape("GET", f"/workspaces/{ws}", http.get(f"{emu.url}/workspaces/{ws}"))
    assert details["devDomain"] == emu.workspace(ws).dev_domain
    assert details["id"] == ws
    assert details["teamId"] == 3
    listed = check_shape("GET", "/workspaces/team/3", http.get(f"{emu.url}/workspaces/team/3"))
    assert [w["id"] for w in listed] == [ws, created["id"]]
    for path in (
        f"/workspaces/{ws}/status",
        f"/workspaces/{ws}/env-vars",
        f"/workspaces/{ws}/git/head",
        f"/workspaces/{ws}/pipeline/prepare",
        "/domains/team/3/domain/app.example.com",
        "/domains/team/3",
    ):
        response = http.get(emu.url + path)
        assert response.status_code == 200, path
        check_shape("GET", path, response)
    for stage in ("prepare", "run"):
        assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/{stage}/start").status_code == 200
    time.sleep(0.2)
    for stage in ("prepare", "run"):
        path = f"/workspaces/{ws}/pipeline/{stage}"
        check_shape("GET", path, http.get(emu.url + path))
    path = "/domains/team/3/domain/app.example.com/workspace-connections"
    check_shape("PUT", path, http.put(emu.url + path, json={"/": [created["id"]]}))
    for path in (f"/workspaces/{ws}/git/pull", f"/workspaces/{ws}/pipeline/run/stop"):
        check_shape("POST", path, http.post(emu.url + path))
    check_shape("DELETE", f"/workspaces/{ws}", http.delete(emu.url + f"/workspaces/{ws}"))
    assert emu.spec_violations == []


# ---------------------------------------------------------------------------- workspaces --
def test_create_starts_later_and_duplicates_are_allowed(
    emu: Emulator, http: requests.Session
) -> None:
    body = {
        "teamId": 5, "name": "rel-1", "planId": 8, "isPrivateRepo": True, "replicas": 2,
        "gitUrl": "https://github.com/o/r.git", "initialBranch": "release",
        "env": [{"name": "MODE", "value": "prod"}], "cloneDepth": 1,
    }  # fmt: skip
    first = http.post(f"{emu.url}/workspaces", json=body).json()
    second = http.post(f"{emu.url}/workspaces", json=body).json()
    assert first["id"] != second["id"]
    assert [w.id for w in emu.workspaces(5, name="rel-1")] == [first["id"], second["id"]]
    ws = emu.workspace(first["id"])
    assert (ws.replicas, ws.branch, ws.env, ws.created_via) == (
        2,
        "release",
        {"MODE": "prod"},
        "api",
    )
    assert ws.git_head == default_branch_head("release")
    assert ws.extra == {"cloneDepth": 1}
    assert http.get(f"{emu.url}/workspaces/{ws.id}/status").json() == {"isRunning": False}
    started = http.post(f"{emu.url}/workspaces/{ws.id}/pipeline/prepare/start")
    assert started.status_code == 400
    assert started.json()["title"] == "Workspace is not running"
    wait_until(lambda: http.get(f"{emu.url}/workspaces/{ws.id}/status").json()["isRunning"])
    assert ws.running
    (created,) = emu.events_of("workspace_created", workspace_id=ws.id)
    (up,) = emu.events_of("workspace_started", workspace_id=ws.id)
    assert up.time - created.time == pytest.approx(0.15)


def test_delete_then_404(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    assert http.delete(f"{emu.url}/workspaces/{ws}").status_code == 200
    assert emu.workspace(ws).deleted
    for method, path in (("GET", ""), ("GET", "/status"), ("DELETE", ""), ("GET", "/git/head")):
        response = http.request(method, f"{emu.url}/workspaces/{ws}{path}")
        assert response.status_code == 404
        assert response.json()["title"] == "Workspace is not found"
    assert http.get(f"{emu.url}/workspaces/team/1").json() == []
    assert [e.kind for e in emu.events][-1] == "workspace_deleted"


def test_wake_via_patch(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(running=False, replicas=1)
    assert http.get(f"{emu.url}/workspaces/{ws}/status").json() == {"isRunning": False}
    assert http.post(f"{emu.url}/workspaces/{ws}/git/pull").status_code == 400
    assert http.patch(f"{emu.url}/workspaces/{ws}", json={"name": "renamed"}).status_code == 200
    assert not emu.workspace(ws).starting  # only replicas wakes it
    patched = time.monotonic()
    assert http.patch(f"{emu.url}/workspaces/{ws}", json={"replicas": 1}).status_code == 200
    assert emu.workspace(ws).starting
    assert http.get(f"{emu.url}/workspaces/{ws}/status").json() == {"isRunning": False}
    wait_until(lambda: emu.workspace(ws).running)
    assert time.monotonic() - patched >= 0.15
    assert emu.workspace(ws).name == "renamed"
    kinds = [e.kind for e in emu.events if e.details.get("workspace_id") == ws]
    assert kinds[-2:] == ["workspace_waking", "workspace_started"]


def test_env_vars_and_git(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(env={"A": "1"})
    url = f"{emu.url}/workspaces/{ws}"
    http.put(f"{url}/env-vars", json=[{"name": "B", "value": "2"}, {"name": "A", "value": "3"}])
    assert http.get(f"{url}/env-vars").json() == [
        {"name": "A", "value": "3"},
        {"name": "B", "value": "2"},
    ]
    http.delete(f"{url}/env-vars", json=["A"])
    assert emu.workspace(ws).env == {"B": "2"}

    assert http.get(f"{url}/git/head").json() == {"head": default_branch_head("main")}
    emu.set_branch_head("main", "a" * 40)
    assert http.post(f"{url}/git/pull").status_code == 200
    assert http.get(f"{url}/git/head").json() == {"head": "a" * 40}
    assert http.post(f"{url}/git/pull/origin/dev").status_code == 200
    assert (emu.workspace(ws).branch, emu.workspace(ws).git_head) == (
        "dev",
        default_branch_head("dev"),
    )
    emu.set_branch_head("gone", None)
    missing = http.post(f"{url}/git/pull/origin/gone")
    assert missing.status_code == 400
    assert missing.json()["title"] == "git error"
    assert http.post(f"{url}/git/pull/upstream").status_code == 400
    pulls = emu.events_of("git_pulled", workspace_id=ws)
    assert [e.details["branch"] for e in pulls] == ["main", "dev"]


# ---------------------------------------------------------------------------- stages ------
def ide(status: list[dict[str, Any]]) -> dict[str, Any]:
    (entry,) = [e for e in status if e["server"] == "codesphere-ide"]
    return entry


def test_stage_lifecycle_with_stale_status(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(servers=["web", "api"], replicas=2)
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare"
    never = http.get(url).json()
    assert [(e["server"], e["replica"]) for e in never] == [
        ("codesphere-ide", "0"), ("web", "0"), ("web", "1"), ("api", "0"), ("api", "1"),
    ]  # fmt: skip
    assert all(e["state"] == "waiting" and "startedAt" not in e for e in never)

    http.post(f"{url}/start")
    # inside start_latency the status is still the previous one: here "never ran"
    assert http.get(url).json() == never
    running = wait_until(lambda: ide(http.get(url).json())["state"] == "running" and http.get(url))
    first = ide(running.json())
    assert [s["state"] for s in first["steps"]] == ["running", "waiting"]
    done = wait_until(lambda: (e := ide(http.get(url).json()))["state"] == "success" and e)
    assert [s["state"] for s in done["steps"]] == ["success", "success"]
    assert done["startedAt"] == first["startedAt"]
    customers = [e for e in http.get(url).json() if e["server"] != "codesphere-ide"]
    assert all(e["state"] == "waiting" for e in customers)

    # a second start: the old success with the old startedAt shows for start_latency
    http.post(f"{url}/start")
    assert ide(http.get(url).json()) == done
    fresh = wait_until(lambda: (e := ide(http.get(url).json()))["state"] == "running" and e)
    assert fresh["startedAt"] > done["startedAt"]

    run = emu.stage_run(ws, "prepare")
    assert run is not None
    assert run.number == 2
    assert run.started_at == pytest.approx(run.requested_at + 0.1)
    wait_until(lambda: run.final_state == "success")
    assert run.started_at is not None
    assert run.ended_at == pytest.approx(run.started_at + 0.2)
    finished = emu.events_of("stage_finished", workspace_id=ws, stage="prepare")
    assert [e.details["state"] for e in finished] == ["success", "success"]
    assert finished[-1].time == run.ended_at


def test_stage_failure_at_step(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(
        ws, "test", steps=3, seconds=0.15, fail_step=1,
        logs={1: ["npm run build", ("E", "boom")]}, error_lines="npm ERR! missing script: build",
    )  # fmt: skip
    url = f"{emu.url}/workspaces/{ws}/pipeline/test"
    http.post(f"{url}/start")
    entry = wait_until(lambda: (e := ide(http.get(url).json()))["state"] == "failure" and e)
    assert [s["state"] for s in entry["steps"]] == ["success", "failure", "waiting"]
    assert entry["finishedAt"] == entry["steps"][1]["finishedAt"]
    run = emu.stage_run(ws, "test")
    assert run is not None
    assert run.final_state == "failure"
    assert run.ended_at == pytest.approx(run.start_at + 0.1)
    with http.get(f"{emu.url}/workspaces/{ws}/logs/test/1", stream=True) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = sse_events(response)
    lines = [(line["kind"], line["data"]) for _, chunk in events for line in chunk]
    assert lines == [("I", "npm run build"), ("E", "boom"), ("E", "npm ERR! missing script: build")]
    with http.get(f"{emu.url}/workspaces/{ws}/logs/test/2", stream=True) as response:
        assert sse_events(response) == []  # never ran: the stream ends empty
    # the next start uses the same configuration until it is changed
    emu.configure_stage(ws, "test", fail_step=None)
    http.post(f"{url}/start")
    wait_until(lambda: ide(http.get(url).json())["state"] == "success")


def test_run_stage_comes_up_and_stop_aborts(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(replicas=2)
    url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{url}/start")
    started = wait_until(
        lambda: (s := http.get(url).json()) and "startedAt" in s[1] and s
    )  # after the latency, before it is up
    assert [e["state"] for e in started] == ["waiting", "waiting", "waiting"]

    def up() -> Any:
        status = http.get(url).json()
        return all(e["state"] == "running" for e in status[1:]) and status

    status = wait_until(up)
    assert status[0]["state"] == "waiting"  # the IDE server does not take part in run
    assert [s["state"] for s in status[1]["steps"]] == ["success", "running"]
    time.sleep(0.2)
    assert all(e["state"] == "running" for e in http.get(url).json()[1:])  # stays up
    run = emu.stage_run(ws, "run")
    assert run is not None
    assert run.up_at == pytest.approx(run.start_at + 0.15)
    assert run.ended_at is None

    assert http.post(f"{url}/stop").status_code == 200
    stopped = http.get(url).json()
    assert [e["state"] for e in stopped[1:]] == ["aborted", "aborted"]
    assert [s["state"] for s in stopped[1]["steps"]] == ["success", "aborted"]
    assert run.final_state == "aborted"
    # the next start shows the aborted run until it really starts
    http.post(f"{url}/start")
    assert http.get(url).json() == stopped
    kinds = [e.kind for e in emu.events if e.details.get("stage") == "run"]
    assert kinds == [
        "stage_start_requested", "stage_started", "stage_up", "stage_stop_requested",
        "stage_finished", "stage_start_requested",
    ]  # fmt: skip


def test_restart_replaces_a_running_stage(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=5)
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare"
    http.post(f"{url}/start")
    wait_until(lambda: ide(http.get(url).json())["state"] == "running")
    old = ide(http.get(url).json())
    http.post(f"{url}/start")
    assert ide(http.get(url).json())["startedAt"] == old["startedAt"]
    assert ide(http.get(url).json())["state"] == "running"  # frozen as it was
    wait_until(lambda: ide(http.get(url).json())["startedAt"] != old["startedAt"])
    first = emu.stage_runs(ws, "prepare")[0]
    assert (first.final_state, first.ended_at) == ("aborted", first.superseded_at)


def test_profiles(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(profiles=["prod"])
    bad = http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start/staging")
    assert bad.status_code == 400
    assert "ci.staging.yml" in bad.json()["detail"]
    assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start/prod").status_code == 200
    run = emu.stage_run(ws, "prepare")
    assert run is not None
    assert run.profile == "prod"
    emu.set_profiles(ws, None)
    assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/test/start/any.thing").status_code == 200


def test_defaults_for_new_workspaces(emu: Emulator, http: requests.Session) -> None:
    emu.defaults_for_new_workspaces(
        servers=["api", "worker"],
        stages={"prepare": {"fail_step": 0, "steps": 1}},
        start_seconds=0.05,
        dev_domain_template="{id}.dev.test",
    )
    body = {"teamId": 1, "name": "n", "planId": 8, "isPrivateRepo": True, "replicas": 1}
    created = http.post(f"{emu.url}/workspaces", json=body).json()
    ws = emu.workspace(created["id"])
    assert created["devDomain"] == f"{ws.id}.dev.test"
    assert ws.servers == ["api", "worker"]
    assert ws.stages["prepare"].fail_step == 0
    wait_until(lambda: ws.running, timeout=1)
    http.post(f"{emu.url}/workspaces/{ws.id}/pipeline/prepare/start")
    wait_until(lambda: emu.stage_status(ws.id, "prepare")[0]["state"] == "failure")


# ---------------------------------------------------------------------------- logs --------
def test_log_stream_waits_follows_and_ends_with_the_step(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=0.3, logs={1: ["a", "b", "c"]})
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start")
    opened = time.monotonic()
    with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/1", stream=True) as response:
        events = sse_events(response)
    closed = time.monotonic()
    run = emu.stage_run(ws, "prepare")
    assert run is not None
    assert run.ended_at is not None
    assert closed >= run.ended_at  # ends when the step ends...
    assert closed - run.ended_at < 0.1  # ...and promptly
    assert closed - opened >= 0.3
    assert len(events) >= 2  # followed live, several chunks
    lines = [line for kind, chunk in events for line in chunk if kind == "data"]
    assert [line["data"] for line in lines] == ["a", "b", "c"]
    assert all(line["timestamp"].endswith("Z") for line in lines)
    # replay after the fact: all at once
    with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
        (event,) = sse_events(response)
    assert event[0] == "data"
    assert len(event[1]) == 2


def test_log_stream_problems(emu: Emulator, http: requests.Session) -> None:
    asleep = emu.add_workspace(running=False)
    with http.get(f"{emu.url}/workspaces/{asleep}/logs/run/0", stream=True) as response:
        assert response.status_code == 200
        ((kind, problem),) = sse_events(response)
    assert kind == "problem"
    assert (problem["status"], problem["title"]) == (400, "Workspace is not running")
    with requests.get(f"{emu.url}/workspaces/{asleep}/logs/run/0", stream=True) as response:
        ((kind, problem),) = sse_events(response)
    assert (kind, problem["status"]) == ("problem", 401)
    ws = emu.add_workspace()
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/test/start")
    with http.get(f"{emu.url}/workspaces/{ws}/logs/test/7", stream=True) as response:
        ((kind, problem),) = sse_events(response)
    assert (kind, problem["status"]) == ("problem", 400)


def test_close_ends_an_endless_run_log_stream() -> None:
    emulator = Emulator(token=TOKEN, **FAST)
    ws = emulator.add_workspace()
    with requests.Session() as http:
        http.headers.update(AUTH)
        http.post(f"{emulator.url}/workspaces/{ws}/pipeline/run/start")
        with http.get(f"{emulator.url}/workspaces/{ws}/logs/run/1", stream=True) as response:
            lines = response.iter_lines()
            assert next(lines) == b"event: data"
            began = time.monotonic()
            emulator.close()
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                list(lines)
            assert time.monotonic() - began < 0.5


# ---------------------------------------------------------------------------- faults ------
def test_fault_status_counts_and_expires(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    rule = emu.add_fault("status", method="GET", path=r"/status$", status=502, times=2)
    codes = [http.get(f"{emu.url}/workspaces/{ws}/status").status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert (rule.hits, rule.exhausted, emu.faults_injected) == (2, True, 2)
    assert [r.fault for r in emu.requests] == ["status", "status", None]
    problem = http.get(f"{emu.url}/workspaces/{ws}").json()
    assert "status" not in problem or problem.get("id") == ws
    html = emu.add_fault("status", status=504, body="<html>gateway</html>", times=None)
    response = http.get(f"{emu.url}/workspaces/{ws}")
    assert (response.status_code, response.text) == (504, "<html>gateway</html>")
    html.remove()
    assert http.get(f"{emu.url}/workspaces/{ws}").status_code == 200


def test_fault_429_has_retry_after(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.add_fault("429", path=r"/pipeline/", retry_after=2)
    response = http.get(f"{emu.url}/workspaces/{ws}/pipeline/run")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["status"] == 429
    assert http.get(f"{emu.url}/workspaces/{ws}/pipeline/run").status_code == 200


def test_fault_drop_before_is_a_connection_error_and_not_processed(
    emu: Emulator, http: requests.Session
) -> None:
    emu.add_fault("drop_before", method="POST", path=r"^/workspaces$")
    body = {"teamId": 1, "name": "x", "planId": 8, "isPrivateRepo": True, "replicas": 1}
    with pytest.raises(requests.ConnectionError):
        http.post(f"{emu.url}/workspaces", json=body, timeout=5)
    assert emu.workspaces() == []
    (rec,) = emu.requests
    assert (rec.status, rec.fault) == (None, "drop_before")
    assert http.post(f"{emu.url}/workspaces", json=body).status_code == 200


def test_fault_drop_after_lands_the_request(emu: Emulator, http: requests.Session) -> None:
    http.get(f"{emu.url}/workspaces/team/1")  # a pooled keep-alive connection
    emu.add_fault("drop_after", method="POST", path=r"^/workspaces$")
    body = {"teamId": 1, "name": "landed", "planId": 8, "isPrivateRepo": True, "replicas": 1}
    with pytest.raises(requests.ConnectionError):
        http.post(f"{emu.url}/workspaces", json=body, timeout=5)
    assert [w.name for w in emu.workspaces(1)] == ["landed"]
    assert emu.requests[-1].status is None
    assert [w["name"] for w in http.get(f"{emu.url}/workspaces/team/1").json()] == ["landed"]


def test_fault_delay(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.add_fault("delay", path=r"/status$", seconds=0.3)
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{emu.url}/workspaces/{ws}/status", timeout=0.1)
    began = time.monotonic()
    assert http.get(f"{emu.url}/workspaces/{ws}/status", timeout=2).status_code == 200
    assert time.monotonic() - began < 0.2  # times=1: only the first one was slow


def test_fault_probability_is_seeded() -> None:
    def pattern(seed: int) -> list[int]:
        with Emulator(token=TOKEN, seed=seed) as emulator, requests.Session() as http:
            http.headers.update(AUTH)
            ws = emulator.add_workspace()
            emulator.add_fault("status", probability=0.5, times=None)
            url = f"{emulator.url}/workspaces/{ws}/status"
            codes = [http.get(url).status_code for _ in range(20)]
            assert emulator.faults_injected == codes.count(503)
            return codes

    assert pattern(7) == pattern(7)
    assert 0 < pattern(7).count(503) < 20
    assert pattern(7) != pattern(8)


def test_fault_skip_and_listener_filter(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.add_fault("status", skip=2, times=1)
    codes = [http.get(f"{emu.url}/workspaces/{ws}").status_code for _ in range(4)]
    assert codes == [200, 200, 503, 200]
    emu.add_fault("status", listener="second", times=None)
    assert http.get(f"{emu.url}/workspaces/{ws}").status_code == 200
    assert http.get(f"{emu.second_url}/workspaces/{ws}").status_code == 503


def test_unknown_fault_kind() -> None:
    with Emulator() as emulator, pytest.raises(ValueError, match="unknown fault kind"):
        emulator.add_fault("explode")


# ---------------------------------------------------------------------------- redirects ---
@pytest.mark.parametrize("status", [307, 308])
def test_redirect_to_the_second_listener(
    emu: Emulator, http: requests.Session, status: int
) -> None:
    ws = emu.add_workspace()
    emu.add_fault("redirect", method="POST", path=r"/pipeline/", status=status, target="second")
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare/start"
    response = http.post(url, allow_redirects=False)
    assert response.status_code == status
    location = response.headers["Location"]
    assert location == f"{emu.second_url}/workspaces/{ws}/pipeline/prepare/start"
    assert emu.stage_run(ws, "prepare") is None  # a redirect does not process the request
    # same host, other port: the second listener serves the same state
    assert http.post(location).status_code == 200
    assert emu.stage_run(ws, "prepare") is not None
    assert emu.requests[-1].listener == "second"
    assert emu.requests[-1].port != emu.port


def test_redirect_followed_by_requests_loses_the_token(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace()
    emu.add_fault("redirect", path=r"/status$", target="second")
    response = http.get(f"{emu.url}/workspaces/{ws}/status")
    # requests drops Authorization when the port changes: the second listener says 401
    assert response.status_code == 401
    assert "authorization" not in emu.requests[-1].headers


def test_redirect_to_the_foreign_host_is_recorded(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    assert emu.foreign_url.startswith("http://127.0.0.2:")
    emu.add_fault("redirect", path=r"^/workspaces/\d+$", target="foreign", status=308)
    response = http.get(f"{emu.url}/workspaces/{ws}")
    assert response.status_code == 401
    (spied,) = emu.foreign_requests
    assert spied.path == f"/workspaces/{ws}"
    assert "Authorization" not in spied.headers
    assert spied.listener == "foreign"


def test_redirect_to_an_explicit_location(emu: Emulator, http: requests.Session) -> None:
    emu.add_fault("redirect", location="https://elsewhere.invalid/api/x", status=302)
    response = http.get(f"{emu.url}/workspaces/1", allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (
        302,
        "https://elsewhere.invalid/api/x",
    )


# ---------------------------------------------------------------------------- domains -----
def test_domain_map_is_replaced_whole(emu: Emulator, http: requests.Session) -> None:
    blue = emu.add_workspace(name="blue")
    green = emu.add_workspace(name="green")
    api = emu.add_workspace(name="api")
    emu.add_domain(1, "app.example.com", {"/": [blue], "/api": [api]})
    url = f"{emu.url}/domains/team/1/domain/app.example.com"
    assert http.get(url).json()["workspaces"] == {"/": [blue], "/api": [api]}
    response = http.put(f"{url}/workspace-connections", json={"/": [green]})
    assert response.status_code == 200
    assert response.json()["workspaces"] == {"/": [green]}  # "/api" is gone: whole-map replace
    domain = emu.domain(1, "app.example.com")
    assert domain.workspaces == {"/": [green]}
    assert domain.history[-1][1] == {"/": [blue], "/api": [api]}
    (event,) = emu.events_of("domain_updated")
    assert event.details["workspaces"] == {"/": [green]}
    assert event.details["previous"] == {"/": [blue], "/api": [api]}

    assert http.get(f"{emu.url}/domains/team/1/domain/nope.example.com").status_code == 404
    assert http.get(f"{emu.url}/domains/team/2/domain/app.example.com").status_code == 404
    unknown = http.put(f"{url}/workspace-connections", json={"/": [99999]})
    assert unknown.status_code == 400
    assert domain.workspaces == {"/": [green]}
    bad = http.put(f"{url}/workspace-connections", json={"/": ["x"]})
    assert bad.status_code == 400
    assert len(emu.spec_violations) == 1


def test_domain_switch_ordering_in_events(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.add_domain(1, "app.example.com", {})
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start")
    wait_until(lambda: emu.stage_run(ws, "run").up_at)  # type: ignore[union-attr]
    http.put(
        f"{emu.url}/domains/team/1/domain/app.example.com/workspace-connections",
        json={"/": [ws]},
    )
    kinds = [e.kind for e in emu.events]
    assert kinds.index("stage_up") < kinds.index("domain_updated")


# ---------------------------------------------------------------------------- misc --------
def test_threads_share_state_safely(emu: Emulator) -> None:
    body = {"teamId": 1, "name": "c", "planId": 8, "isPrivateRepo": True, "replicas": 1}

    def create(_: int) -> int:
        with requests.Session() as session:
            return int(session.post(f"{emu.url}/workspaces", json=body, headers=AUTH).json()["id"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(24)))
    assert len(set(ids)) == 24
    assert len(emu.workspaces(1, name="c")) == 24


def test_cli_prints_one_json_line_and_stops_on_sigterm() -> None:
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--workspace", "a", "--workspace", "b"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    ) as proc:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with requests.get(f"{info['url']}/workspaces/team/1", headers=AUTH) as response:
            assert [w["name"] for w in response.json()] == ["a", "b"]
        assert [w["name"] for w in info["workspaces"]] == ["a", "b"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
