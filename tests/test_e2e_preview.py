"""End to end: the preview and teardown flows against the emulator."""

from __future__ import annotations

from emulator import Emulator
from emulator.events import BRANCH, HEAD, PR, PREVIEW, pr_event
from emulator.runner import APP, Runner, mark, without_id

from .test_e2e_zero_downtime import DOMAIN, PLAN, TEAM, zd_inputs


def preview_inputs(emu: Emulator, **more: str) -> dict[str, str]:
    return zd_inputs(emu, flow="preview", **more)


def teardown_inputs(emu: Emulator, **more: str) -> dict[str, str]:
    """A teardown's inputs: no plan-id, which it would ignore (and warn of)."""
    inputs = zd_inputs(emu, flow="teardown")
    del inputs["plan-id"]
    return {**inputs, **more}


def previews(emu: Emulator, include_deleted: bool = False) -> list[int]:
    return [ws.id for ws in emu.workspaces(TEAM, name=PREVIEW, include_deleted=include_deleted)]


def test_first_push_creates_the_preview_on_the_head_branch(emu: Emulator, runner: Runner) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    result = runner.run(
        preview_inputs(emu, test="true", env="API_KEY=preview-secret-1"), extra=pr_event(runner)
    )
    assert result.returncode == 0, result.stdout
    (ws,) = previews(emu)
    (create,) = emu.find_requests("POST", "^/workspaces$")
    assert without_id(create.body) == {
        "teamId": TEAM,
        "name": PREVIEW,
        "planId": PLAN,
        "isPrivateRepo": False,
        "replicas": 1,
        "gitUrl": "https://github.com/acme/shop.git",
        "initialBranch": BRANCH,
        "env": [
            {"name": "API_KEY", "value": "preview-secret-1"},
            {
                "name": "CODESPHERE_RELEASE",
                "value": mark(flow="preview", commit=HEAD[:12], pr=PR, state="building", app=APP)[
                    "CODESPHERE_RELEASE"
                ],
            },
        ],
    }
    prepare, test, run = (emu.stage_run(ws, s) for s in ("prepare", "test", "run"))
    assert prepare and test and run and run.up_at is not None
    assert result.outputs == {
        "status": "success",
        "workspace-id": str(ws),
        "workspace-url": f"https://{emu.workspace(ws).dev_domain}",
        "deployed-commit": HEAD,
        "previous-workspace-id": "",
        "domain-url": "",
    }
    assert f"Preview of pull request #{PR} created: https://" in result.stdout
    assert "::warning" not in result.stdout
    assert "preview-secret-1" not in result.stdout.replace("::add-mask::preview-secret-1", "")
    assert "### ✅ Preview ready · Codesphere `preview` flow" in result.summary
    result.assert_no_token()


def test_second_push_updates_the_same_workspace(emu: Emulator, runner: Runner) -> None:
    emu.set_branch_head(BRANCH, HEAD)
    first = runner.run(preview_inputs(emu), extra=pr_event(runner))
    assert first.returncode == 0, first.stdout
    (ws,) = previews(emu)
    emu.clear_requests()

    pushed = "d" * 40
    emu.set_branch_head(BRANCH, pushed)
    second = runner.run(
        preview_inputs(emu, env="FEATURE=on"),
        extra=pr_event(runner, sha=pushed, action="synchronize"),
    )
    assert second.returncode == 0, second.stdout
    assert previews(emu) == [ws]  # no duplicate workspace
    assert not emu.find_requests("POST", "^/workspaces$")
    assert not emu.find_requests("DELETE")
    calls = [f"{r.method} {r.path}" for r in emu.requests]
    order = [
        f"PUT /workspaces/{ws}/env-vars",
        f"POST /workspaces/{ws}/git/pull/origin/feature%2Fcheckout",
        f"POST /workspaces/{ws}/pipeline/prepare/start",
        f"POST /workspaces/{ws}/pipeline/run/stop",
        f"POST /workspaces/{ws}/pipeline/run/start",
        f"PUT /workspaces/{ws}/env-vars",  # at the end: the mark says released
    ]
    assert [c for c in calls if c in order] == order
    assert "state=released" in emu.workspace(ws).env["CODESPHERE_RELEASE"]
    assert emu.workspace(ws).env["FEATURE"] == "on"
    assert second.outputs["workspace-id"] == str(ws)
    assert second.outputs["deployed-commit"] == pushed
    assert f"Preview of pull request #{PR} updated" in second.stdout
    second.assert_no_token()


