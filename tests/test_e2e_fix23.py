"""End to end: the fixes of the review of issue 23 beyond its own tests
(``test_e2e_review23.py``): a timed-out stage's words and logs, the log route
that fails, the inputs that settings leave unused.
"""

from __future__ import annotations

import signal

import pytest

from emulator import Emulator
from emulator.model import LogLine
from emulator.runner import SHA, ActionRun, Runner

from .test_e2e_codesphere_today import log_lines_shown
from .test_e2e_defects import started, wait_for
from .test_e2e_show_logs import default_lines, groups
from .test_e2e_simple import simple_inputs
from .test_e2e_zero_downtime import live_setup, zd_inputs

RUNNING = ", running at the timeout"

# -- a stage that timed out ----------------------------------------------------------------


def test_a_timed_out_stage_says_timed_out_and_no_failed_status_request(
    emu: Emulator, runner: Runner
) -> None:
    """The phase line and the summary's row said "failed" for status=timed-out, and
    the error added "the last status request failed: ... no time left to send it":
    the wait's own end, no failure of the API."""
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=30, steps=2)
    result = runner.run(simple_inputs(emu, ws, **{"stage-timeout": "3"}), timeout=40)
    assert result.status == "timed-out", result.stdout
    error = result.assert_one_error()
    assert "stage prepare did not finish within 3.0 s (last state: step 1 of 2 running)" in error
    assert "status request failed" not in error and "no time left" not in error, error
    assert any(
        line.startswith("Stage prepare: timed out in ") for line in result.stdout.splitlines()
    )
    assert "| Stage prepare | ⏱️ timed out |" in result.summary, result.summary
    assert "❌" not in result.summary, result.summary


@pytest.mark.parametrize("show", ["failure", "always"])
def test_a_timed_out_stage_shows_the_running_steps_log_and_always_the_ones_before(
    emu: Emulator, runner: Runner, show: str
) -> None:
    """The running step's log is where a hung step's cause is: shown under
    ``failure`` as a failing step's is, with ``always`` after the steps before it,
    and its last line in the error. Step 2 of 5 runs from 8 s to 16 s (its lines
    at 8 s and 12 s); the stage times out at 10 s."""
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=40, steps=5)
    inputs = simple_inputs(emu, ws, **{"stage-timeout": "10", "show-logs": show})
    result = runner.run(inputs, timeout=40)
    assert result.status == "timed-out", result.stdout
    running = f"Log of prepare step 2{RUNNING} (last 1 line)"
    before = ["Log of prepare step 1 (last 2 lines)"] if show == "always" else []
    assert groups(result) == [*before, running], result.stdout
    assert log_lines_shown(result.stdout, running) == default_lines("prepare", 2)[:1]
    if before:
        assert log_lines_shown(result.stdout, before[0]) == default_lines("prepare", 1)
    error = result.assert_one_error()
    assert error.endswith(
        "(last state: step 2 of 5 running); the running step's last log line: "
        "[prepare] step 2: running."
    ), error
    lines = result.stdout.splitlines()
    ended = next(i for i, line in enumerate(lines) if line.startswith("Stage prepare: timed out"))
    assert lines.index(f"::group::{running}") < ended  # in the stage's phase, as a failure's
    result.assert_no_token()


def test_the_logs_of_a_timed_out_stage_keep_to_their_budget(emu: Emulator, runner: Runner) -> None:
    """Streams that stay open (open_silent) take a second of quiet each: the 12 or
    more finished steps before the running one would take 12 s or more.
    TIMED_OUT_LOGS_SECONDS (10 s) holds: the running step's is read first, the
    later ones before it are left out, saying so."""
    emu.set_variants(log_end="open_silent")
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=8, steps=40)  # 0.2 s a step
    inputs = simple_inputs(emu, ws, **{"stage-timeout": "3", "show-logs": "always"})
    result = runner.run(inputs, timeout=40)
    assert result.status == "timed-out", result.stdout
    *before, running = groups(result)
    step = int(running.removeprefix("Log of prepare step ").split(",")[0])
    assert running.startswith(f"Log of prepare step {step}{RUNNING} "), running
    assert step > 12, running
    assert 5 <= len(before) < step - 1, before  # most of those before it, not all
    assert before == [f"Log of prepare step {k} (last 2 lines)" for k in range(1, len(before) + 1)]
    assert "The other logs of prepare are not shown: reading them took 10 s already" in (
        result.stdout
    )
    assert result.seconds < 3 + 10 + 3, result.seconds


def test_a_cancel_ends_the_logs_of_a_timed_out_stage_at_once(emu: Emulator, runner: Runner) -> None:
    """The running step prints a line every 50 ms, so its read would last its 5 s;
    SIGINT cuts it at once."""
    ws = emu.add_workspace()
    chatty: list[LogLine] = [f"compiling {i}" for i in range(600)]
    emu.configure_stage(ws, "prepare", seconds=60, steps=2, logs={0: chatty})
    inputs = simple_inputs(emu, ws, **{"stage-timeout": "3"})
    logs = rf"/workspaces/{ws}/logs/prepare/0"
    with started(runner, inputs) as proc:
        # The first read is the end cue's, during the wait; the second the timeout's.
        wait_for(lambda: len(emu.find_requests("GET", logs)) >= 2, proc, "the log read")
        result, took = runner.cancel(proc, signal.SIGINT)
    assert took < 2.0, f"took {took:.2f} s to stop"
    assert result.status == "cancelled", result.stdout
    result.assert_one_error()


