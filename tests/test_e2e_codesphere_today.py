"""End to end: releasing on today's Codesphere (issue 20).

The official clients moved on, and so does the action:
- Codesphere's placeholder page: while an app does not listen yet, its dev
  domain (and a custom domain routed to it) answers with a page of the load
  balancer's own, with status 200, 429 or 503 (not documented), as HTML or
  text, saying ``Workspace server is starting`` or ``Too Many Requests``
  (cs-go PR 288). That answer is "not ready yet", never healthy: the domain
  moves, and a check passes, only once the app itself answers;
- the simple flow on a multi-server workspace: it stops the run, deploys the
  landscape and starts the run; meanwhile the status lists no customer server
  for a moment, then the stopped run's ``aborted`` entries, then the new run
  (the emulator's variant ``deploy_status="gap"``). Those entries are the
  stopped run's, not the new run failing, with ``startedAt`` and without, in
  every status variant; the new run's own ``aborted`` still fails the release;
- a server's run that fails or exits on a multi-server workspace shows that
  server's log (``logs/run/{step}/replica/{replica}``, else ``.../server/{server}``,
  the spec's routes for Multi Server Deployments) as a failing prepare step's
  log is shown: bounded, UTF-8 intact, masked, in a group, workflow commands
  stopped; a single-server workspace's run log comes from ``logs/run/{step}``;
- the default API address is ``https://cloud.codesphere.com/api`` (cs-go PR 250,
  the spec's server); the older ``https://codesphere.com/api`` keeps working.
  Without network, the default is seen through a local HTTPS proxy that
  records where the action connects (``CONNECT host:443``) and never speaks TLS.

Each test here failed before the change it covers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator import AppRequest, Emulator, StageRun
from emulator.runner import TOKEN, Runner

from .test_e2e_health import HEALTH, resolve, served
from .test_e2e_variants import (
    CI_SERVERS,
    STAGE_TIMEOUT,
    Case,
    assert_deployed_before_run,
    assert_stages_in_order,
    case,
    make_live,
    running_servers,
)
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs


class ConnectRecorder:
    """An HTTPS proxy on loopback that records each ``CONNECT`` line and its
    headers, accepts it, then sends bytes that are not TLS: the client's
    handshake fails at once, and nothing ever leaves the machine."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []  # the request head, as received
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets(self) -> list[str]:
        """``CONNECT host:port`` of each request (the HTTP version left out)."""
        return [" ".join(head.split("\r\n", 1)[0].split()[:2]) for head in self.requests]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.decode("latin-1"))
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nnot TLS\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ConnectRecorder]:
    recorder = ConnectRecorder()
    yield recorder
    recorder.close()


