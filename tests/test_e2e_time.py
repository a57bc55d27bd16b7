"""End to end: one deadline per phase (issue 19). Each test failed before the
redesign, when every call kept its own time: a retry budget that cut a slow git
pull short (and sent it again), and a create and a boot that each got a whole
``workspace-timeout``."""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.runner import Runner, start_app

from .test_e2e_simple import simple_inputs
from .test_e2e_zero_downtime import DOMAIN, created, live_setup, zd_inputs


@pytest.mark.slow
def test_a_slow_git_pull_is_awaited_and_sent_once(emu: Emulator, runner: Runner) -> None:
    """A 75 s pull (a large repository) is longer than a call's 60 s retry budget
    and shorter than the pull's own read timeout: the action waits for its answer
    and never sends a second pull while the first may still run."""
    ws = emu.add_workspace(team_id=1, name="shop")
    start_app(emu, ws)
    emu.add_fault("delay", method="POST", path=r"/git/pull", seconds=75, times=1)
    result = runner.run(simple_inputs(emu, ws, prepare="false"), timeout=150)
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    pulls = emu.find_requests("POST", rf"/workspaces/{ws}/git/pull.*")
    assert len(pulls) == 1, [p.path for p in pulls]
    assert len(emu.events_of("git_pulled", workspace_id=ws)) == 1
    assert "pulling again" not in result.stdout


@pytest.mark.slow
def test_workspace_timeout_bounds_the_create_and_the_boot_together(
    emu: Emulator, runner: Runner
) -> None:
    """``workspace-timeout: 25s``, a create answered 12 s late and a 40 s boot: the
    release fails about 25 s after the create was sent (not 12 + 25 s), and the new
    workspace is deleted."""
    old, api = live_setup(emu)
    emu.defaults_for_new_workspaces(start_seconds=40)
    emu.add_fault("slow_answer", method="POST", path=r"^/workspaces$", seconds=12)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"workspace-timeout": "25s"}))
    assert result.returncode == 1, result.stdout
    assert result.status == "timed-out"
    (create,) = emu.find_requests("POST", r"/workspaces")
    assert result.ended - create.time < 30.0, f"ended {result.ended - create.time:.1f} s after"
    result.assert_one_error()
    (new,) = created(emu)
    assert emu.workspace(new).deleted
    assert emu.domain(7, DOMAIN).workspaces == {"/": [old], "/api": [api]}
