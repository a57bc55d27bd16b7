"""Review of issue 23 (show-logs, the ignored-input warning): confirmed defects.

Each test states what the action should do. Each was marked xfail(strict=True)
while its defect was on main; each fix removed its mark, so every test here
must pass (the other sides of each rule: test_e2e_fix23.py).
"""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.runner import SHA, ActionRun, Runner

from .test_e2e_simple import simple_inputs
from .test_e2e_zero_downtime import live_setup, zd_inputs


def warnings(result: ActionRun) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("::warning")]


def test_always_shows_the_logs_of_a_stage_that_timed_out(emu: Emulator, runner: Runner) -> None:
    """A stage that hangs is where its output is wanted most: with ``always``
    the steps that ran (the one that hangs included) are shown, as for a
    failure."""
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=30, steps=2)
    inputs = simple_inputs(emu, ws, **{"show-logs": "always", "stage-timeout": "3"})
    result = runner.run(inputs, timeout=40)
    assert result.status == "timed-out", result.stdout
    assert "::group::Log of prepare step 1" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 404}, id="404"),
        pytest.param(
            {"status": 200, "body": "<html>sign in</html>", "content_type": "text/html"},
            id="html_200",
        ),
    ],
)
def test_a_log_route_that_always_fails_warns_once_per_run(
    emu: Emulator, runner: Runner, fault: dict[str, object]
) -> None:
    """show-logs: always is a view: when the log route fails for every step, the
    release still succeeds and says so once, not once per step of every stage."""
    ws = emu.add_workspace()
    emu.set_branch_head("main", SHA)
    emu.add_fault("status", method="GET", path=r"/logs/", times=None, **fault)
    result = runner.run(simple_inputs(emu, ws, test="true", **{"show-logs": "always"}))
    assert result.status == "success", result.stdout
    assert len(warnings(result)) <= 1, "\n".join(warnings(result))


@pytest.mark.parametrize(
    "more",
    [
        pytest.param({"domain": ""}, id="no_domain"),
        pytest.param({"domain": "shop.example.com", "switch": "false"}, id="switch_false"),
    ],
)
def test_delete_previous_that_nothing_switches_is_named_in_a_warning(
    emu: Emulator, runner: Runner, more: dict[str, str]
) -> None:
    live_setup(emu)
    emu.set_branch_head("main", SHA)
    result = runner.run(zd_inputs(emu, **{"delete-previous": "true", **more}))
    assert result.status == "success", result.stdout
    assert any("delete-previous" in w for w in warnings(result)), result.stdout
