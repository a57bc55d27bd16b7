"""Tests of the local Codesphere API emulator itself (emulator/)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator import STICKY_COOKIE, Emulator, Variants, default_branch_head, load_spec
from emulator.github import FakeGitHub
from emulator.model import iso

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
    assert (ws.extra, ws.clone_depth) == ({}, 1)  # a field of its own (issue 20)
    assert http.get(f"{emu.url}/workspaces/{ws.id}/status").json() == {"isRunning": False}
    started = http.post(f"{emu.url}/workspaces/{ws.id}/pipeline/prepare/start")
    assert started.status_code == 400
    assert started.json()["title"] == "Workspace is not running"
    wait_until(lambda: http.get(f"{emu.url}/workspaces/{ws.id}/status").json()["isRunning"])
    assert ws.running
    (created,) = emu.events_of("workspace_created", workspace_id=ws.id)
    (up,) = emu.events_of("workspace_started", workspace_id=ws.id)
    assert up.time - created.time == pytest.approx(0.15)


@pytest.mark.parametrize(("id_order", "slow_first"), [("commit", False), ("arrival", True)])
def test_id_order_hands_the_id_out_when_the_create_is_processed_or_arrives(
    emu: Emulator, id_order: str, slow_first: bool
) -> None:
    """A slow create that arrived first: with ``id_order="commit"`` it gets the
    higher id (it is processed last); with ``"arrival"`` the lower one, though it
    shows up last."""
    emu.set_variants(id_order=id_order)
    emu.add_fault("delay", method="POST", path=r"^/workspaces$", seconds=0.5, times=1)
    body = {"teamId": 5, "name": "p", "planId": 8, "isPrivateRepo": False, "replicas": 1}
    headers = {"Authorization": f"Bearer {emu.token}"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(requests.post, f"{emu.url}/workspaces", json=body, headers=headers)
        wait_until(lambda: emu.find_requests("POST", "/workspaces"))
        fast = pool.submit(requests.post, f"{emu.url}/workspaces", json=body, headers=headers)
        slow_id, fast_id = slow.result().json()["id"], fast.result().json()["id"]
    assert (slow_id < fast_id) is slow_first
    shown = [e.details["workspace_id"] for e in emu.events_of("workspace_created")]
    assert shown == [fast_id, slow_id]  # the slow one shows up last either way


@pytest.mark.parametrize("missing_branch", ["no_clone", "refuse"])
def test_a_create_on_a_branch_that_does_not_exist(
    emu: Emulator, http: requests.Session, missing_branch: str
) -> None:
    emu.set_variants(missing_branch=missing_branch)
    emu.set_branch_head("gone", None)
    body = {
        "teamId": 5, "name": "pr-9", "planId": 8, "isPrivateRepo": False, "replicas": 1,
        "gitUrl": "https://github.com/o/r.git", "initialBranch": "gone",
    }  # fmt: skip
    answer = http.post(f"{emu.url}/workspaces", json=body)
    if missing_branch == "refuse":
        assert answer.status_code == 400
        assert answer.json()["detail"] == "branch gone not found in https://github.com/o/r.git"
        assert emu.workspaces(5, name="pr-9") == []
    else:
        assert answer.status_code == 200
        ws_id = answer.json()["id"]
        wait_until(lambda: emu.workspace(ws_id).running)
        head = http.get(f"{emu.url}/workspaces/{ws_id}/git/head")
        assert (head.status_code, head.json()["title"]) == (400, "git error")
    assert emu.response_violations == []


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


@pytest.mark.parametrize(("website", "get", "post"), [("not_found", 404, 404), ("spa", 200, 404)])
def test_the_website_answers_paths_outside_api_with_html(
    emu: Emulator, http: requests.Session, website: str, get: int, post: int
) -> None:
    emu.website = website
    site = emu.url.removesuffix("/api")
    answer = http.get(f"{site}/workspaces/1")
    assert answer.status_code == get
    assert answer.headers["Content-Type"] == "text/html"
    assert answer.text.startswith("<!DOCTYPE html>")
    assert http.post(f"{site}/workspaces", json={}).status_code == post
    assert emu.spec_violations == []
    assert [r.route for r in emu.requests] == [None, None]
    with pytest.raises(ValueError, match="website"):
        Emulator(website="blog")


def test_domain_names_match_in_any_case_or_exactly(emu: Emulator, http: requests.Session) -> None:
    emu.add_domain(1, "App.Example.com", {})
    base = f"{emu.url}/domains/team/1/domain"
    assert http.get(f"{base}/app.example.com").json()["name"] == "App.Example.com"
    emu.set_variants(domain_match="exact")
    assert http.get(f"{base}/app.example.com").status_code == 404
    assert http.put(f"{base}/app.example.com/workspace-connections", json={}).status_code == 404
    assert http.get(f"{base}/App.Example.com").status_code == 200


def test_a_map_may_keep_a_deleted_workspace_when_ids_are_not_checked(
    emu: Emulator, http: requests.Session
) -> None:
    live = emu.add_workspace(name="live")
    gone = emu.add_workspace(name="gone")
    emu.add_domain(1, "app.example.com", {"/": [live], "/api": [gone]})
    emu.workspace(gone).deleted = True
    url = f"{emu.url}/domains/team/1/domain/app.example.com/workspace-connections"
    assert http.put(url, json={"/": [live], "/api": [gone]}).status_code == 400
    emu.check_domain_workspaces = False
    assert http.put(url, json={"/": [live], "/api": [gone]}).status_code == 200
    assert emu.domain(1, "app.example.com").workspaces == {"/": [live], "/api": [gone]}


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
        [sys.executable, "-m", "emulator", "--workspace", "a", "--workspace", "b"],
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


# ---------------------------------------------------------------------------- variants ----
def raw_stream(response: requests.Response) -> tuple[bytes, bool]:
    """All bytes of a (chunked) answer and whether it ended with the chunked terminator."""
    data = b""
    try:
        for chunk in response.iter_content(chunk_size=None):
            data += chunk
    except requests.exceptions.ChunkedEncodingError:
        return data, False
    return data, True


def start_prepare(http: requests.Session, emu: Emulator, ws: int) -> None:
    assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start").status_code == 200


def test_variants_are_validated_and_change_at_run_time(emu: Emulator) -> None:
    assert emu.variants == Variants()
    with pytest.raises(ValueError, match="log_end"):
        Variants(log_end="sometimes")
    with pytest.raises(ValueError, match="line_ending"):
        Variants(line_ending="\n\n")
    with pytest.raises(ValueError, match="stop_latency"):
        Variants(stop_latency=-1)
    with pytest.raises(TypeError, match="unknown variants"):
        emu.set_variants(log_ending="cut")
    changed = emu.set_variants(log_end="cut", timestamps=False)
    assert (changed.log_end, changed.timestamps, changed.entry_order) == ("cut", False, "ide_first")
    assert emu.variants is changed
    with Emulator(variants=Variants(entry_order="shuffled")) as other:
        assert other.variants.entry_order == "shuffled"


def test_log_end_after_last_line_ends_before_the_step(http: requests.Session) -> None:
    with Emulator(token=TOKEN, **FAST, variants=Variants(log_end="after_last_line")) as emu:
        ws = emu.add_workspace()
        emu.configure_stage(ws, "prepare", seconds=0.8, steps=1, logs={0: ["a", "b"]})
        start_prepare(http, emu, ws)
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            events = sse_events(response)
        closed = time.monotonic()
        run = emu.stage_run(ws, "prepare")
        assert run is not None
        assert [line["data"] for _, chunk in events for line in chunk] == ["a", "b"]
        # "b" is logged half way through the step; the stream ends right after it
        assert run.start_at + 0.4 <= closed < run.start_at + 0.55
        assert run.ended_at is None
        began = time.monotonic()  # opened after the last line: replay, then the end
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            assert len(sse_events(response)) == 1
        assert time.monotonic() - began < 0.1
        assert emu.response_violations == []


def test_log_end_cut_breaks_the_stream_without_terminator(http: requests.Session) -> None:
    variants = Variants(log_end="cut", log_cut_seconds=0.15)
    with Emulator(token=TOKEN, **FAST, variants=variants) as emu:
        ws = emu.add_workspace()
        emu.configure_stage(ws, "prepare", seconds=2, steps=1, start_latency=0)
        start_prepare(http, emu, ws)
        began = time.monotonic()
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            data, complete = raw_stream(response)
        assert not complete  # like a broken connection, mid-step
        assert 0.15 <= time.monotonic() - began < 0.4
        assert data.startswith(b"event: data\ndata: ")  # what came before the cut arrived
        run = emu.stage_run(ws, "prepare")
        assert run is not None
        assert run.ended_at is None
        # a stream whose step ends before the cut ends normally
        emu.configure_stage(ws, "test", seconds=0.05, steps=1, start_latency=0)
        http.post(f"{emu.url}/workspaces/{ws}/pipeline/test/start")
        with http.get(f"{emu.url}/workspaces/{ws}/logs/test/0", stream=True) as response:
            assert raw_stream(response)[1]


@pytest.mark.parametrize("log_end", ["open_silent", "open_keepalive"])
def test_log_end_open_outlives_the_step(http: requests.Session, log_end: str) -> None:
    variants = Variants(log_end=log_end, keepalive_seconds=0.05)
    with Emulator(token=TOKEN, **FAST, log_stream_max_seconds=0.6, variants=variants) as emu:
        ws = emu.add_workspace()
        emu.configure_stage(ws, "prepare", seconds=0.2, steps=1, start_latency=0)
        start_prepare(http, emu, ws)
        began = time.monotonic()
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            data, complete = raw_stream(response)
        took = time.monotonic() - began
        run = emu.stage_run(ws, "prepare")
        assert run is not None
        assert run.final_state == "success"
        assert complete  # ended by log_stream_max_seconds, normally
        assert 0.6 <= took < 0.9  # long after the step's end (0.2 s)
        assert data.count(b"event: data") >= 1
        pings = data.count(b": keep-alive\n")
        if log_end == "open_keepalive":
            assert pings >= 8  # every 0.05 s, during the step and after it
        else:
            assert pings == 0
            assert data.endswith(b"\n\n")  # nothing after the last event


def test_close_ends_an_open_silent_stream_at_once(http: requests.Session) -> None:
    emulator = Emulator(token=TOKEN, **FAST, variants=Variants(log_end="open_silent"))
    ws = emulator.add_workspace()
    emulator.configure_stage(ws, "prepare", seconds=0.05, steps=1, start_latency=0)
    start_prepare(http, emulator, ws)
    time.sleep(0.1)
    with http.get(f"{emulator.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
        lines = response.iter_lines()
        assert next(lines) == b"event: data"
        began = time.monotonic()
        emulator.close()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(lines)
        assert time.monotonic() - began < 0.5


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_sse_line_endings_charset_and_utf8(http: requests.Session, ending: str) -> None:
    variants = Variants(line_ending=ending, sse_charset="utf-8")
    with Emulator(token=TOKEN, **FAST, variants=variants) as emu:
        ws = emu.add_workspace()
        emu.configure_stage(ws, "prepare", steps=1, fail_step=0, error_lines="✅ café Привет")
        start_prepare(http, emu, ws)
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
            data, complete = raw_stream(response)
        assert complete
        end = ending.encode()
        assert data.startswith(b"event: data" + end + b"data: [")
        assert data.endswith(b"]" + end + end)
        if ending == "\r":
            assert b"\n" not in data
        assert "✅ café Привет".encode() in data  # raw UTF-8, not \\u escapes
        assert emu.response_violations == []
    with Emulator(token=TOKEN, **FAST) as emu:  # the default: no charset parameter
        ws = emu.add_workspace()
        start_prepare(http, emu, ws)
        with http.get(f"{emu.url}/workspaces/{ws}/logs/prepare/0", stream=True) as response:
            assert response.headers["Content-Type"] == "text/event-stream"


def test_entry_order_customers_first_and_shuffled(http: requests.Session) -> None:
    def orders(entry_order: str, seed: int) -> list[list[str]]:
        variants = Variants(entry_order=entry_order)
        with Emulator(token=TOKEN, **FAST, seed=seed, variants=variants) as emu:
            ws = emu.add_workspace(servers=["web", "api"], replicas=2)
            url = f"{emu.url}/workspaces/{ws}/pipeline/run"
            seen = [
                [f"{e['server']}/{e['replica']}" for e in http.get(url).json()] for _ in range(6)
            ]
            assert emu.response_violations == []
            return seen

    first = orders("customers_first", 0)
    assert first[0] == ["web/0", "web/1", "api/0", "api/1", "codesphere-ide/0"]
    assert all(order == first[0] for order in first)
    shuffled = orders("shuffled", 3)
    assert len({tuple(order) for order in shuffled}) > 1  # a new order per answer
    assert all(sorted(order) == sorted(first[0]) for order in shuffled)
    assert orders("shuffled", 3) == shuffled  # seeded


def test_replica_ids_pod_names(emu: Emulator, http: requests.Session) -> None:
    emu.set_variants(replica_ids="pod")
    ws = emu.add_workspace(servers=["web"], replicas=2)
    url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    pod = rf"workspace-{ws}-(codesphere-ide|web)-[0-9a-f]{{10}}-[a-z0-9]{{5}}"
    before = [e["replica"] for e in http.get(url).json()]
    assert all(re.fullmatch(pod, r) for r in before)
    assert len(set(before)) == 3
    http.post(f"{url}/start")
    up = wait_until(lambda: all(e["state"] == "running" for e in http.get(url).json()[1:]))
    assert up
    first = [e["replica"] for e in http.get(url).json()]
    assert first == [e["replica"] for e in http.get(url).json()]  # stable within a run
    assert first[0] == before[0]  # the IDE is not restarted by a run start
    assert not set(first[1:]) & set(before[1:])  # new pods for the run
    web = [r.rsplit("-", 2)[1] for r in first[1:]]
    assert web[0] == web[1]  # one replica set, two pods
    http.post(f"{url}/start")
    second = wait_until(lambda: (s := http.get(url).json())[1]["replica"] not in first and s)
    assert not {e["replica"] for e in second[1:]} & set(first)
    prepare = http.get(f"{emu.url}/workspaces/{ws}/pipeline/prepare").json()
    assert [e["replica"] for e in prepare] == [e["replica"] for e in second]


def test_timestamps_false_leaves_out_started_and_finished(
    emu: Emulator, http: requests.Session
) -> None:
    emu.set_variants(timestamps=False)
    ws = emu.add_workspace()
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare"
    http.post(f"{url}/start")
    seen: set[str] = set()
    deadline = time.monotonic() + 2
    while "success" not in seen and time.monotonic() < deadline:
        status = http.get(url).json()
        seen.add(ide(status)["state"])
        text = json.dumps(status)
        assert "startedAt" not in text and "finishedAt" not in text
        time.sleep(0.02)
    assert {"running", "success"} <= seen


def test_on_start_reset_shows_waiting_until_the_run_starts(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace()
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare"
    http.post(f"{url}/start")
    wait_until(lambda: ide(http.get(url).json())["state"] == "success")
    emu.set_variants(on_start="reset")
    emu.configure_stage(ws, "prepare", start_latency=0.3)
    http.post(f"{url}/start")
    entry = ide(http.get(url).json())
    assert entry == {
        "server": "codesphere-ide",
        "replica": "0",
        "state": "waiting",
        "steps": [{"state": "waiting"}, {"state": "waiting"}],
    }
    running = wait_until(lambda: (e := ide(http.get(url).json()))["state"] == "running" and e)
    assert "startedAt" in running
    run = emu.stage_run(ws, "prepare")
    assert run is not None
    assert run.started_at is not None
    assert time.monotonic() >= run.requested_at + 0.3


def test_stop_latency_keeps_showing_the_stopped_run(emu: Emulator, http: requests.Session) -> None:
    emu.set_variants(stop_latency=0.3)
    ws = emu.add_workspace()
    url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{url}/start")
    wait_until(lambda: http.get(url).json()[1]["state"] == "running")
    stop_sent = time.monotonic()  # before the request: the emulator takes it later
    http.post(f"{url}/stop")
    assert http.get(url).json()[1]["state"] == "running"  # as it was
    http.post(f"{url}/start")  # the new run starts once the stop took effect
    assert http.get(url).json()[1]["state"] == "running"
    first, second = emu.stage_runs(ws, "run")
    assert first.stop_requested_at is not None
    assert first.stopped_at == pytest.approx(first.stop_requested_at + 0.3)
    assert second.start_at == pytest.approx(first.stopped_at)
    wait_until(lambda: first.final_state == "aborted")
    assert time.monotonic() - stop_sent >= 0.3
    (finished,) = emu.events_of("stage_finished", stage="run", run=1)
    assert finished.details["reason"] == "stopped"
    fresh = wait_until(lambda: (s := http.get(url).json())[1]["state"] == "running" and s)
    assert fresh[1]["startedAt"] > iso_of(first.start_at, emu)


def iso_of(t: float, emu: Emulator) -> str:
    return iso(emu._wall_offset + t)


def test_unlisted_states_are_answered_and_checked_by_their_spec_names(
    emu: Emulator, http: requests.Session
) -> None:
    emu.set_variants(waiting_state="pending", skipped_steps=True)
    ws = emu.add_workspace(servers=["web"])
    never = http.get(f"{emu.url}/workspaces/{ws}/pipeline/prepare").json()
    assert {e["state"] for e in never} == {"pending"}
    assert {s["state"] for e in never for s in e["steps"]} == {"pending"}
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start")
    done = wait_until(
        lambda: (
            (s := http.get(f"{emu.url}/workspaces/{ws}/pipeline/prepare").json())
            and ide(s)["state"] == "success"
            and s
        )
    )
    assert [step["state"] for step in ide(done)["steps"]] == ["success", "skipped"]
    assert [e["state"] for e in done if e["server"] == "web"] == ["pending"]
    assert emu.stage_status(ws, "prepare") == done
    # The answers are off the spec on purpose: checked with the spec's names.
    assert emu.response_violations == []
    with pytest.raises(ValueError, match="waiting_state"):
        Variants(waiting_state="queued")


def test_idle_steps_empty(emu: Emulator, http: requests.Session) -> None:
    emu.set_variants(idle_steps="empty")
    ws = emu.add_workspace(servers=["web"])
    never = http.get(f"{emu.url}/workspaces/{ws}/pipeline/prepare").json()
    assert all(e["steps"] == [] for e in never)
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/prepare/start")
    status = wait_until(
        lambda: (
            (s := http.get(f"{emu.url}/workspaces/{ws}/pipeline/prepare").json())
            and ide(s)["state"] == "running"
            and s
        )
    )
    assert len(ide(status)["steps"]) == 2
    assert [e["steps"] for e in status if e["server"] == "web"] == [[]]
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start")
    run = wait_until(
        lambda: (
            (s := http.get(f"{emu.url}/workspaces/{ws}/pipeline/run").json())[1]["state"]
            == "running"
            and s
        )
    )
    assert ide(run)["steps"] == []
    assert len(run[1]["steps"]) == 2


def test_fail_entries_fail_one_replica_only(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(servers=["web"], replicas=2)
    emu.configure_stage(ws, "run", fail_step=1, fail_entries=[("web", 1)])
    url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{url}/start")
    status = wait_until(lambda: (s := http.get(url).json())[2]["state"] == "failure" and s)
    time.sleep(0.05)
    status = http.get(url).json()
    assert [(e["replica"], e["state"]) for e in status[1:]] == [("0", "running"), ("1", "failure")]


# ---------------------------------------------------------------------------- landscapes --
def create_body(name: str = "n", team: int = 1) -> dict[str, Any]:
    return {"teamId": team, "name": name, "planId": 8, "isPrivateRepo": True, "replicas": 1}


def test_single_server_landscape_refuses_deploys(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    for suffix in ("", "/prod"):
        response = http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy{suffix}")
        assert response.status_code == 400
        assert response.json()["title"] == "Workspace does not support Multi Server Deployments"
    assert emu.workspace(ws).servers == ["web"]
    assert emu.events_of("landscape_deploy_requested") == []


def test_multi_server_landscape(emu: Emulator, http: requests.Session) -> None:
    emu.defaults_for_new_workspaces(
        landscape="multi", ci_servers=["web", "api"], profiles=["prod"], start_seconds=0.01
    )
    ws = http.post(f"{emu.url}/workspaces", json=create_body()).json()["id"]
    wait_until(lambda: emu.workspace(ws).running)
    assert emu.workspace(ws).servers == []  # nothing allocated before a deploy
    run_url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{run_url}/start")  # before any deploy: starts no customer server
    time.sleep(0.3)
    (only,) = http.get(run_url).json()
    assert (only["server"], only["state"]) == ("codesphere-ide", "waiting")

    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy/staging").status_code == 400
    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy/prod").status_code == 200
    assert emu.workspace(ws).servers == []  # asynchronous
    wait_until(lambda: emu.workspace(ws).servers == ["web", "api"], timeout=1)
    (requested,) = emu.events_of("landscape_deploy_requested", workspace_id=ws)
    (deployed,) = emu.events_of("landscape_deployed", workspace_id=ws)
    assert requested.details == {"workspace_id": ws, "profile": "prod", "servers": ["web", "api"]}
    assert deployed.time == pytest.approx(requested.time + 0.2)
    http.post(f"{run_url}/start")
    up = wait_until(lambda: (s := http.get(run_url).json()) and len(s) == 3 and s[1:] and all(
        e["state"] == "running" for e in s[1:]) and s)  # fmt: skip
    assert [e["server"] for e in up] == ["codesphere-ide", "web", "api"]
    # plain run logs are refused on multi-server workspaces; per server they stream
    with http.get(f"{emu.url}/workspaces/{ws}/logs/run/0", stream=True) as response:
        ((kind, problem),) = sse_events(response)
    assert (kind, problem["status"]) == ("problem", 400)
    with http.get(f"{emu.url}/workspaces/{ws}/logs/run/0/server/web", stream=True) as response:
        assert sse_events(response)[0][0] == "data"

    emu.set_ci_servers(ws, ["web"])  # a pull that dropped "api" from ci.yml
    assert emu.workspace(ws).servers == ["web", "api"]  # only the next deploy changes it
    http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy")
    wait_until(lambda: emu.workspace(ws).servers == ["web"], timeout=1)
    assert [e["server"] for e in http.get(run_url).json()] == ["codesphere-ide", "web"]

    emu.set_landscape_error(ws, "Invalid templating reference", "ci.yml: ${{ vault.X }}")
    bad = http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy")
    assert bad.status_code == 400
    assert (bad.json()["title"], bad.json()["detail"]) == (
        "Invalid templating reference",
        "ci.yml: ${{ vault.X }}",
    )
    emu.set_landscape_error(ws, None)
    emu.set_ci_servers(ws, [])  # a landscape without servers
    http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy")
    wait_until(lambda: emu.workspace(ws).servers == [], timeout=1)
    http.post(f"{run_url}/start")
    time.sleep(0.3)
    assert [e["server"] for e in http.get(run_url).json()] == ["codesphere-ide"]


def test_a_run_started_during_a_deploy_starts_the_servers_it_allocates(
    emu: Emulator, http: requests.Session
) -> None:
    emu.defaults_for_new_workspaces(landscape="multi", ci_servers=["web"], start_seconds=0.01)
    ws = http.post(f"{emu.url}/workspaces", json=create_body()).json()["id"]
    wait_until(lambda: emu.workspace(ws).running)
    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy").status_code == 200
    run_url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{run_url}/start")  # at once: the servers are not allocated yet
    assert [e["server"] for e in http.get(run_url).json()] == ["codesphere-ide"]
    (deployed,) = wait_until(lambda: emu.events_of("landscape_deployed", workspace_id=ws))
    run = emu.stage_run(ws, "run")
    assert run is not None and run.start_at >= deployed.time
    up = wait_until(lambda: emu.stage_run(ws, "run").up_at)  # type: ignore[union-attr]
    assert up >= deployed.time
    assert [(e["server"], e["state"]) for e in http.get(run_url).json()][1:] == [("web", "running")]


def test_multi_server_workspace_made_by_hand_is_deployed(emu: Emulator) -> None:
    ws = emu.add_workspace(landscape="multi", servers=["web"])
    assert (emu.workspace(ws).servers, emu.workspace(ws).ci_servers) == (["web"], ["web"])
    fresh = emu.add_workspace(landscape="multi", ci_servers=["a"], landscape_deployed=False)
    assert emu.workspace(fresh).servers == []
    with pytest.raises(ValueError, match="landscape"):
        emu.add_workspace(landscape="galaxy")


def test_run_on_ide_landscape(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace(landscape="run_on_ide")
    url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    assert [e["server"] for e in http.get(url).json()] == ["codesphere-ide"]
    http.post(f"{url}/start")
    (entry,) = wait_until(lambda: (s := http.get(url).json())[0]["state"] == "running" and s)
    assert [s["state"] for s in entry["steps"]] == ["success", "running"]
    run = emu.stage_run(ws, "run")
    assert run is not None
    assert run.up_at is not None
    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy").status_code == 400


def test_billing_402_is_not_a_response_violation(emu: Emulator, http: requests.Session) -> None:
    emu.set_billing(5, ok=False)
    response = http.post(f"{emu.url}/workspaces", json=create_body(team=5))
    assert response.status_code == 402
    assert response.json()["title"] == "Missing billing information"
    assert "5" in response.json()["detail"]
    assert emu.workspaces(5) == []
    assert http.post(f"{emu.url}/workspaces", json=create_body(team=6)).status_code == 200
    emu.set_billing(5, ok=True)
    assert http.post(f"{emu.url}/workspaces", json=create_body(team=5)).status_code == 200
    # the fixture asserts response_violations == [] at the end


# ---------------------------------------------------------------------------- new faults --
def test_fault_status_after_commits_then_answers_an_error(
    emu: Emulator, http: requests.Session
) -> None:
    emu.add_fault("status_after", method="POST", path=r"^/workspaces$")
    response = http.post(f"{emu.url}/workspaces", json=create_body("landed"))
    assert response.status_code == 502
    assert response.json()["status"] == 502
    assert [w.name for w in emu.workspaces(1)] == ["landed"]
    assert (emu.requests[-1].fault, emu.requests[-1].status) == ("status_after", 502)


def test_fault_slow_answer_commits_at_once(emu: Emulator, http: requests.Session) -> None:
    emu.add_fault("slow_answer", method="POST", path=r"^/workspaces$", seconds=0.4)
    with pytest.raises(requests.ReadTimeout):
        http.post(f"{emu.url}/workspaces", json=create_body("early"), timeout=0.1)
    assert [w.name for w in emu.workspaces(1)] == ["early"]  # committed already
    emu.add_fault("slow_answer", method="POST", path=r"^/workspaces$", seconds=0.3)
    began = time.monotonic()
    assert http.post(f"{emu.url}/workspaces", json=create_body("late")).status_code == 200
    assert time.monotonic() - began >= 0.3


def test_fault_hold_commits_at_once_and_answers_when_released(
    emu: Emulator, http: requests.Session
) -> None:
    rule = emu.add_fault("hold", method="POST", path=r"^/workspaces$")
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            http.post(f"{emu.url}/workspaces", json=create_body("held"), timeout=5).status_code
        )
    )
    sender.start()
    wait_until(lambda: emu.workspaces(1, name="held"), timeout=2)  # committed already
    time.sleep(0.2)
    assert answers == []  # still held
    rule.release()
    sender.join(timeout=2)
    assert answers == [200]
    assert emu.requests[0].fault == "hold"


def test_fault_hold_drops_the_connection_after_its_seconds(
    emu: Emulator, http: requests.Session
) -> None:
    emu.add_fault("hold", method="POST", path=r"^/workspaces$", seconds=0.2)
    with pytest.raises(requests.ConnectionError):
        http.post(f"{emu.url}/workspaces", json=create_body("dropped"), timeout=2)
    assert [w.name for w in emu.workspaces(1)] == ["dropped"]


def test_fault_slow_answer_on_domain_switch_and_delete(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace()
    emu.add_domain(1, "app.example.com", {})
    emu.add_fault("slow_answer", method="PUT", path=r"/workspace-connections$", seconds=0.3)
    emu.add_fault("slow_answer", method="DELETE", path=r"^/workspaces/\d+$", seconds=0.3)
    url = f"{emu.url}/domains/team/1/domain/app.example.com/workspace-connections"
    with pytest.raises(requests.ReadTimeout):
        http.put(url, json={"/": [ws]}, timeout=0.1)
    assert emu.domain(1, "app.example.com").workspaces == {"/": [ws]}
    with pytest.raises(requests.ReadTimeout):
        http.delete(f"{emu.url}/workspaces/{ws}", timeout=0.1)
    assert emu.workspace(ws).deleted


def test_fault_late_commit(emu: Emulator, http: requests.Session) -> None:
    emu.add_fault("late_commit", method="POST", path=r"^/workspaces$", seconds=0.3)
    began = time.monotonic()
    response = http.post(f"{emu.url}/workspaces", json=create_body("slowpoke"))
    assert response.status_code == 504
    assert time.monotonic() - began < 0.2
    assert emu.workspaces(1) == []  # not yet
    wait_until(lambda: emu.workspaces(1, name="slowpoke"), timeout=1)
    assert time.monotonic() - began >= 0.3
    (event,) = emu.events_of("request_committed_late")
    assert event.details == {"method": "POST", "path": "/workspaces", "status": 200}
    assert emu.requests[0].status == 504


def test_fault_late_commit_never_lands_after_close() -> None:
    emulator = Emulator(token=TOKEN)
    emulator.add_fault("late_commit", method="POST", path=r"^/workspaces$", seconds=0.3)
    assert (
        requests.post(f"{emulator.url}/workspaces", json=create_body(), headers=AUTH).status_code
        == 504
    )
    emulator.close()
    time.sleep(0.4)
    assert emulator.workspaces() == []


def test_fault_429_with_retry_after_zero(emu: Emulator, http: requests.Session) -> None:
    ws = emu.add_workspace()
    emu.add_fault("429", path=r"/pipeline/prepare$", retry_after=0, times=2)
    url = f"{emu.url}/workspaces/{ws}/pipeline/prepare"
    answers = [http.get(url) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "0"


@pytest.mark.parametrize(
    "path",
    ["/workspaces/{ws}", "/workspaces/team/1", "/workspaces/{ws}/logs/prepare/0"],
)
def test_fault_html_200_on_any_route(emu: Emulator, http: requests.Session, path: str) -> None:
    ws = emu.add_workspace()
    body = "<html><body>Sign in</body></html>"
    emu.add_fault("status", status=200, body=body, content_type="text/html", times=None)
    response = http.get(emu.url + path.format(ws=ws))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html"
    assert response.text == body


def test_a_workspace_added_with_an_age_was_created_that_long_ago(
    emu: Emulator, http: requests.Session
) -> None:
    old = emu.add_workspace(name="old", age=30 * 86400)
    new = emu.add_workspace(name="new")
    answer = {w["id"]: w for w in http.get(f"{emu.url}/workspaces/team/1").json()}

    def created(ws: int) -> float:
        text = answer[ws]["createdAt"].replace("Z", "+00:00")
        return datetime.fromisoformat(text).timestamp()

    assert 30 * 86400 - 5 < created(new) - created(old) < 30 * 86400 + 5
    assert abs(created(new) - time.time()) < 5


def test_the_fake_github_answers_a_workflow_runs_attempt_as_set() -> None:
    with FakeGitHub(token="ghs-runs") as github:
        github.set_run(77, attempt=2, status="in_progress")
        github.set_run(78)
        headers = {"Authorization": "Bearer ghs-runs", "Accept": "application/vnd.github+json"}
        base = f"{github.url}/repos/acme/shop/actions/runs"
        running = requests.get(f"{base}/77/attempts/2", headers=headers, timeout=5).json()
        assert (running["status"], running["conclusion"]) == ("in_progress", None)
        done = requests.get(f"{base}/78/attempts/1", headers=headers, timeout=5).json()
        assert (done["status"], done["conclusion"]) == ("completed", "success")
        unknown = requests.get(f"{base}/77/attempts/1", headers=headers, timeout=5)
        assert unknown.status_code == 404


# -- apps: Codesphere's placeholder page (issue 20) ------------------------------------
def test_an_app_answers_the_placeholder_for_a_while_after_the_run_is_up(
    emu: Emulator, http: requests.Session
) -> None:
    emu.serve_apps(placeholder_seconds=0.4, placeholder_status=429, domain_placeholder_seconds=0.3)
    ws = emu.add_workspace(team_id=1, name="app")
    other = emu.add_workspace(team_id=1, name="before")
    emu.add_domain(1, "shop.example.com", {"/": [other]})
    url = f"http://{emu.workspace(ws).dev_domain}/healthz"
    assert requests.get(url, timeout=2).status_code == 502  # not up yet
    assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start").ok
    wait_until(lambda: (run := emu.stage_run(ws, "run")) is not None and run.up_at)
    page = requests.get(url, timeout=2)
    assert page.status_code == 429 and page.headers["Content-Type"].startswith("text/html")
    # A branded page: the phrase comes after more than the first 4 KiB.
    assert page.text.index("Workspace server is starting") > 4096
    assert emu.app_requests[-1].placeholder
    wait_until(lambda: requests.get(url, timeout=2).status_code == 200, timeout=3)
    assert requests.get(url, timeout=2).text == "ok" and not emu.app_requests[-1].placeholder
    # A switch: the domain answers the placeholder for a while, then the app.
    body = {"/": [ws]}
    assert http.put(f"{emu.url}/domains/team/1/domain/shop.example.com/workspace-connections",
                    json=body).ok  # fmt: skip
    proxy = f"http://{emu.domain_proxy}/healthz"
    host = {"Host": "shop.example.com"}
    assert "Workspace server is starting" in requests.get(proxy, headers=host, timeout=2).text
    assert emu.app_requests[-1].listener == "domain-proxy" and emu.app_requests[-1].placeholder
    wait_until(lambda: requests.get(proxy, headers=host, timeout=2).text == "ok", timeout=3)


def test_a_restricted_dev_domain_sends_to_sign_in_when_it_does_not_take_the_token(
    emu: Emulator,
) -> None:
    emu.serve_apps(restricted=True, restricted_answer="redirect", content_type="application/json")
    ws = emu.add_workspace(team_id=1, name="app")
    with requests.Session() as http:
        http.headers.update(AUTH)
        assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start").ok
    wait_until(lambda: (run := emu.stage_run(ws, "run")) is not None and run.up_at)
    url = f"http://{emu.workspace(ws).dev_domain}/healthz"
    token = {"X-CS-Authorization": f"Bearer {TOKEN}"}
    plain = requests.get(url, timeout=2, allow_redirects=False)
    assert plain.status_code == 302
    assert plain.headers["Location"].startswith(f"{emu.url.removesuffix('/api')}/ide/signin?")
    answer = requests.get(url, headers=token, timeout=2, allow_redirects=False)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    emu.configure_app(ws, token_accepted=False)
    assert requests.get(url, headers=token, timeout=2, allow_redirects=False).status_code == 302
    with pytest.raises(ValueError, match="restricted_answer"):
        emu.configure_app(ws, restricted_answer="403")


@pytest.mark.parametrize("phrase", ["Workspace server is starting", "Too Many Requests"])
def test_the_placeholder_as_plain_text_says_its_phrase(emu: Emulator, phrase: str) -> None:
    emu.serve_apps(placeholder_seconds=30, placeholder_type="text", placeholder_phrase=phrase)
    ws = emu.add_workspace(team_id=1, name="app")
    with requests.Session() as http:
        http.headers.update(AUTH)
        assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start").ok
    wait_until(lambda: (run := emu.stage_run(ws, "run")) is not None and run.up_at)
    page = requests.get(f"http://{emu.workspace(ws).dev_domain}/", timeout=2)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/plain"
    assert page.text.startswith(phrase)
    with pytest.raises(ValueError, match="placeholder_type"):
        emu.configure_app(ws, placeholder_type="xml")


def test_app_names_say_which_dev_domain_each_loopback_app_stands_in_for(emu: Emulator) -> None:
    before = emu.add_workspace(team_id=1, name="plain")  # not served: a name, no listener
    assert emu.app_names == {}
    emu.serve_apps()
    ws = emu.add_workspace(team_id=1, name="app")
    served = emu.workspace(ws).dev_domain
    assert served.startswith("127.0.0.1:")
    assert emu.app_names == {served: f"{ws}-3000.dc2.codesphere.test"}
    assert emu.workspace(before).dev_domain == f"{before}-3000.dc2.codesphere.test"


# -- variant deploy_status="gap" (issue 20) ---------------------------------------------
@pytest.mark.parametrize("on_start", ["stale", "reset"])
def test_a_deploy_gap_lists_no_server_then_the_stopped_run_then_the_new_one(
    emu: Emulator, http: requests.Session, on_start: str
) -> None:
    emu.set_variants(deploy_status="gap", deploy_stale_seconds=0.3, on_start=on_start)
    ws = emu.add_workspace(landscape="multi", servers=["web"])
    run_url = f"{emu.url}/workspaces/{ws}/pipeline/run"
    http.post(f"{run_url}/start")
    wait_until(lambda: emu.stage_run(ws, "run").up_at)  # type: ignore[union-attr]
    first = emu.stage_run(ws, "run")
    assert first is not None
    http.post(f"{run_url}/stop")
    (stopped,) = [e for e in http.get(run_url).json() if e["server"] == "web"]
    assert stopped["state"] == "aborted"
    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy").ok
    http.post(f"{run_url}/start")
    views = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        entries = http.get(run_url).json()
        views.append(
            [(e["server"], e["state"], e.get("startedAt")) for e in entries if e["server"] == "web"]
        )
        time.sleep(0.02)
    (deploy,) = emu.workspace(ws).deploys
    run = emu.stage_run(ws, "run")
    assert run is not None and run.start_at >= deploy.at + 0.3 + emu.start_latency - 1e-9
    old = ("web", "aborted", stopped["startedAt"])
    # none, then the stopped run's entry as it was, then the new run's (no timestamps
    # in reset mode until it starts), never anything else
    phases = [v for i, v in enumerate(views) if i == 0 or v != views[i - 1]]
    assert phases[0] == [] and phases[1] == [old], phases
    assert all(v in ([], [old]) or v[0][2] != old[2] for v in phases)
    assert phases[-1][0][1] == "running"


# -- run-stage logs per server and replica; servers that exit (issue 20) ----------------
def test_run_logs_per_server_and_replica_carry_only_their_own_errors(
    emu: Emulator, http: requests.Session
) -> None:
    emu.set_variants(replica_ids="pod")
    ws = emu.add_workspace(landscape="multi", servers=["web", "worker"], replicas=2)
    emu.configure_stage(ws, "run", fail_step=1, fail_entries=[("worker", 1)], error_lines="boom")
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start")
    wait_until(lambda: emu.stage_run(ws, "run").ended_at)  # type: ignore[union-attr]
    base = f"{emu.url}/workspaces/{ws}/logs/run/1"
    pods = emu.workspace(ws).pods

    def texts(path: str) -> list[str]:
        with http.get(f"{base}/{path}", stream=True, timeout=5) as response:
            events = sse_events(response)
        return [item["data"] for kind, data in events if kind == "data" for item in data]

    assert texts(f"replica/{pods[('worker', 1)]}")[-1] == "boom"
    assert "boom" not in texts(f"replica/{pods[('worker', 0)]}")  # a healthy replica
    assert texts("server/worker")[-1] == "boom"  # any of its replicas failed
    assert all(t.startswith("[run web]") for t in texts("server/web"))
    with http.get(f"{base}/replica/nope", stream=True, timeout=5) as response:
        ((kind, problem),) = sse_events(response)
    assert (kind, problem["status"], problem["title"]) == ("problem", 404, "Replica not found")


def test_a_run_stage_whose_servers_exit_ends_success_and_never_comes_up(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace(servers=["web"])
    emu.configure_stage(ws, "run", exits=True)
    http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start")
    run = wait_until(lambda: (r := emu.stage_run(ws, "run")) and r.ended_at and r)
    assert (run.final_state, run.up_at) == ("success", None)
    web = [e for e in http.get(f"{emu.url}/workspaces/{ws}/pipeline/run").json()
           if e["server"] == "web"]  # fmt: skip
    assert [e["state"] for e in web] == ["success"]
    with http.get(f"{emu.url}/workspaces/{ws}/logs/run/1", stream=True, timeout=5) as response:
        ((_, data),) = sse_events(response)
    assert data[-1]["data"] == "[run] step 2: exited with code 0"  # route 1: the second step


# -- the vault, base images, create settings (issue 20) ---------------------------------
def test_a_workspace_vault_stores_lists_and_feeds_the_landscape_deploy(
    emu: Emulator, http: requests.Session
) -> None:
    ws = emu.add_workspace(team_id=1, landscape="multi", servers=["web"])
    emu.set_vault_refs(ws, ["DB_PASSWORD", "API_KEY"])
    deploy = f"{emu.url}/workspaces/{ws}/landscape/deploy"
    missing = http.post(deploy)
    assert missing.status_code == 400
    assert missing.json()["title"] == "Invalid templating reference"
    assert "${{ vault.DB_PASSWORD }}" in missing.json()["detail"]
    vault = f"{emu.url}/vault/teams/1/workspaces/{ws}"
    stored = http.post(vault, json={"DB_PASSWORD": "pw-1", "API_KEY": "k-1"})
    assert stored.status_code == 200 and set(stored.json()) == {"DB_PASSWORD", "API_KEY"}
    assert stored.json()["API_KEY"].startswith("1__")
    assert http.post(vault, json={"API_KEY": "k-2"}).json()["API_KEY"].startswith("2__")
    assert http.get(f"{vault}/keys").json() == ["API_KEY", "DB_PASSWORD"]  # never values
    assert http.post(deploy).status_code == 200
    assert emu.workspace(ws).deploys[-1].vault == {"DB_PASSWORD": "pw-1", "API_KEY": "k-2"}
    assert http.post(f"{emu.url}/vault/teams/2/workspaces/{ws}", json={}).status_code == 400
    assert http.delete(vault, json=["API_KEY"]).status_code == 200
    assert emu.vault(ws) == {"DB_PASSWORD": "pw-1"}
    http.delete(f"{emu.url}/workspaces/{ws}")
    assert emu.vault(ws) == {}  # bound to the workspace's lifecycle


def test_a_shared_vault_named_on_create_is_read_by_the_deploy(
    emu: Emulator, http: requests.Session
) -> None:
    emu.defaults_for_new_workspaces(landscape="multi", ci_servers=["web"], vault_refs=["TOKEN"])
    body = {**create_body(), "sharedVaultName": "prod-secrets"}
    refused = http.post(f"{emu.url}/workspaces", json=body)
    assert (refused.status_code, refused.json()["title"]) == (400, "Shared vault not found")
    assert http.post(f"{emu.url}/vault/teams/1/shared", json={"name": "prod-secrets"}).ok
    assert http.get(f"{emu.url}/vault/teams/1/shared").json() == ["prod-secrets"]
    shared = f"{emu.url}/vault/teams/1/shared/prod-secrets"
    assert http.post(f"{shared}/secrets", json={"TOKEN": "t-9"}).ok
    assert http.get(f"{shared}/keys").json() == ["TOKEN"]
    ws = http.post(f"{emu.url}/workspaces", json=body).json()["id"]
    assert emu.workspace(ws).shared_vault_name == "prod-secrets"
    wait_until(lambda: emu.workspace(ws).running)
    assert http.post(f"{emu.url}/workspaces/{ws}/landscape/deploy").ok
    assert emu.workspace(ws).deploys[-1].vault == {"TOKEN": "t-9"}
    assert http.delete(shared).ok and http.get(f"{shared}/keys").status_code == 400


def test_base_images_are_listed_and_a_create_on_another_is_refused(
    emu: Emulator, http: requests.Session
) -> None:
    images = check_shape("GET", "/metadata/workspace-base-images", http.get(
        f"{emu.url}/metadata/workspace-base-images"))  # fmt: skip
    assert [i["id"] for i in images] == ["ubuntu-24.04", "ubuntu-22.04"]
    bad = http.post(f"{emu.url}/workspaces", json={**create_body(), "baseImage": "alpine"})
    assert (bad.status_code, bad.json()["title"]) == (400, "Base image not found")
    body = {**create_body(), "baseImage": "ubuntu-22.04", "cloneDepth": 5, "storageMib": 20480,
            "restricted": True, "vpnConfig": "office"}  # fmt: skip
    ws = emu.workspace(http.post(f"{emu.url}/workspaces", json=body).json()["id"])
    assert (ws.base_image, ws.clone_depth, ws.storage_mib, ws.restricted, ws.vpn_config) == (
        "ubuntu-22.04", 5, 20480, True, "office")  # fmt: skip
    assert emu.spec_violations == []


# -- apps: the load balancer of a path with several workspaces (issue 22) ---------------
def _up(emu: Emulator, http: requests.Session, *names: str) -> list[int]:
    ids = [emu.add_workspace(team_id=1, name=name) for name in names]
    for ws in ids:
        assert http.post(f"{emu.url}/workspaces/{ws}/pipeline/run/start").ok

    def up() -> bool:
        runs = [emu.stage_run(ws, "run") for ws in ids]
        return all(run is not None and run.up_at is not None for run in runs)

    wait_until(up)
    return ids


@pytest.mark.parametrize("balancer", ["sticky", "round_robin"])
def test_a_path_of_several_workspaces_spreads_new_visitors_over_them(
    emu: Emulator, http: requests.Session, balancer: str
) -> None:
    emu.set_variants(balancer=balancer)
    emu.serve_apps()
    blue, green, api = _up(emu, http, "blue", "green", "api")
    emu.add_domain(1, "shop.example.com", {"/": [blue, green], "/api": [api]})
    proxy, host = f"http://{emu.domain_proxy}", {"Host": "shop.example.com"}
    for _ in range(4):  # no cookie: each request a new visitor
        assert requests.get(f"{proxy}/healthz", headers=host, timeout=2).text == "ok"
    assert requests.get(f"{proxy}/api/x", headers=host, timeout=2).ok
    served = [r.workspace_id for r in emu.app_requests if r.listener == "domain-proxy"]
    assert served == [blue, green, blue, green, api]


def test_sticky_keeps_a_visitor_with_its_cookie_on_one_workspace(
    emu: Emulator, http: requests.Session
) -> None:
    emu.serve_apps()
    blue, green = _up(emu, http, "blue", "green")
    emu.add_domain(1, "shop.example.com", {"/": [blue, green]})
    url, host = f"http://{emu.domain_proxy}/", {"Host": "shop.example.com"}
    with requests.Session() as visitor:
        first = visitor.get(url, headers=host, timeout=2)
        assert first.headers["Set-Cookie"] == f"{STICKY_COOKIE}={blue}; Path=/"
        for _ in range(3):
            answer = visitor.get(url, headers=host, timeout=2)
            assert "Set-Cookie" not in answer.headers
        requests.get(url, headers=host, timeout=2)  # another visitor: the next workspace
        served = [r.workspace_id for r in emu.app_requests if r.listener == "domain-proxy"]
        assert served == [blue, blue, blue, blue, green]
        # Its workspace leaves the path: the visitor is placed anew.
        body = {"/": [green]}
        put = f"{emu.url}/domains/team/1/domain/shop.example.com/workspace-connections"
        assert http.put(put, json=body).ok
        moved = visitor.get(url, headers=host, timeout=2)
        assert moved.headers["Set-Cookie"] == f"{STICKY_COOKIE}={green}; Path=/"
        assert emu.app_requests[-1].workspace_id == green


def test_round_robin_ignores_the_cookie(emu: Emulator, http: requests.Session) -> None:
    emu.set_variants(balancer="round_robin")
    emu.serve_apps()
    blue, green = _up(emu, http, "blue", "green")
    emu.add_domain(1, "shop.example.com", {"/": [blue, green]})
    url, host = f"http://{emu.domain_proxy}/", {"Host": "shop.example.com"}
    cookie = {**host, "Cookie": f"{STICKY_COOKIE}={blue}"}
    answers = [requests.get(url, headers=cookie, timeout=2) for _ in range(4)]
    assert all("Set-Cookie" not in a.headers for a in answers)
    served = [r.workspace_id for r in emu.app_requests if r.listener == "domain-proxy"]
    assert served == [blue, green, blue, green]
    with pytest.raises(ValueError, match="balancer"):
        emu.set_variants(balancer="weighted")


def test_a_workspace_that_joins_a_path_warms_up_alone(
    emu: Emulator, http: requests.Session
) -> None:
    """domain_placeholder_seconds counts from the moment a workspace joined the
    path's list: the one that served before answers as it did."""
    emu.set_variants(balancer="round_robin")
    emu.serve_apps(domain_placeholder_seconds=0.4)
    blue, green = _up(emu, http, "blue", "green")
    emu.add_domain(1, "shop.example.com", {"/": [blue]})
    put = f"{emu.url}/domains/team/1/domain/shop.example.com/workspace-connections"
    assert http.put(put, json={"/": [blue, green]}).ok
    url, host = f"http://{emu.domain_proxy}/", {"Host": "shop.example.com"}
    texts = [requests.get(url, headers=host, timeout=2).text for _ in range(2)]
    assert texts[0] == "ok" and "Workspace server is starting" in texts[1]
    time.sleep(0.45)
    assert [requests.get(url, headers=host, timeout=2).text for _ in range(2)] == ["ok", "ok"]


