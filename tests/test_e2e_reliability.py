"""End to end: faults, redirects, cancellation, bad input and secrets."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from emulator import Emulator
from emulator.runner import TOKEN, Runner

from .test_e2e_zero_downtime import DOMAIN, TEAM, created, live_setup, zd_inputs


@pytest.fixture
def slow_emu() -> Iterator[Emulator]:
    """Stages long enough for a few dozen status polls, so fault rates show."""
    with Emulator(
        token=TOKEN,
        workspace_start_seconds=2.0,
        stage_seconds={"prepare": 2.5, "test": 1.5, "run": 1.0},
    ) as emulator:
        yield emulator
        emulator.assert_clean()


@pytest.mark.slow
def test_release_survives_a_fifth_of_gets_failing_429_redirects_and_a_dropped_create(
    slow_emu: Emulator, runner: Runner
) -> None:
    emu = slow_emu
    _old, api = live_setup(emu)
    # About every 5th GET fails: 502 on every 5th stage status, 503 on every 3rd
    # workspace status, a dropped connection on every 3rd of the rest (domain, team
    # list, workspace, git head), which are rarer.
    flaky = [
        emu.add_fault("status", method="GET", path="/pipeline/", status=502, every=5, times=None),
        emu.add_fault("status", method="GET", path="/status$", status=503, every=3, times=None),
        emu.add_fault(
            "drop_before", method="GET", path="^(?!.*(/pipeline/|/status$))", every=3, times=None
        ),
    ]
    limited = emu.add_fault("429", method="GET", path=r"/pipeline/prepare$", skip=1, retry_after=1)
    moved = emu.add_fault("redirect", method="GET", path=r"/pipeline/", times=2, target="second")
    dropped = emu.add_fault("drop_after", method="POST", path=r"^/workspaces$")
    result = runner.run(zd_inputs(emu, domain=DOMAIN, test="true"))
    assert result.returncode == 0, result.stdout
    # Exactly one new workspace, and it serves the domain.
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    # The faults really fired: about a fifth of the GETs failed.
    gets = emu.find_requests("GET")
    failed = sum(rule.hits for rule in flaky)
    assert all(rule.hits >= 1 for rule in flaky)
    assert 0.15 <= failed / len(gets) <= 0.25, (failed, len(gets))
    assert (limited.hits, moved.hits, dropped.hits) == (1, 2, 1)
    # After the 429 the next request came at least Retry-After (1 s) later.
    requests = emu.requests
    index = next(i for i, r in enumerate(requests) if r.fault == "429")
    assert requests[index + 1].time - requests[index].time >= 1.0
    # The redirects went to the second port of the same host, with the token.
    second = emu.find_requests(listener="second")
    assert len(second) == 2
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in second)
    result.assert_no_token()
    print(f"faults injected and survived: {emu.faults_injected} in {len(emu.requests)} requests")


def test_redirect_to_another_host_fails_and_the_token_never_goes_there(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace()
    emu.add_fault("redirect", method="GET", path=rf"/workspaces/{ws}$", target="foreign")
    result = runner.run({"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(ws)})
    assert result.returncode != 0
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "redirected to http://127.0.0.2" in error and "the token is not sent there" in error
    assert emu.foreign_requests == []  # refused before anything was sent
    result.assert_no_token()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cancel_during_a_long_prepare_cleans_up_within_two_seconds(
    emu: Emulator, runner: Runner, sig: signal.Signals
) -> None:
    old, api = live_setup(emu)
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    proc = runner.start(zd_inputs(emu, domain=DOMAIN))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ids = created(emu)
        run = emu.stage_run(ids[0], "prepare") if ids else None
        if run is not None and run.started_at is not None:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("prepare never started")
    result, took = runner.cancel(proc, sig)
    assert took < 2.0, f"took {took:.2f} s to stop"
    assert result.returncode != 0
    assert result.status == "cancelled"
    error = result.assert_one_error()
    assert f"cancelled ({sig.name} received)" in error
    (new,) = ids
    assert emu.workspace(new).deleted
    assert f"The new workspace {new} was deleted; the domain {DOMAIN} is untouched" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT")
    result.assert_no_token()


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({"api-token": ""}, "input 'api-token' is empty"),
        ({"team-id": "seven"}, "input 'team-id' is 'seven'"),
        ({"plan-id": "8.5"}, "input 'plan-id' is '8.5'"),
        ({"workspace-id": "1e3", "flow": "simple"}, "input 'workspace-id' is '1e3'"),
        ({"flow": "blue-green"}, "input 'flow' is 'blue-green'"),
        ({"api-url": "http://codesphere.com/api"}, "expected an https URL"),
        ({"replicas": "0"}, "input 'replicas' is '0'"),
        ({"stage-timeout": "5 min"}, "input 'stage-timeout' is '5 min'"),
        ({"workspace-timeout": "forever"}, "input 'workspace-timeout' is 'forever'"),
        ({"delete-previous": "yes"}, "input 'delete-previous' is 'yes'"),
        ({"env": "GOOD=1\n9LIVES=x"}, "input 'env' is 'line 2': expected NAME=value"),
        ({"domain": "shop..example.com"}, "input 'domain' is 'shop..example.com'"),
        ({"profile": "prod;rm"}, "input 'profile' is 'prod;rm'"),
        ({"bake-time": "soon"}, "input 'bake-time' is 'soon'"),
        ({"bake-time": "5m"}, "the bake checks health-check-path, which is not set"),
        ({"flow": "canary", "switch": "false"}, "input 'switch' is 'false'"),
    ],
)
def test_each_invalid_input_is_refused_with_zero_requests(
    emu: Emulator, runner: Runner, inputs: dict[str, str], needle: str
) -> None:
    result = runner.run({**zd_inputs(emu, domain=DOMAIN), **inputs})
    assert result.returncode != 0
    assert result.status == "failed"
    assert needle in result.assert_one_error()
    assert emu.requests == []
    result.assert_no_token()


def test_secret_env_values_never_appear_in_the_log(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    secret = "s3cr3t-database-password"
    emu.defaults_for_new_workspaces(
        stages={"prepare": {"fail_step": 0, "error_lines": [f"cannot connect with {secret}"]}}
    )
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"secret-env": f"DB_PASSWORD={secret}"}))
    assert result.status == "failed"
    for line in result.stdout.splitlines():
        assert secret not in line or line == f"::add-mask::{secret}"
    assert "cannot connect with ***" in result.stdout


@pytest.mark.parametrize(
    ("fault", "within"),
    [
        # The create lands at once, its answer is held back: the cancel arrives meanwhile.
        ("slow_answer", 2.0),
        # The create lands 2 s after the cancel: the cleanup keeps looking for it
        # within the runner's window (7.5 s after SIGINT).
        ("delay", 7.5),
    ],
)
def test_cancel_while_the_create_is_in_flight_deletes_what_it_made(
    emu: Emulator, runner: Runner, fault: str, within: float
) -> None:
    old, api = live_setup(emu)
    emu.add_fault(
        fault, method="POST", path=r"^/workspaces$", seconds=2.2 if fault == "delay" else 30
    )
    proc = runner.start(zd_inputs(emu, domain=DOMAIN))
    deadline = time.monotonic() + 20
    while not emu.find_requests("POST", "/workspaces") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert took < within, f"took {took:.2f} s"
    assert result.status == "cancelled"
    made = [ws for ws in emu.workspaces(TEAM, include_deleted=True) if ws.created_via == "api"]
    assert len(made) == 1, made  # the create really landed
    assert made[0].deleted
    assert f"The new workspace {made[0].id} was deleted" in result.assert_one_error()
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}


def test_a_status_call_that_keeps_failing_counts_against_the_deadline(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace(running=False)
    emu.add_fault("status", method="GET", path=r"/status$", status=503, times=None)
    result = runner.run(
        {
            "api-token": TOKEN,
            "api-url": emu.url,
            "workspace-id": str(ws),
            "workspace-timeout": "3s",
        }
    )
    assert result.status == "failed" or result.status == "timed-out"
    assert result.seconds < 3 + 3
