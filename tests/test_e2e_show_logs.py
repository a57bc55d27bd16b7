"""End to end: ``show-logs`` (issue 23), across the ways a log stream may end.

``failure`` (the default) shows the failing step's log only; ``always`` shows
every step's log of every stage that ran, each in a collapsed group of its own,
bounded and masked like the failing step's. No document says when a step's log
stream ends (with the step, right after its last line, cut by a proxy, or never:
silent or with heartbeats), so each case runs under every ``log_end`` variant
the emulator plays.
"""

from __future__ import annotations

import re

import pytest

from emulator import Emulator
from emulator.runner import ActionRun, Runner

from .test_e2e_codesphere_today import COMMAND, SECRET, UTF8, log_lines_shown
from .test_e2e_simple import simple_inputs
from .test_e2e_variants import CI_SERVERS
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs

LOG_ENDS = [
    pytest.param({}, id="with_step"),
    pytest.param({"log_end": "after_last_line"}, id="after_last_line"),
    pytest.param({"log_end": "cut", "log_cut_seconds": 0.05}, id="cut"),
    pytest.param({"log_end": "open_silent"}, id="open_silent"),
    pytest.param({"log_end": "open_keepalive", "line_ending": "\r\n"}, id="open_keepalive+crlf"),
]
LINE_BYTES = 4096


def groups(result: ActionRun) -> list[str]:
    """The titles of the step-log groups, in order."""
    return [
        line.removeprefix("::group::")
        for line in result.stdout.splitlines()
        if line.startswith("::group::Log of ")
    ]


def default_lines(stage: str, step: int, server: str = "", *, last: bool = False) -> list[str]:
    """What the emulator's step logs by default (its ``_default_logs``): ``step``
    counts from 1, as the log groups' titles do."""
    where = f"[{stage} {server}]" if server else f"[{stage}]"
    if stage == "run" and last:
        return [
            f"{where} step {step}: starting server",
            f"{where} step {step}: listening on port 3000",
        ]
    return [f"{where} step {step}: running", f"{where} step {step}: done"]


@pytest.mark.parametrize("variants", LOG_ENDS)
def test_always_shows_each_stages_step_logs_in_a_group_of_its_own(
    emu: Emulator, runner: Runner, variants: dict[str, object]
) -> None:
    emu.set_variants(**variants)
    ws = emu.add_workspace()
    result = runner.run(simple_inputs(emu, ws, test="true", **{"show-logs": "always"}))
    assert result.status == "success", result.stdout
    assert groups(result) == [
        f"Log of {stage} step {step} (last 2 lines)"
        for stage in ("prepare", "test", "run")
        for step in (1, 2)
    ]
    for stage in ("prepare", "test", "run"):
        for step in (1, 2):
            shown = log_lines_shown(result.stdout, f"Log of {stage} step {step} ")
            assert shown == default_lines(stage, step, last=step == 2)
    # Each group after its stage's phase group: GitHub's groups do not nest.
    lines = result.stdout.splitlines()
    for stage in ("prepare", "test", "run"):
        ended = next(
            i for i, line in enumerate(lines) if line.startswith(f"Stage {stage}: success")
        )
        first = lines.index(f"::group::Log of {stage} step 1 (last 2 lines)")
        assert lines[ended + 1] == "::endgroup::" and first > ended
    result.assert_no_token()


@pytest.mark.parametrize("variants", LOG_ENDS[:1] + LOG_ENDS[3:4])
def test_failure_the_default_shows_no_log_on_success(
    emu: Emulator, runner: Runner, variants: dict[str, object]
) -> None:
    emu.set_variants(**variants)
    ws = emu.add_workspace()
    result = runner.run(simple_inputs(emu, ws, test="true"))
    assert result.status == "success", result.stdout
    assert groups(result) == []
    assert "step 1: running" not in result.stdout
    explicit = runner.run(simple_inputs(emu, ws, **{"show-logs": "failure"}))
    assert explicit.status == "success", explicit.stdout
    assert groups(explicit) == []