def test_dev_statuses_fail_the_dev_domain_alone(emu: Emulator, http: requests.Session) -> None:
    emu.serve_apps()
    (blue,) = _up(emu, http, "blue")
    emu.add_domain(1, "shop.example.com", {"/": [blue]})
    emu.configure_app(blue, dev_statuses=[503, 200])
    dev = f"http://{emu.workspace(blue).dev_domain}/healthz"
    proxy, host = f"http://{emu.domain_proxy}/healthz", {"Host": "shop.example.com"}
    assert requests.get(dev, timeout=2).status_code == 503
    assert requests.get(proxy, headers=host, timeout=2).status_code == 200
    assert requests.get(dev, timeout=2).status_code == 200  # the last one for good
    emu.configure_app(blue, dev_statuses=None)
    assert requests.get(dev, timeout=2).status_code == 200


@pytest.mark.parametrize(
    ("map_order", "listed"), [("as_written", "cab"), ("sorted", "abc"), ("reversed", "bac")]
)
def test_map_order_lists_a_paths_workspaces_in_its_order(
    emu: Emulator, http: requests.Session, map_order: str, listed: str
) -> None:
    """Every answer that lists the map follows the variant; what is stored (and
    what the domain proxy goes by) stays as written."""
    emu.set_variants(map_order=map_order)
    ws = {name: emu.add_workspace(team_id=1, name=name) for name in "abc"}  # ids a < b < c
    emu.add_domain(1, "shop.example.com", {"/api": [ws["a"]]})
    url = f"{emu.url}/domains/team/1/domain/shop.example.com"
    written = {"/": [ws[n] for n in "cab"], "/api": [ws["a"]]}
    expected = {"/": [ws[n] for n in listed], "/api": [ws["a"]]}
    assert http.put(f"{url}/workspace-connections", json=written).json()["workspaces"] == expected
    assert http.get(url).json()["workspaces"] == expected
    (domain,) = http.get(f"{emu.url}/domains/team/1").json()
    assert domain["workspaces"] == expected
    assert emu.domain(1, "shop.example.com").workspaces == written
    assert emu.response_violations == [] and emu.spec_violations == []


def test_map_order_shuffled_gives_a_new_order_per_answer(
    emu: Emulator, http: requests.Session
) -> None:
    emu.set_variants(map_order="shuffled")
    ids = [emu.add_workspace(team_id=1, name=f"w{i}") for i in range(5)]
    emu.add_domain(1, "shop.example.com", {"/": ids})
    url = f"{emu.url}/domains/team/1/domain/shop.example.com"
    seen = [tuple(http.get(url).json()["workspaces"]["/"]) for _ in range(6)]
    assert len(set(seen)) > 1 and all(sorted(s) == ids for s in seen)
    assert emu.domain(1, "shop.example.com").workspaces == {"/": ids}
    with pytest.raises(ValueError, match="map_order"):
        emu.set_variants(map_order="random")