def proxied(proxy: ConnectRecorder) -> dict[str, str]:
    return {"HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "NO_PROXY": ""}


# ---------------------------------------------------------------- the API address ------
def test_the_default_api_url_is_cloud_codesphere_com(
    tmp_path: Path, proxy: ConnectRecorder
) -> None:
    runner = Runner(tmp_path)
    result = runner.run(
        {"api-token": TOKEN, "workspace-id": "1001", "stage-timeout": "20s"},
        extra=proxied(proxy),
        timeout=40,
    )
    assert result.status == "failed", result.stdout
    assert proxy.targets, "the action never connected"
    assert set(proxy.targets) == {"CONNECT cloud.codesphere.com:443"}
    assert all(TOKEN not in head for head in proxy.requests)  # the proxy never sees it
    assert "https://cloud.codesphere.com/api" in result.assert_one_error()
    result.assert_no_token()


def test_the_old_api_url_is_still_accepted(tmp_path: Path, proxy: ConnectRecorder) -> None:
    runner = Runner(tmp_path)
    inputs = {"api-token": TOKEN, "api-url": "https://codesphere.com/api", "workspace-id": "1001"}
    result = runner.run(inputs, extra=proxied(proxy), timeout=40)
    assert result.status == "failed", result.stdout
    assert set(proxy.targets) == {"CONNECT codesphere.com:443"}
    result.assert_no_token()


# ------------------------------------------------------------ the placeholder page ------
PLACEHOLDER = 1.0  # s after the run is up: the dev domain answers Codesphere's page
WARMING = 0.8  # s after the switch: the domain answers it too
SAID = "Codesphere's placeholder page answered, not the app"
# Every status with both types and both phrases, each value at least twice.
PLACEHOLDERS = [
    pytest.param(status, kind, phrase, id=f"{status}-{kind}-{phrase.split()[0].lower()}")
    for status, kind, phrase in [
        (200, "html", "Workspace server is starting"),
        (200, "text", "Too Many Requests"),
        (429, "html", "Too Many Requests"),
        (429, "text", "Workspace server is starting"),
        (503, "html", "Too Many Requests"),
        (503, "text", "Workspace server is starting"),
    ]
]


def placeholder(status: int, kind: str, phrase: str, **more: float) -> dict[str, Any]:
    return {
        "placeholder_seconds": PLACEHOLDER,
        "placeholder_status": status,
        "placeholder_type": kind,
        "placeholder_phrase": phrase,
        **more,
    }


def hits(emu: Emulator, listener: str) -> list[AppRequest]:
    return [r for r in emu.app_requests if r.listener == listener]


def up(emu: Emulator, ws: int) -> StageRun:
    run = emu.stage_run(ws, "run")
    assert run is not None and run.up_at is not None
    return run


@pytest.mark.parametrize(("status", "kind", "phrase"), PLACEHOLDERS)
def test_zero_downtime_moves_the_domain_only_once_the_app_itself_answers(
    emu: Emulator, runner: Runner, status: int, kind: str, phrase: str
) -> None:
    _old, api = served(emu, **placeholder(status, kind, phrase, domain_placeholder_seconds=WARMING))
    inputs = zd_inputs(emu, domain=DOMAIN, **{**HEALTH, "health-check-timeout": "10s"})
    result = runner.run(inputs, extra=resolve(emu), timeout=60)
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    (switch,) = emu.find_requests("PUT", r"/domains/.*/workspace-connections")
    ready = up(emu, new).up_at + PLACEHOLDER  # type: ignore[operator]
    dev = hits(emu, f"app:{new}")
    assert any(r.placeholder and r.status == status for r in dev), "the variant was not played"
    assert switch.time >= ready, f"the domain moved {ready - switch.time:.2f} s too early"
    last = [r for r in dev if r.time < switch.time][-1]
    assert (last.status, last.placeholder) == (200, False)  # the app's own answer
    assert last.time - ready < 0.6  # noticed within a poll
    proxied = hits(emu, "domain-proxy")
    assert any(r.placeholder for r in proxied), "the domain's placeholder was not played"
    assert (proxied[-1].status, proxied[-1].placeholder) == (200, False)
    assert proxied[-1].time >= switch.time + WARMING
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    # Said once per check (the answer did not change), as what it is.
    said = [line for line in result.stdout.splitlines() if SAID in line]
    assert len(said) == 2, result.stdout
    assert all(f"{status} " in line and phrase in line for line in said), said
    assert all("the app is not listening yet" in line for line in said)
    result.assert_no_token()


@pytest.mark.parametrize(("status", "kind", "phrase"), PLACEHOLDERS)
def test_the_simple_flow_passes_its_health_check_only_once_the_app_answers(
    emu: Emulator, runner: Runner, status: int, kind: str, phrase: str
) -> None:
    emu.serve_apps(**placeholder(status, kind, phrase))
    ws = emu.add_workspace(team_id=1, name="shop")
    make_live(emu, ws)
    inputs = {
        "api-token": TOKEN,
        "api-url": emu.url,
        "workspace-id": str(ws),
        **HEALTH,
        "health-check-timeout": "10s",
    }
    result = runner.run(inputs, timeout=60)
    assert result.returncode == 0, result.stdout
    run = up(emu, ws)
    ready = run.up_at + PLACEHOLDER  # type: ignore[operator]
    dev = [r for r in hits(emu, f"app:{ws}") if r.time >= run.requested_at]
    assert any(r.placeholder and r.status == status for r in dev), "the variant was not played"
    assert (dev[-1].status, dev[-1].placeholder) == (200, False)
    assert dev[-1].time >= ready and dev[-1].time - ready < 0.6
    assert result.ended >= ready
    said = [line for line in result.stdout.splitlines() if SAID in line]
    assert len(said) == 1, result.stdout
    result.assert_no_token()


def test_a_placeholder_that_never_goes_away_fails_before_the_switch(
    emu: Emulator, runner: Runner
) -> None:
    old, api = served(emu, **placeholder(200, "html", "Workspace server is starting"))
    for ws in (old, api):
        emu.configure_app(ws, placeholder_seconds=0)
    emu.defaults_for_new_workspaces(stages={"run": {"seconds": 0.2}})
    emu.serve_apps(placeholder_seconds=3600)
    inputs = zd_inputs(emu, domain=DOMAIN, **{**HEALTH, "health-check-timeout": "2s"})
    result = runner.run(inputs, extra=resolve(emu), timeout=60)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "title=Health check failed" in error
    assert "200 OK: Codesphere's placeholder page" in error and "not listening" in error
    (new,) = created(emu)
    assert emu.workspace(new).deleted
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT", r"/domains/.*")


# ------------------------------------------------------- multi-server, simple flow ------
GAP: dict[str, Any] = {"landscape": "multi", "profile": "prod", "deploy_status": "gap"}
GAP_CASES = [
    case("gap", **GAP),
    case("gap+no_timestamps", timestamps=False, **GAP),
    case("gap+reset", on_start="reset", **GAP),
    case("gap+no_timestamps+reset", timestamps=False, on_start="reset", **GAP),
    case("gap+pod+shuffled", replica_ids="pod", entry_order="shuffled", **GAP),
    case("gap+no_timestamps+pod+customers_first+2_replicas", timestamps=False,
         replica_ids="pod", entry_order="customers_first", replicas=2, **GAP),
    case("gap+stop_latency+idle_empty", stop_latency=0.3, idle_steps="empty", **GAP),
    case("gap+no_timestamps+pending+2_servers", timestamps=False, waiting_state="pending",
         servers=("web", "api"), **GAP),
]  # fmt: skip


def multi_workspace(emu: Emulator, case: Case) -> int:
    ws = emu.add_workspace(
        team_id=1, name="shop", servers=list(case.servers), replicas=case.replicas,
        landscape="multi",
    )  # fmt: skip
    make_live(emu, ws)
    emu.set_ci_servers(ws, CI_SERVERS)  # the pull brings a ci.yml with other servers
    return ws


def simple_inputs(emu: Emulator, ws: int, **more: str) -> dict[str, str]:
    return {
        "api-token": TOKEN,
        "api-url": emu.url,
        "workspace-id": str(ws),
        "profile": "prod",
        "stage-timeout": STAGE_TIMEOUT,
        **more,
    }


def assert_gap_was_played(emu: Emulator, ws: int, start: float) -> None:
    """The action polled while the deploy listed no server and while the stopped
    run's entries were back (the variant really met the wait)."""
    (deploy,) = emu.workspace(ws).deploys
    stale = emu.variants.deploy_stale_seconds
    polls = [r.time for r in emu.find_requests("GET", rf"/workspaces/{ws}/pipeline/run$")]
    assert any(deploy.requested_at <= t < deploy.at for t in polls), "no poll in the gap"
    assert any(max(deploy.at, start) <= t < deploy.at + stale for t in polls), "none after it"


@pytest.mark.parametrize("case", GAP_CASES)
def test_the_simple_flow_recognises_its_run_across_the_deploy_gap(
    emu: Emulator, runner: Runner, case: Case
) -> None:
    emu.set_variants(**case.variants)
    emu.log_stream_max_seconds = 30
    ws = multi_workspace(emu, case)
    before = {s: len(emu.stage_runs(ws, s)) for s in ("prepare", "run")}
    result = runner.run(simple_inputs(emu, ws, profile=case.profile), timeout=40)
    assert result.returncode == 0, result.stdout
    assert "was aborted" not in result.stdout
    run = assert_stages_in_order(emu, ws, ["prepare", "run"], before)
    assert_deployed_before_run(emu, ws, "prod", run)
    assert_gap_was_played(emu, ws, run.requested_at)
    servers = running_servers(emu, ws)
    assert sorted(servers) == sorted(CI_SERVERS), f"running: {servers}"
    assert all(state == "running" for states in servers.values() for state in states)
    assert run.up_at is not None and result.ended - run.up_at <= 3.5
    result.assert_no_token()


@pytest.mark.parametrize("case", GAP_CASES[:4])
def test_zero_downtime_across_the_deploy_gap(emu: Emulator, runner: Runner, case: Case) -> None:
    emu.set_variants(**case.variants)
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    emu.defaults_for_new_workspaces(landscape="multi", ci_servers=CI_SERVERS)
    inputs = zd_inputs(emu, domain=DOMAIN, profile="prod", **{"stage-timeout": STAGE_TIMEOUT})
    result = runner.run(inputs, timeout=40)
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    run = assert_stages_in_order(emu, new, ["prepare", "run"])
    assert_deployed_before_run(emu, new, "prod", run)
    assert sorted(running_servers(emu, new)) == sorted(CI_SERVERS)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}