def test_always_on_a_multi_server_landscape_shows_each_servers_run_log(
    emu: Emulator, runner: Runner
) -> None:
    """Issue 20: a multi-server run stage has no plain log, one per server (all its
    replicas); pod names for replica ids, two replicas each."""
    emu.set_variants(replica_ids="pod", log_end="open_silent")
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    emu.defaults_for_new_workspaces(landscape="multi", ci_servers=CI_SERVERS)
    inputs = zd_inputs(emu, domain=DOMAIN, replicas="2", **{"show-logs": "always"})
    result = runner.run(inputs, timeout=60)
    assert result.status == "success", result.stdout
    (new,) = created(emu)
    assert [g for g in groups(result) if g.startswith("Log of run")] == [
        f"Log of run step {step} on {server} (last 2 lines)"
        for server in CI_SERVERS
        for step in (1, 2)
    ]
    for server in CI_SERVERS:
        shown = log_lines_shown(result.stdout, f"Log of run step 2 on {server} ")
        assert shown == default_lines("run", 2, server, last=True)  # its own, no other's
    reads = {r.path for r in emu.find_requests("GET", rf"/workspaces/{new}/logs/run/.*")}
    assert reads == {
        f"/workspaces/{new}/logs/run/{step}/server/{server}"
        for server in CI_SERVERS
        for step in (0, 1)
    }
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new]}


def test_always_bounds_a_huge_log_and_masks_a_secret_in_it(emu: Emulator, runner: Runner) -> None:
    emu.add_domain(TEAM, DOMAIN, {"/": [emu.add_workspace(team_id=TEAM, name="shop-old")]})
    noise = [f"building module {i}" for i in range(3000)]
    huge = "webpack: " + "x" * 200_000  # 50 times the line bound
    prepare = [*noise, huge, COMMAND, f"connecting with {SECRET}", UTF8]
    emu.defaults_for_new_workspaces(stages={"prepare": {"logs": {0: prepare}}})
    inputs = zd_inputs(
        emu, domain=DOMAIN, **{"show-logs": "always", "secret-env": f"DB_PASSWORD={SECRET}"}
    )
    result = runner.run(inputs, timeout=60)
    assert result.status == "success", result.stdout
    shown = log_lines_shown(result.stdout, "Log of prepare step 1 (last 100 lines)")
    assert len(shown) == 100  # the last 100 of 3004
    assert shown[0] == "building module 2904"
    assert shown[-4].startswith("webpack: xxx") and "characters cut" in shown[-4]
    assert shown[-3:] == [COMMAND, "connecting with ***", UTF8]  # masked, commands stopped
    for line in result.stdout.splitlines():
        assert len(line.encode()) <= LINE_BYTES, f"a line of {len(line)} characters"
    assert SECRET not in result.stdout.replace(f"::add-mask::{SECRET}", "")
    assert len(result.stdout.encode()) < 64 * 1024
    assert "hijack" not in result.outputs
    result.assert_no_token()


def test_always_with_a_failing_step_shows_the_steps_before_it_too(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", steps=3, fail_step=2, error_lines=["npm ERR! build"])
    result = runner.run(simple_inputs(emu, ws, **{"show-logs": "always"}))
    assert result.status == "failed"
    assert "npm ERR! build" in result.assert_one_error()
    assert groups(result) == [
        "Log of prepare step 1 (last 2 lines)",
        "Log of prepare step 2 (last 2 lines)",
        "Log of prepare step 3 (last 3 lines)",
    ]
    shown = log_lines_shown(result.stdout, "Log of prepare step 3 ")
    assert shown == [*default_lines("prepare", 3), "npm ERR! build"]
    # failure (the default): the failing step's alone, as before
    default = runner.run(simple_inputs(emu, ws))
    assert groups(default) == ["Log of prepare step 3 (last 3 lines)"]


def test_a_log_stream_that_stays_open_is_read_until_a_second_of_quiet(
    emu: Emulator, runner: Runner
) -> None:
    """open_silent: no stream ends, so each read ends 1 s after its last line
    (LOG_QUIET_SECONDS), long before its 5 s bound."""
    emu.set_variants(log_end="open_silent")
    ws = emu.add_workspace()
    result = runner.run(simple_inputs(emu, ws, prepare="false", **{"show-logs": "always"}))
    assert result.status == "success", result.stdout
    assert len(groups(result)) == 2  # run step 1 and 2
    first, second = emu.find_requests("GET", rf"/workspaces/{ws}/logs/run/\d+$")
    assert (first.path, second.path) == (
        f"/workspaces/{ws}/logs/run/0",
        f"/workspaces/{ws}/logs/run/1",
    )
    assert 0.9 <= second.time - first.time < 3.0
    assert result.ended - second.time >= 0.9


@pytest.mark.parametrize("value", ["verbose", "true", "on-failure"])
def test_a_bad_show_logs_value_is_an_input_error_before_any_request(
    emu: Emulator, runner: Runner, value: str
) -> None:
    ws = emu.add_workspace()
    emu.clear_requests()
    result = runner.run(simple_inputs(emu, ws, **{"show-logs": value}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert f"input 'show-logs' is '{value}': expected one of failure, always" in error
    assert emu.requests == []
    assert re.search(r"^::error title=Invalid input::", error)