# -- a log route that fails ----------------------------------------------------------------

LOGS = r"/logs/"


def warnings(result: ActionRun) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("::warning")]


def test_after_the_log_route_refused_always_reads_no_more_but_a_failing_steps(
    emu: Emulator, runner: Runner
) -> None:
    """One warning, naming what happens next; no "no lines" for a log that was not
    read; the failing step's log is tried all the same (once: an error answer is
    not asked again), saying so in a plain line."""
    ws = emu.add_workspace()
    emu.set_branch_head("main", SHA)
    emu.configure_stage(ws, "test", steps=3, fail_step=2, error_lines=["npm ERR! test"])
    emu.add_fault("status", method="GET", path=LOGS, times=None, status=404)
    result = runner.run(simple_inputs(emu, ws, test="true", **{"show-logs": "always"}))
    assert result.status == "failed", result.stdout
    (warning,) = warnings(result)
    assert warning.startswith("::warning::could not read the log of prepare step 1: "), warning
    assert warning.endswith(
        "The other steps' logs are not read in this run (show-logs: always); a failing "
        "step's log is still tried"
    ), warning
    assert "no lines" not in result.stdout
    assert "\ncould not read the log of test step 3: Codesphere API returned 404" in result.stdout
    error = result.assert_one_error()
    assert error.endswith("stage test failed at step 3 of 3 on codesphere-ide."), error
    failing = emu.find_requests("GET", rf"/workspaces/{ws}/logs/test/2$")
    assert len(failing) <= 2  # the end cue's (it may have opened it) and the failure's, once


def test_after_the_log_route_refused_no_later_stage_is_read(emu: Emulator, runner: Runner) -> None:
    """The run stage follows no stream for an end cue, so every request of its
    logs would be show-logs' own: there is none."""
    ws = emu.add_workspace()
    emu.set_branch_head("main", SHA)
    emu.add_fault("status", method="GET", path=LOGS, times=None, status=404)
    result = runner.run(simple_inputs(emu, ws, **{"show-logs": "always"}))
    assert result.status == "success", result.stdout
    assert len(warnings(result)) == 1, result.stdout
    assert emu.find_requests("GET", rf"/workspaces/{ws}/logs/run/") == []


def test_a_log_stream_that_breaks_warns_once_and_the_other_logs_are_still_read(
    emu: Emulator, runner: Runner
) -> None:
    """A connection that breaks is no answer of the route: every log is still
    tried, the first failure a warning, the others plain lines."""
    ws = emu.add_workspace()
    emu.set_branch_head("main", SHA)
    emu.add_fault("drop_before", method="GET", path=LOGS, times=None)
    result = runner.run(simple_inputs(emu, ws, test="true", **{"show-logs": "always"}))
    assert result.status == "success", result.stdout
    (warning,) = warnings(result)
    assert warning.startswith("::warning::could not read the log of prepare step 1: "), warning
    assert "not read in this run" not in warning
    lines = result.stdout.splitlines()
    for stage, step in (("prepare", 2), ("test", 1), ("test", 2), ("run", 1), ("run", 2)):
        assert any(
            line.startswith(f"could not read the log of {stage} step {step}: ") for line in lines
        )
    assert "no lines" not in result.stdout
    assert len(emu.find_requests("GET", rf"/workspaces/{ws}/logs/run/\d+$")) == 4  # 2 tries each


# -- inputs another setting leaves unused ---------------------------------------------------


def test_delete_previous_with_an_empty_domain_is_named_with_why_in_the_one_warning(
    emu: Emulator, runner: Runner
) -> None:
    """domain: ${{ vars.CODESPHERE_DOMAIN }} with the variable unset: the release is
    staged, the previous workspace kept, and the warning says why delete-previous
    did nothing (names, never values)."""
    live_setup(emu)
    emu.set_branch_head("main", SHA)
    inputs = zd_inputs(emu, domain="", **{"delete-previous": "true", "domain-path": "/api"})
    result = runner.run(inputs)
    assert result.status == "success", result.stdout
    (warning,) = warnings(result)
    assert warning == (
        "::warning title=Inputs ignored::These inputs do nothing with the other inputs as "
        "they are: domain-path, delete-previous (domain is empty, so nothing is switched: is "
        "its variable set?). Remove them, or set what they need"
    ), warning
    assert "Not switching any domain (no domain given)" in result.stdout
    assert emu.find_requests("DELETE", r"^/workspaces/\d+$") == []


def test_deployment_environment_without_github_token_is_named(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace()
    inputs = simple_inputs(emu, ws, **{"deployment-environment": "staging-eu"})
    result = runner.run(inputs)
    assert result.status == "success", result.stdout
    (warning,) = warnings(result)
    assert warning.endswith(
        "This input does nothing with the other inputs as they are: deployment-environment "
        "(github-token is empty, so no GitHub deployment is recorded). Remove it, or set what "
        "it needs"
    ), warning
    assert "staging-eu" not in warning