@pytest.mark.parametrize("timestamps", [True, False], ids=["timestamps", "no_timestamps"])
def test_the_new_runs_own_abort_still_fails_the_release(
    emu: Emulator, runner: Runner, timestamps: bool
) -> None:
    emu.set_variants(deploy_status="gap", timestamps=timestamps)
    ws = multi_workspace(emu, Case("gap", {"deploy_status": "gap"}, "multi", profile="prod"))
    emu.configure_stage(ws, "run", seconds=2.0)
    runs = len(emu.stage_runs(ws, "run"))
    proc = runner.start(simple_inputs(emu, ws))
    deadline = time.monotonic() + 20
    while not ((run := emu.stage_run(ws, "run")) and run.number > runs and run.started_at):
        assert time.monotonic() < deadline and proc.poll() is None, "the new run never started"
        time.sleep(0.02)
    time.sleep(0.4)  # the action has seen the new run's entries
    with requests.Session() as http:  # someone stops it in Codesphere
        assert http.post(
            f"{emu.url}/workspaces/{ws}/pipeline/run/stop",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).ok
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, stdout
    assert "stage run was aborted" in stdout


# --------------------------------------------------- a failing server's own log ------
SECRET = "s3cr3t-Passw0rd-771"
UTF8 = "✅ Fehler: Datei »config.yml« fehlt — ошибка"
COMMAND = "::set-output name=hijack::yes"


