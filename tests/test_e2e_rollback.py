"""End to end: the rollback flow against the emulator."""

from __future__ import annotations

import time

import pytest
import requests

from emulator import IDE_SERVER, Emulator
from emulator.runner import TOKEN, Runner

from .test_e2e_zero_downtime import DOMAIN, TEAM, zd_inputs


def rollback_inputs(emu: Emulator, workspace_id: int, **more: str) -> dict[str, str]:
    """A rollback's (or, with flow=promote, a promotion's) inputs: no plan-id,
    which those flows would ignore (and warn of)."""
    inputs = zd_inputs(emu, flow="rollback", domain=DOMAIN, **{"workspace-id": str(workspace_id)})
    del inputs["plan-id"]
    return {**inputs, **more}


def start_run_stages(emu: Emulator, *workspace_ids: int, until: str = "running") -> None:
    """Start set-up workspaces' run stages, as earlier releases did, and wait
    until all their servers are ``until``."""
    for workspace_id in workspace_ids:
        response = requests.post(
            f"{emu.url}/workspaces/{workspace_id}/pipeline/run/start",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = [
            e["state"]
            for workspace_id in workspace_ids
            for e in emu.stage_status(workspace_id, "run")
            if e["server"] != IDE_SERVER
        ]
        if states and all(state == until for state in states):
            return
        time.sleep(0.02)
    raise AssertionError(f"run stages of {workspace_ids} did not become {until}")


def live_setup(emu: Emulator) -> tuple[int, int, int]:
    """``/`` on ``green`` (the bad release), ``/api`` on ``api``, ``blue`` (the
    release before) still up."""
    blue = emu.add_workspace(team_id=TEAM, name="shop-blue")
    green = emu.add_workspace(team_id=TEAM, name="shop-green")
    api = emu.add_workspace(team_id=TEAM, name="shop-api")
    start_run_stages(emu, blue, green, api)
    emu.add_domain(TEAM, DOMAIN, {"/": [green], "/api": [api]})
    emu.clear_requests()
    return blue, green, api


def test_rollback_points_the_path_back_and_keeps_other_paths(emu: Emulator, runner: Runner) -> None:
    blue, green, api = live_setup(emu)
    result = runner.run(rollback_inputs(emu, blue))
    assert result.returncode == 0, result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [blue], "/api": [api]}
    (put,) = emu.find_requests("PUT", r".*/workspace-connections")
    assert put.body == {"/": [blue], "/api": [api]}
    assert result.outputs == {
        "status": "success",
        "workspace-id": str(blue),
        "workspace-url": f"https://{emu.workspace(blue).dev_domain}",
        "deployed-commit": emu.workspace(blue).git_head,
        "previous-workspace-id": str(green),
        "domain-url": f"https://{DOMAIN}/",
    }
    assert not emu.workspace(green).deleted  # nothing is deleted by a rollback
    assert not emu.find_requests("POST", r".*/pipeline/.*")  # nothing started either
    assert f"Rolled https://{DOMAIN}/ back to workspace {blue}" in result.stdout
    assert "### ✅ Rolled back · Codesphere `rollback` flow" in result.summary
    result.assert_no_token()


def test_rollback_of_another_path(emu: Emulator, runner: Runner) -> None:
    blue, green, api = live_setup(emu)
    result = runner.run(rollback_inputs(emu, blue, **{"domain-path": "/api"}))
    assert result.returncode == 0, result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [blue]}
    assert result.outputs["previous-workspace-id"] == str(api)
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/api"
    result.assert_no_token()


def test_rollback_to_a_workspace_that_does_not_exist_is_refused(
    emu: Emulator, runner: Runner
) -> None:
    _blue, green, api = live_setup(emu)
    result = runner.run(rollback_inputs(emu, 9999))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "title=Refused" in error
    assert "rollback refused: workspace 9999 (input 'workspace-id') does not exist" in error
    assert f"The domain {DOMAIN} is untouched" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}
    assert not emu.find_requests("PUT")
    result.assert_no_token()


@pytest.mark.parametrize("how", ["never-started", "asleep", "failed"])
def test_rollback_to_a_workspace_whose_run_stage_is_not_up_is_refused(
    emu: Emulator, runner: Runner, how: str
) -> None:
    _blue, green, api = live_setup(emu)
    target = emu.add_workspace(team_id=TEAM, name="shop-down", running=how != "asleep")
    if how == "failed":
        emu.configure_stage(target, "run", fail_step=0)
        start_run_stages(emu, target, until="failure")
    emu.clear_requests()
    result = runner.run(rollback_inputs(emu, target))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "title=Refused" in error and "rollback refused" in error
    expected = "is not running" if how == "asleep" else "run stage of workspace"
    assert expected in error
    assert f"The domain {DOMAIN} is untouched" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}
    assert not emu.find_requests("PUT")
    assert not emu.find_requests("PATCH")  # not woken: a rollback starts nothing
    assert not emu.find_requests("POST", r".*/pipeline/.*")
    result.assert_no_token()


def test_rollback_to_another_teams_workspace_is_refused(emu: Emulator, runner: Runner) -> None:
    _blue, green, api = live_setup(emu)
    foreign = emu.add_workspace(team_id=99, name="elsewhere")
    result = runner.run(rollback_inputs(emu, foreign))
    error = result.assert_one_error()
    assert f"belongs to team 99, not to team {TEAM}" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [green], "/api": [api]}
    result.assert_no_token()


def test_rollback_to_the_serving_workspace_changes_nothing(emu: Emulator, runner: Runner) -> None:
    _blue, green, _api = live_setup(emu)
    result = runner.run(rollback_inputs(emu, green))
    assert result.returncode == 0, result.stdout
    assert not emu.find_requests("PUT")
    assert "already serves" in result.stdout
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/"
    result.assert_no_token()


def test_rollback_without_a_domain_fails_before_any_request(emu: Emulator, runner: Runner) -> None:
    result = runner.run(rollback_inputs(emu, 1001, domain=""))
    error = result.assert_one_error()
    assert "input 'domain' is empty: the rollback flow needs the domain" in error
    assert emu.requests == []
    result.assert_no_token()


def test_rollback_undoes_a_zero_downtime_release(emu: Emulator, runner: Runner) -> None:
    emu.add_domain(TEAM, DOMAIN, {})
    first = runner.run(zd_inputs(emu, domain=DOMAIN, prepare="false", **{"workspace-name": "v1"}))
    assert first.returncode == 0, first.stdout
    second = runner.run(zd_inputs(emu, domain=DOMAIN, prepare="false", **{"workspace-name": "v2"}))
    assert second.returncode == 0, second.stdout
    previous = second.outputs["previous-workspace-id"]
    assert previous == first.outputs["workspace-id"]

    result = runner.run(rollback_inputs(emu, int(previous)))
    assert result.returncode == 0, result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [int(previous)]}
    assert result.outputs["previous-workspace-id"] == second.outputs["workspace-id"]
    result.assert_no_token()