def test_a_sleeping_preview_is_woken_before_the_update(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(
        team_id=TEAM,
        name=PREVIEW,
        running=False,
        branch=BRANCH,
        env=mark(flow="preview", pr=PR, state="building"),
    )
    emu.set_branch_head(BRANCH, HEAD)
    result = runner.run(preview_inputs(emu), extra=pr_event(runner, action="reopened"))
    assert result.returncode == 0, result.stdout
    assert emu.find_requests("PATCH", rf"^/workspaces/{ws}$")[0].body == {"replicas": 1}
    assert result.outputs["deployed-commit"] == HEAD
    assert previews(emu) == [ws]
    result.assert_no_token()


def test_not_a_pull_request_fails_before_any_request(emu: Emulator, runner: Runner) -> None:
    result = runner.run(preview_inputs(emu))  # GITHUB_EVENT_NAME=push
    assert result.returncode == 1
    error = result.assert_one_error()
    assert "the preview flow works on a pull request" in error
    assert "'push' (GITHUB_EVENT_NAME)" in error and "on: pull_request" in error
    assert result.status == "failed"
    assert emu.requests == []
    result.assert_no_token()


def test_an_unreadable_event_payload_is_named(emu: Emulator, runner: Runner) -> None:
    extra = pr_event(runner)
    extra["GITHUB_EVENT_PATH"] = str(runner.tmp / "missing.json")
    result = runner.run(preview_inputs(emu), extra=extra)
    error = result.assert_one_error()
    assert "could not read the pull_request event payload" in error and "missing.json" in error
    assert emu.requests == []
    result.assert_no_token()


def test_a_failed_first_preview_is_deleted(emu: Emulator, runner: Runner) -> None:
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0}})
    result = runner.run(preview_inputs(emu), extra=pr_event(runner))
    assert result.status == "failed"
    error = result.assert_one_error()
    (ws,) = previews(emu, include_deleted=True)
    assert emu.workspace(ws).deleted
    assert f"The new workspace {ws} was deleted" in error
    assert result.outputs["workspace-id"] == str(ws)
    result.assert_no_token()


def test_a_failed_update_never_deletes_the_existing_preview(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(
        team_id=TEAM, name=PREVIEW, branch=BRANCH, env=mark(flow="preview", pr=PR, state="building")
    )
    emu.configure_stage(ws, "prepare", fail_step=1, error_lines="npm ERR! build broke")
    result = runner.run(preview_inputs(emu), extra=pr_event(runner, action="synchronize"))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "npm ERR! build broke" in error
    assert f"The preview workspace {ws} was kept" in error
    assert not emu.workspace(ws).deleted
    assert not emu.find_requests("DELETE")
    assert result.outputs["workspace-id"] == str(ws)
    result.assert_no_token()


def test_a_fork_is_skipped_even_with_a_token(emu: Emulator, runner: Runner) -> None:
    result = runner.run(
        preview_inputs(emu, prepare="false"),
        extra=pr_event(runner, head_repository="someone/shop"),
    )
    assert result.returncode == 0, result.stdout
    assert result.status == "skipped"
    assert "comes from the fork someone/shop" in result.stdout
    assert emu.requests == []
    result.assert_no_token()


def test_teardown_deletes_the_preview_of_the_pull_request(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(
        team_id=TEAM, name=PREVIEW, env=mark(flow="preview", pr=PR, state="building")
    )
    other = emu.add_workspace(
        team_id=TEAM, name="shop-pr-6", env=mark(flow="preview", pr=6, state="building")
    )
    result = runner.run(teardown_inputs(emu), extra=pr_event(runner, action="closed"))
    assert result.returncode == 0, result.stdout
    assert emu.workspace(ws).deleted
    assert not emu.workspace(other).deleted
    assert [r.path for r in emu.find_requests("DELETE")] == [f"/workspaces/{ws}"]
    assert result.outputs["workspace-id"] == str(ws)
    assert result.outputs["status"] == "success"
    assert f"Deleted preview workspace {ws} ({PREVIEW})" in result.stdout
    assert "### ✅ Torn down · Codesphere `teardown` flow" in result.summary
    result.assert_no_token()


def test_teardown_of_an_absent_preview_succeeds(emu: Emulator, runner: Runner) -> None:
    result = runner.run(teardown_inputs(emu), extra=pr_event(runner, action="closed"))
    assert result.returncode == 0, result.stdout
    assert result.status == "success"
    assert not emu.find_requests("DELETE")
    assert "already gone" in result.stdout
    assert result.outputs["workspace-id"] == ""
    result.assert_no_token()


def test_teardown_by_name_works_without_a_pull_request(emu: Emulator, runner: Runner) -> None:
    ws = emu.add_workspace(team_id=TEAM, name="shop-stale", env=mark(flow="preview", pr=3))
    result = runner.run(teardown_inputs(emu, **{"workspace-name": "shop-stale"}))
    assert result.returncode == 0, result.stdout
    assert emu.workspace(ws).deleted
    result.assert_no_token()


def test_teardown_without_a_pull_request_or_name_fails_before_any_request(
    emu: Emulator, runner: Runner
) -> None:
    result = runner.run(teardown_inputs(emu), extra={"GITHUB_EVENT_NAME": "workflow_dispatch"})
    error = result.assert_one_error()
    assert "the teardown flow works on a pull request" in error and "workspace-name" in error
    assert emu.requests == []
    result.assert_no_token()


def test_teardown_never_deletes_a_workspace_a_domain_serves(emu: Emulator, runner: Runner) -> None:
    live = emu.add_workspace(team_id=TEAM, name="shop-live")
    emu.add_domain(TEAM, DOMAIN, {"/": [live]})
    result = runner.run(teardown_inputs(emu, **{"workspace-name": "shop-live"}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "title=Refused" in error and f"serves {DOMAIN}/" in error
    assert not emu.workspace(live).deleted
    assert not emu.find_requests("DELETE")
    result.assert_no_token()