def log_lines_shown(stdout: str, title: str) -> list[str]:
    """The lines of the log group whose title starts with ``title``, between the
    stop-commands token lines."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"::group::{title}"))
    assert lines[start + 1].startswith("::stop-commands::"), lines[start : start + 2]
    token = lines[start + 1].split("::")[2]
    end = lines.index(f"::{token}::", start)
    assert lines[end + 1] == "::endgroup::"
    return lines[start + 2 : end]


def multi_zd(emu: Emulator, runner: Runner, replicas: int = 1, **run: Any) -> tuple[Any, int]:
    """A zero-downtime release onto a multi-server landscape (web, worker) whose
    run stage behaves as ``run`` says (configure_stage keywords)."""
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    emu.defaults_for_new_workspaces(landscape="multi", ci_servers=CI_SERVERS, stages={"run": run})
    inputs = zd_inputs(
        emu,
        domain=DOMAIN,
        replicas=str(replicas),
        **{"stage-timeout": STAGE_TIMEOUT, "secret-env": f"KEY={SECRET}"},
    )
    result = runner.run(inputs, timeout=40)
    (new,) = created(emu)
    return result, new


def test_a_failing_server_of_a_multi_server_workspace_shows_its_own_log(
    emu: Emulator, runner: Runner
) -> None:
    noise = [f"worker: step 1 line {i}" for i in range(150)]
    result, new = multi_zd(
        emu, runner, fail_step=1, fail_entries=[("worker", 0)],
        error_lines=[*noise, COMMAND, f"login with {SECRET} refused", UTF8],
    )  # fmt: skip
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "stage run failed at step 2 of 2 on worker (replica 0)" in error
    assert UTF8 in error
    # Replica "0" is web's too, so it does not name one replica: the server's log.
    reads = emu.find_requests("GET", rf"/workspaces/{new}/logs/run/.*")
    assert [r.path for r in reads] == [f"/workspaces/{new}/logs/run/1/server/worker"]
    shown = log_lines_shown(result.stdout, "Log of run step 2 on worker (replica 0)")
    assert "(last 100 lines)" in result.stdout  # bounded
    assert len(shown) == 100 and shown[-1] == UTF8  # UTF-8 intact
    assert COMMAND in shown  # printed, with workflow commands stopped
    assert "login with *** refused" in shown  # masked
    assert not any("[run web]" in line for line in shown)  # not another server's
    result.assert_no_token()
    assert SECRET not in result.stdout.replace(f"::add-mask::{SECRET}", "")


def test_a_failing_replica_with_a_pod_name_shows_that_replicas_log(
    emu: Emulator, runner: Runner
) -> None:
    emu.set_variants(replica_ids="pod")
    result, new = multi_zd(
        emu, runner, 2, fail_step=1, fail_entries=[("web", 1)], error_lines=["bind: port in use"]
    )  # fmt: skip
    assert result.status == "failed", result.stdout
    pod = emu.workspace(new).pods[("web", 1)]
    error = result.assert_one_error()
    assert f"on web (replica {pod})" in error and "bind: port in use" in error
    # A pod name names one replica: its own log, by the route the official CLI reads.
    reads = emu.find_requests("GET", rf"/workspaces/{new}/logs/run/.*")
    assert [r.path for r in reads] == [f"/workspaces/{new}/logs/run/1/replica/{pod}"]
    shown = log_lines_shown(result.stdout, f"Log of run step 2 on web (replica {pod})")
    assert shown[-1] == "bind: port in use"


def test_servers_that_exit_show_the_log_of_their_last_step(emu: Emulator, runner: Runner) -> None:
    result, new = multi_zd(emu, runner, exits=True)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "ended (its servers exited) instead of staying up" in error
    assert "exited with code 0" in error
    reads = emu.find_requests("GET", rf"/workspaces/{new}/logs/run/1/.*")
    assert [r.path for r in reads] == [f"/workspaces/{new}/logs/run/1/server/web"]
    (title,) = [line for line in result.stdout.splitlines() if "::group::Log of run" in line]
    assert title.startswith("::group::Log of run step 2 on ")
    assert emu.domain(TEAM, DOMAIN).workspaces != {"/": [new]}


def test_a_single_server_run_failure_reads_the_plain_run_log(emu: Emulator, runner: Runner) -> None:
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    emu.defaults_for_new_workspaces(stages={"run": {"fail_step": 0, "error_lines": [UTF8]}})
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"stage-timeout": STAGE_TIMEOUT}))
    assert result.status == "failed", result.stdout
    assert UTF8 in result.assert_one_error()
    (new,) = created(emu)
    reads = emu.find_requests("GET", rf"/workspaces/{new}/logs/run/.*")
    assert [r.path for r in reads] == [f"/workspaces/{new}/logs/run/0"]
    assert log_lines_shown(result.stdout, "Log of run step 1 on web")[-1] == UTF8
