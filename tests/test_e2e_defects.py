"""End to end: the behaviour issue 10 requires, one test (or parametrized test) per defect.

Each test states what the action MUST do; they fail against the action as it was when
they were written, and pass once it is fixed. They assert only on outputs, the exit
code, timing, the emulator's state and requests, and a few stable phrases of the
``::error`` line.
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from emulator import Emulator
from emulator.runner import SHA, TOKEN, ActionRun, Runner

from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, created, live_setup, zd_inputs

STAGING = "staging.example.com"


# ---------------------------------------------------------------------------- helpers -----
@contextmanager
def started(
    runner: Runner, inputs: dict[str, str], extra: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """The action as a background process; killed at the end if it is still running."""
    proc = runner.start(inputs, extra)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def wait_for(
    predicate: Callable[[], Any], proc: subprocess.Popen[str], what: str, timeout: float = 20
) -> Any:
    """Poll ``predicate`` until it is truthy; fail if the action exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            stdout, _ = proc.communicate()
            pytest.fail(f"the action exited (code {proc.returncode}) before {what}:\n{stdout}")
        time.sleep(0.02)
    pytest.fail(f"{what} did not happen within {timeout} s")


def prepare_started_with_log_open(emu: Emulator) -> int | None:
    """The new workspace's id once its prepare runs and its step-0 log was requested."""
    ids = created(emu)
    if not ids:
        return None
    run = emu.stage_run(ids[0], "prepare")
    if run is None or run.started_at is None:
        return None
    logs = emu.find_requests("GET", rf"/workspaces/{ids[0]}/logs/prepare/0")
    return ids[0] if logs else None


def prepare_running(emu: Emulator) -> int | None:
    ids = created(emu)
    run = emu.stage_run(ids[0], "prepare") if ids else None
    return ids[0] if run is not None and run.started_at is not None else None


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_cancelled_cleanly(
    result: ActionRun, emu: Emulator, new: int, sig: signal.Signals, domain_map: dict[str, Any]
) -> None:
    assert result.returncode != 0
    assert result.status == "cancelled"
    error = result.assert_one_error()
    assert f"cancelled ({sig.name} received)" in error
    assert emu.workspace(new).deleted
    assert emu.domain(TEAM, DOMAIN).workspaces == domain_map
    assert not emu.find_requests("PUT")
    result.assert_no_token()


# ------------------------------------------------ 1. cancel with a log stream open -------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("log_end", ["open_silent", "open_keepalive"])
def test_cancel_with_a_log_stream_open_exits_within_two_seconds(
    emu: Emulator, runner: Runner, log_end: str, sig: signal.Signals
) -> None:
    old, api = live_setup(emu)
    emu.set_variants(log_end=log_end)
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    with started(runner, zd_inputs(emu, domain=DOMAIN)) as proc:
        new = wait_for(
            lambda: prepare_started_with_log_open(emu), proc, "prepare with its log open"
        )
        result, took = runner.cancel(proc, sig)
    assert took < 2.0, f"took {took:.2f} s to stop"
    assert_cancelled_cleanly(result, emu, new, sig, {"/": [old], "/api": [api]})


# ------------------------------------------------ 2. stage-timeout with a silent stream ---
def test_stage_timeout_is_kept_while_a_log_stream_stays_open(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    emu.set_variants(log_end="open_silent")
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    with started(runner, zd_inputs(emu, domain=DOMAIN, **{"stage-timeout": "3s"})) as proc:
        stdout, stderr = proc.communicate(timeout=30)
        exited = time.monotonic()
    result = runner.result(proc.returncode, stdout, stderr, 0.0)
    (start,) = emu.find_requests("POST", r"/workspaces/\d+/pipeline/prepare/start")
    assert result.status == "timed-out"
    assert exited - start.time <= 3 + 2, f"reported {exited - start.time:.1f} s after the start"
    assert "did not finish within 3.0 s" in result.assert_one_error()


# ------------------------------------------------ 3. a release never waits for a stream ---
def test_release_does_not_wait_for_a_log_stream_that_stays_open(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    emu.set_variants(log_end="open_silent")
    emu.log_stream_max_seconds = 60
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 1.0}})
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=20)
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert result.seconds < 10, f"the release took {result.seconds:.1f} s"


