"""End to end: entrypoint.py as a subprocess against the emulator, simple flow."""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.runner import TOKEN, Runner, start_app


def simple_inputs(emu: Emulator, workspace_id: int, **more: str) -> dict[str, str]:
    return {"api-token": TOKEN, "api-url": emu.url, "workspace-id": str(workspace_id), **more}


def called(emu: Emulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.requests]


def test_happy_path_pulls_prepares_restarts_and_reports(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(team_id=1, name="shop")
    start_app(emu, ws)
    emu.set_branch_head("main", "1" * 40)
    result = runner.run(simple_inputs(emu, ws))
    assert result.returncode == 0, result.stdout
    assert result.outputs == {
        "status": "success",
        "workspace-id": str(ws),
        "workspace-url": f"https://{emu.workspace(ws).dev_domain}",
        "deployed-commit": "1" * 40,
        "previous-workspace-id": "",
        "domain-url": "",
    }
    calls = called(emu)
    order = [
        f"POST /workspaces/{ws}/git/pull/origin",
        # The commit is read right after the pull (require-commit stops before rebuilding).
        f"GET /workspaces/{ws}/git/head",
        f"POST /workspaces/{ws}/pipeline/prepare/start",
        f"POST /workspaces/{ws}/pipeline/run/stop",
        f"POST /workspaces/{ws}/pipeline/run/start",
    ]
    assert [c for c in calls if c in order] == order
    assert not any("/pipeline/test/start" in c for c in calls)  # test: false by default
    # Each stage really finished before the next began.
    prepare = emu.stage_run(ws, "prepare")
    run = emu.stage_run(ws, "run")
    assert prepare is not None and run is not None
    assert prepare.final_state == "success" and prepare.ended_at is not None
    assert run.requested_at >= prepare.ended_at
    assert "::notice title=Codesphere release succeeded::Released to https://" in result.stdout
    assert "| Stage prepare | ✅ success |" in result.summary
    assert "| Stage run | ✅ success |" in result.summary
    result.assert_no_token()


def test_test_stage_runs_when_asked_and_profile_and_branch_are_used(
    emu: Emulator, runner: Runner
) -> None:
    ws = emu.add_workspace(team_id=1, name="shop")
    emu.set_profiles(ws, ["production"])
    emu.set_branch_head("release/2.0", "2" * 40)
    result = runner.run(
        simple_inputs(emu, ws, test="true", profile="production", branch="release/2.0")
    )
    assert result.returncode == 0, result.stdout
    calls = called(emu)
    for stage in ("prepare", "test", "run"):
        assert f"POST /workspaces/{ws}/pipeline/{stage}/start/production" in calls
    assert f"POST /workspaces/{ws}/git/pull/origin/release%2F2.0" in calls or (
        f"POST /workspaces/{ws}/git/pull/origin/release/2.0" in calls
    )
    assert result.outputs["deployed-commit"] == "2" * 40
    test_run = emu.stage_run(ws, "test")
    assert test_run is not None and test_run.profile == "production"


def test_prepare_false_skips_prepare(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    result = runner.run(simple_inputs(emu, ws, prepare="false"))
    assert result.returncode == 0, result.stdout
    assert not any("/pipeline/prepare/start" in c for c in called(emu))


def test_asleep_workspace_is_woken_first(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(running=False, replicas=2)
    result = runner.run(simple_inputs(emu, ws))
    assert result.returncode == 0, result.stdout
    patches = emu.find_requests("PATCH", rf"/workspaces/{ws}")
    assert [p.body for p in patches] == [{"replicas": 2}]
    first_pull = emu.find_requests("POST", rf"/workspaces/{ws}/git/pull.*")[0]
    assert emu.events_of("workspace_started", workspace_id=ws)[-1].time <= first_pull.time
    assert "not running: waking it" in result.stdout


def test_failing_prepare_shows_the_log_and_fails_once(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(
        ws,
        "prepare",
        steps=3,
        fail_step=1,
        error_lines=["npm ERR! missing script: build"],
    )
    result = runner.run(simple_inputs(emu, ws))
    assert result.returncode != 0
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "stage prepare failed at step 2 of 3 on codesphere-ide" in error
    assert "npm ERR! missing script: build" in error
    assert "::group::Log of prepare step 2" in result.stdout
    assert result.outputs["workspace-id"] == str(ws)
    assert result.outputs["workspace-url"] == f"https://{emu.workspace(ws).dev_domain}"
    assert not emu.find_requests("POST", rf"/workspaces/{ws}/pipeline/run/start")
    assert "❌ Release failed" in result.summary
    result.assert_no_token()


def test_stage_timeout_reports_timed_out_promptly(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    emu.configure_stage(ws, "prepare", seconds=60)
    result = runner.run(simple_inputs(emu, ws, **{"stage-timeout": "2s"}))
    assert result.returncode != 0
    assert result.status == "timed-out"
    error = result.assert_one_error()
    assert "stage prepare did not finish within 2.0 s" in error
    assert result.seconds < 2 + 3  # the timeout plus start-up and a few requests


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({"workspace-id": "abc"}, "input 'workspace-id' is 'abc'"),
        ({"workspace-id": ""}, "input 'workspace-id' is empty"),
        ({"flow": "fast"}, "input 'flow' is 'fast'"),
        ({"stage-timeout": "10 minutes"}, "input 'stage-timeout' is '10 minutes'"),
        ({"test": "yes"}, "input 'test' is 'yes'"),
        ({"api-token": ""}, "input 'api-token' is empty"),
        ({"api-url": "http://codesphere.example.com/api"}, "input 'api-url'"),
    ],
)
def test_invalid_inputs_fail_before_any_request(
    emu: Emulator, runner: Runner, inputs: dict[str, str], needle: str
) -> None:
    ws = emu.add_workspace()
    result = runner.run({**simple_inputs(emu, ws), **inputs})
    assert result.returncode != 0
    assert result.status == "failed"
    assert needle in result.assert_one_error()
    assert emu.requests == []
    result.assert_no_token()


def test_wrong_token_gives_a_clear_401_and_never_prints_it(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    wrong = "cs-wrong-token-0a9f8e7d"
    result = runner.run({**simple_inputs(emu, ws), "api-token": wrong})
    assert result.returncode != 0
    error = result.assert_one_error()
    assert "401" in error and "Check the api-token input" in error
    result.assert_no_token(wrong)
    assert len(emu.requests) == 1  # 401 is not retried


def test_missing_workspace_names_the_input(emu: Emulator, runner: Runner) -> None:
    result = runner.run(simple_inputs(emu, 999999))
    assert result.returncode != 0
    error = result.assert_one_error()
    assert "workspace 999999 (input 'workspace-id') was not found" in error


def test_runs_from_an_unrelated_directory_with_debug_logging(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace()
    result = runner.run(simple_inputs(emu, ws), extra={"RUNNER_DEBUG": "1"})
    assert result.returncode == 0, result.stdout
    assert f"::debug::GET /api/workspaces/{ws}/status -> 200" in result.stdout
    result.assert_no_token()