# ------------------------------------------------ 4. which workspaces may be deleted ------
def test_never_deletes_a_namesake_that_serves_another_domain(emu: Emulator, runner: Runner) -> None:
    _old, api = live_setup(emu)
    namesake = emu.add_workspace(team_id=TEAM, name=NAME)
    emu.add_domain(TEAM, STAGING, {"/": [namesake]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    assert not emu.workspace(namesake).deleted
    assert not emu.find_requests("DELETE", rf"/workspaces/{namesake}")
    (new,) = created(emu)
    assert emu.workspace(new).name == f"{NAME}-2"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert emu.domain(TEAM, STAGING).workspaces == {"/": [namesake]}
    assert STAGING in result.stdout


def test_a_release_without_domain_run_twice_keeps_the_first_workspace(
    emu: Emulator, runner: Runner
) -> None:
    first = runner.run(zd_inputs(emu))
    assert first.returncode == 0, first.stdout
    (released,) = created(emu)
    again = runner.run(zd_inputs(emu))
    assert again.returncode == 0, again.stdout
    assert not emu.workspace(released).deleted
    assert not emu.find_requests("DELETE", rf"/workspaces/{released}")
    assert len(emu.workspaces(TEAM, name=NAME)) <= 1


def test_a_fixed_workspace_name_releases_a_new_commit_and_keeps_the_old_one(
    emu: Emulator, runner: Runner
) -> None:
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    inputs = zd_inputs(emu, domain=DOMAIN, **{"workspace-name": "shop-live"})
    first = runner.run(inputs)
    assert first.returncode == 0, first.stdout
    (release1,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [release1]}
    second_sha = "9" * 40
    assert second_sha != SHA
    second = runner.run(inputs, extra={"GITHUB_SHA": second_sha})
    assert second.returncode == 0, second.stdout
    assert not emu.workspace(release1).deleted
    release2 = [ws for ws in created(emu) if ws != release1]
    assert len(release2) == 1, f"expected one new workspace for the new commit: {release2}"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [release2[0]]}
    assert second.outputs["workspace-id"] == str(release2[0])
    assert second.outputs["previous-workspace-id"] == str(release1)


def test_delete_previous_keeps_a_workspace_that_serves_another_domain(
    emu: Emulator, runner: Runner
) -> None:
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    emu.add_domain(TEAM, DOMAIN, {"/": [old]})
    emu.add_domain(TEAM, STAGING, {"/": [old]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}
    assert not emu.workspace(old).deleted
    assert not emu.find_requests("DELETE", rf"/workspaces/{old}")
    assert emu.domain(TEAM, STAGING).workspaces == {"/": [old]}


def test_never_deletes_a_namesake_made_by_hand(emu: Emulator, runner: Runner) -> None:
    _old, api = live_setup(emu)
    by_hand = emu.add_workspace(team_id=TEAM, name=NAME)  # no mark of the action, serves nothing
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    assert not emu.workspace(by_hand).deleted
    (new,) = created(emu)
    assert emu.workspace(new).name == f"{NAME}-2"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}


# ------------------------------------------------ 5. env values and secret-env ------------
def test_env_values_are_not_secrets_and_secret_env_is(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    emu.defaults_for_new_workspaces(dev_domain_template="{id}-3000.dc{dc}.codesphere.test")
    result = runner.run(
        zd_inputs(
            emu,
            domain=DOMAIN,
            env="PORT=3000\nNODE_ENV=production-x1",
            **{"secret-env": "DB_PASSWORD=s3cr3t-pw-91"},
        )
    )
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    url = result.outputs["workspace-url"]
    assert url == f"https://{emu.workspace(new).dev_domain}"
    assert "3000" in url and "***" not in url
    assert "::add-mask::3000" not in result.stdout
    assert "::add-mask::production-x1" not in result.stdout
    dev_domain = emu.workspace(new).dev_domain
    for line in result.stdout.splitlines():
        assert "3000" not in line.replace(dev_domain, ""), f"env value printed: {line}"
        assert "production-x1" not in line, f"env value printed: {line}"
    env = dict(emu.workspace(new).env)
    assert env.pop("CODESPHERE_RELEASE").startswith("repo=acme/shop flow=zero-downtime")
    assert env == {"PORT": "3000", "NODE_ENV": "production-x1", "DB_PASSWORD": "s3cr3t-pw-91"}
    secret = "s3cr3t-pw-91"
    assert f"::add-mask::{secret}" in result.stdout
    for line in result.stdout.splitlines():
        assert secret not in line or line == f"::add-mask::{secret}", f"secret in: {line}"
    assert secret not in result.summary
    assert all(secret not in value for value in result.outputs.values())
    result.assert_no_token()


# ------------------------------------------------ 6. create twins -------------------------
def test_create_answered_502_after_it_landed_leaves_exactly_one_workspace(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    fault = emu.add_fault("status_after", method="POST", path=r"^/workspaces$", status=502)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert fault.hits == 1
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert len(emu.workspaces(TEAM, name=NAME)) == 1
    time.sleep(1)
    (live,) = emu.workspaces(TEAM, name=NAME)
    assert result.outputs["workspace-id"] == str(live.id)


@pytest.mark.parametrize("status", [408, 409])
def test_create_answered_4xx_by_a_proxy_after_it_landed_leaves_nothing(
    emu: Emulator, runner: Runner, status: int
) -> None:
    """A 4xx that is not Codesphere turning the create down (a proxy's 408, a 409)
    may come after the workspace was made: the failed release deletes it."""
    live_setup(emu)
    fault = emu.add_fault(
        "status_after",
        method="POST",
        path=r"^/workspaces$",
        status=status,
        body=f'{{"status": {status}, "title": "proxy"}}',
        content_type="application/json",
    )
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert fault.hits == 1
    assert result.status == "failed", result.stdout
    assert str(status) in result.assert_one_error()
    assert emu.workspaces(TEAM, name=NAME) == [], "the workspace the create made was left"
    assert "was deleted" in result.stdout


@pytest.mark.slow
def test_create_that_lands_after_a_504_leaves_at_most_one_workspace(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    fault = emu.add_fault("late_commit", method="POST", path=r"^/workspaces$", seconds=3)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert fault.hits == 1

    def check() -> None:
        live = emu.workspaces(TEAM, name=NAME)
        assert len(live) <= 1, f"twins: {[ws.id for ws in live]}"
        if result.status == "success":
            assert [str(ws.id) for ws in live] == [result.outputs["workspace-id"]]
        else:
            assert live == [], f"a failed release left workspace {[ws.id for ws in live]}"

    check()
    time.sleep(5)
    check()


@pytest.mark.slow
def test_create_that_lands_after_35_seconds_leaves_exactly_one_workspace(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    emu.add_fault("delay", method="POST", path=r"^/workspaces$", seconds=35)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=120)
    assert len(emu.workspaces(TEAM, name=NAME)) == 1
    assert result.returncode == 0, result.stdout
    time.sleep(1)
    assert len(emu.workspaces(TEAM, name=NAME)) == 1


# ------------------------------------------------ 7. cleanup after a cancel ---------------
@pytest.mark.parametrize("fault", ["slow_answer", "first_delete_502"])
def test_cleanup_after_cancel_deletes_the_workspace_despite_a_slow_or_failed_delete(
    emu: Emulator, runner: Runner, fault: str
) -> None:
    old, api = live_setup(emu)
    emu.defaults_for_new_workspaces(stages={"prepare": {"seconds": 60}})
    if fault == "slow_answer":
        emu.add_fault("slow_answer", method="DELETE", path=r"^/workspaces/\d+$", seconds=1.5)
    else:
        emu.add_fault("status", method="DELETE", path=r"^/workspaces/\d+$", status=502, times=1)
    with started(runner, zd_inputs(emu, domain=DOMAIN)) as proc:
        new = wait_for(lambda: prepare_running(emu), proc, "prepare running")
        result, took = runner.cancel(proc, signal.SIGINT, timeout=15)
    assert took <= 7.5, f"took {took:.2f} s to stop"
    assert result.status == "cancelled"
    assert emu.workspace(new).deleted
    error = result.assert_one_error()
    assert "was deleted" in error
    assert "by hand" not in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}


# ------------------------------------------------ 8. cancel during the domain switch ------
def test_cancel_during_a_slow_domain_switch_reports_the_switch(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live_setup(emu)
    emu.add_fault("slow_answer", method="PUT", path=r"/workspace-connections$", seconds=20)
    with started(runner, zd_inputs(emu, domain=DOMAIN)) as proc:
        wait_for(lambda: emu.find_requests("PUT"), proc, "the domain switch", timeout=30)
        result, took = runner.cancel(proc, signal.SIGINT, timeout=15)
    assert took <= 7.5, f"took {took:.2f} s to stop"
    assert result.status == "cancelled"
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert result.outputs["previous-workspace-id"] == str(old)
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/"
    assert not emu.workspace(new).deleted  # it serves the domain


# ------------------------------------------------ 9. Retry-After: 0 -----------------------
def test_retry_after_zero_is_not_a_busy_loop(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    route = r"^/workspaces/\d+/pipeline/prepare$"
    fault = emu.add_fault("429", method="GET", path=route, retry_after=0, times=8)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=90)
    assert result.returncode == 0, result.stdout
    assert fault.hits == 8
    times = [r.time for r in emu.find_requests("GET", route[1:-1])]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1, f"requests {min(gaps) * 1000:.0f} ms apart"
    # "Retry-After: 0" is no licence to go faster than the backoff: it grows.
    assert times[8] - times[0] >= 2.0, f"8 retries in {times[8] - times[0]:.2f} s"


# ------------------------------------------------ 10. redirect token policy ---------------
def test_redirect_to_a_look_alike_host_is_refused(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    emu.add_fault(
        "redirect",
        method="GET",
        path=rf"^/workspaces/{ws}$",
        location=f"https://1.0.0.1/api/workspaces/{ws}",
    )
    result = runner.run(
        {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(ws)}, timeout=40
    )
    assert result.returncode != 0, result.stdout
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "redirect" in error and "not sent" in error
    result.assert_no_token()


# ------------------------------------------------ 11. an HTML page answering 200 ----------
HTML = "<html><body>Sign in</body></html>"


def test_teardown_does_not_take_an_html_page_for_an_empty_team(
    emu: Emulator, runner: Runner
) -> None:
    preview = emu.add_workspace(team_id=TEAM, name="shop-pr-9")
    emu.add_fault(
        "status",
        method="GET",
        path=r"^/workspaces/team/\d+$",
        status=200,
        body=HTML,
        content_type="text/html",
        times=None,
    )
    inputs = {
        "api-token": TOKEN,
        "api-url": emu.url,
        "flow": "teardown",
        "team-id": str(TEAM),
        "workspace-name": "shop-pr-9",
    }
    result = runner.run(inputs, timeout=40)
    assert result.returncode != 0, result.stdout
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "HTML" in error and "api-url" in error
    assert not emu.workspace(preview).deleted


def test_simple_flow_reports_an_html_page_as_such(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    emu.add_fault(
        "status",
        method="GET",
        path=r"^/workspaces/\d+$",
        status=200,
        body=HTML,
        content_type="text/html",
        times=None,
    )
    result = runner.run(
        {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(ws)}, timeout=40
    )
    assert result.returncode != 0, result.stdout
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "HTML" in error and "api-url" in error
    assert "Internal error" not in result.stdout and "bug" not in error


# ------------------------------------------------ 12. an unreachable API ------------------
@pytest.mark.slow
@pytest.mark.parametrize("where", ["closed_port", "unresolvable"])
def test_unreachable_api_fails_fast_naming_api_url(runner: Runner, where: str) -> None:
    if where == "closed_port":
        api_url = f"http://127.0.0.1:{free_port()}/api"
    else:
        api_url = "https://codesphere.invalid/api"
    result = runner.run(
        {"api-token": TOKEN, "api-url": api_url, "workspace-id": "1001"}, timeout=40
    )
    assert result.returncode != 0
    assert result.status == "failed"
    assert result.seconds < 15, f"took {result.seconds:.1f} s"
    error = result.assert_one_error()
    assert "api-url" in error
    if where == "closed_port":
        assert "refused" in error
    if result.seconds > 5:
        assert any("retrying" in line for line in result.stdout.splitlines())
    result.assert_no_token()


# ------------------------------------------------ review: waits and requests -------------
def test_a_slow_log_answer_still_shows_the_failing_steps_error_line(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    line = "npm ERR! missing script: build"
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0, "error_lines": [line]}})
    emu.add_fault("delay", method="GET", path=r"/logs/prepare/", seconds=1.5, times=None)
    result = runner.run(zd_inputs(emu, domain=DOMAIN), timeout=60)
    assert result.status == "failed"
    assert line in result.assert_one_error()


def test_a_landscape_deploy_that_keeps_failing_ends_with_its_stage(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace(team_id=1, name="shop", landscape="multi")
    emu.add_fault("status", method="POST", path=r"/landscape/deploy", status=503, times=None)
    inputs = {
        "api-token": TOKEN,
        "api-url": emu.url,
        "workspace-id": str(ws),
        "prepare": "false",
        "stage-timeout": "4s",
    }
    result = runner.run(inputs, timeout=60)
    assert result.status == "failed"
    assert result.seconds < 4 + 3, f"took {result.seconds:.1f} s"
    error = result.assert_one_error()
    assert "503" in error and "Check the run section" not in error
