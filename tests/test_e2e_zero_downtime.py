"""End to end: the zero-downtime flow against the emulator."""

from __future__ import annotations

from emulator import Emulator
from emulator.runner import APP, SHA, TOKEN, Runner, mark, without_id

TEAM, PLAN = 7, 21
DOMAIN = "shop.example.com"
NAME = f"shop-{SHA[:7]}"  # <repository name>-<first 7 chars of GITHUB_SHA>


def zd_inputs(emu: Emulator, **more: str) -> dict[str, str]:
    return {
        "api-token": TOKEN,
        "api-url": emu.url,
        "flow": "zero-downtime",
        "team-id": str(TEAM),
        "plan-id": str(PLAN),
        **more,
    }


def live_setup(emu: Emulator) -> tuple[int, int]:
    """The app as it runs today: ``/`` on one workspace, ``/api`` on another."""
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    api = emu.add_workspace(team_id=TEAM, name="shop-api")
    emu.add_domain(TEAM, DOMAIN, {"/": [old], "/api": [api]})
    return old, api


def created(emu: Emulator) -> list[int]:
    return [ws.id for ws in emu.workspaces(TEAM, include_deleted=True) if ws.created_via == "api"]


def test_happy_path_creates_tests_runs_then_switches(emu: Emulator, runner: Runner) -> None:
    old, api = live_setup(emu)
    result = runner.run(
        zd_inputs(
            emu,
            test="true",
            domain=DOMAIN,
            env="# app settings\nDATABASE_URL=postgres://db/shop\nFEATURE_X=on\n",
        )
    )
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    create = emu.find_requests("POST", "/workspaces")[0]
    assert without_id(create.body) == {
        "teamId": TEAM,
        "name": NAME,
        "planId": PLAN,
        "isPrivateRepo": False,
        "replicas": 1,
        "gitUrl": "https://github.com/acme/shop.git",
        "initialBranch": "main",
        "env": [
            {"name": "DATABASE_URL", "value": "postgres://db/shop"},
            {"name": "FEATURE_X", "value": "on"},
            {
                "name": "CODESPHERE_RELEASE",
                "value": mark(state="building", domain=DOMAIN, app=APP)["CODESPHERE_RELEASE"],
            },
        ],
    }
    # Stages in order, each after the one before finished; the switch only once run is up.
    prepare, test, run = (emu.stage_run(new, s) for s in ("prepare", "test", "run"))
    assert prepare and test and run
    assert prepare.final_state == test.final_state == "success"
    assert prepare.ended_at is not None and test.ended_at is not None
    assert prepare.ended_at <= test.requested_at
    assert test.ended_at <= run.requested_at
    switch = emu.find_requests("PUT", r"/domains/.*/workspace-connections")
    assert len(switch) == 1
    assert run.up_at is not None and run.up_at <= switch[0].time
    assert switch[0].body == {"/": [new], "/api": [api]}
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert without_id(emu.workspace(new).env) == {
        "DATABASE_URL": "postgres://db/shop",
        "FEATURE_X": "on",
        # The action's mark, set to released once the switch is done, naming the
        # workspace it replaced (the way back).
        **mark(state="released", domain=DOMAIN, app=APP, previous=(old,)),
    }
    assert result.outputs == {
        "status": "success",
        "workspace-id": str(new),
        "workspace-url": f"https://{emu.workspace(new).dev_domain}",
        "deployed-commit": emu.workspace(new).git_head,
        "previous-workspace-id": str(old),
        "domain-url": f"https://{DOMAIN}/",
    }
    assert not emu.workspace(old).deleted  # delete-previous is false by default
    # Plain env values are not secrets: never masked, and never printed either.
    assert "::add-mask::" + "postgres://db/shop" not in result.stdout
    assert "postgres://db/shop" not in result.stdout
    assert "| **Domain** | <https://shop.example.com/> |" in result.summary
    assert f"| **Previous workspace** | `{old}` |" in result.summary
    result.assert_no_token()


def test_failing_prepare_leaves_the_domain_and_deletes_the_new_workspace(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live_setup(emu)
    emu.defaults_for_new_workspaces(
        stages={"prepare": {"fail_step": 0, "error_lines": ["error TS2304: Cannot find name"]}}
    )
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode != 0
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "stage prepare" in error and "error TS2304" in error
    (new,) = created(emu)
    assert emu.workspace(new).deleted
    assert f"The new workspace {new} was deleted; the domain {DOMAIN} is untouched" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT", r"/domains/.*")
    assert "::group::Log of prepare step 1" in result.stdout
    assert result.outputs["workspace-id"] == str(new)
    result.assert_no_token()


def test_cleanup_on_failure_false_keeps_the_new_workspace(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    emu.defaults_for_new_workspaces(stages={"test": {"fail_step": 0}})
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, test="true", **{"cleanup-on-failure": "false"})
    )
    assert result.status == "failed"
    (new,) = created(emu)
    assert not emu.workspace(new).deleted
    assert "was kept (cleanup-on-failure: false)" in result.assert_one_error()


def test_delete_previous_deletes_the_old_workspace_and_only_it(
    emu: Emulator, runner: Runner
) -> None:
    # Earlier releases made by the action (marked), and a workspace made by hand.
    old = emu.add_workspace(team_id=TEAM, name="shop-old", env=mark())
    shared = emu.add_workspace(team_id=TEAM, name="shop-shared", env=mark())
    other = emu.add_workspace(team_id=TEAM, name="unrelated")
    emu.add_domain(TEAM, DOMAIN, {"/": [old, shared], "/docs": [shared]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"delete-previous": "true"}))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.workspace(old).deleted
    assert not emu.workspace(shared).deleted  # still serves /docs
    assert not emu.workspace(other).deleted
    assert not emu.workspace(new).deleted
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/docs": [shared]}
    assert result.outputs["previous-workspace-id"] == f"{old},{shared}"
    deleted = [r.path for r in emu.find_requests("DELETE")]
    assert deleted == [f"/workspaces/{old}"]


def test_dropped_connection_after_create_leaves_exactly_one_workspace(
    emu: Emulator, runner: Runner
) -> None:
    live_setup(emu)
    fault = emu.add_fault("drop_after", method="POST", path=r"^/workspaces$")
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    assert fault.hits == 1
    assert len(emu.find_requests("POST", "/workspaces")) == 1  # looked up, not re-created
    assert len(emu.workspaces(TEAM, name=NAME)) == 1
    assert len(created(emu)) == 1


def test_unknown_domain_fails_before_anything_is_created(emu: Emulator, runner: Runner) -> None:
    live_setup(emu)
    result = runner.run(zd_inputs(emu, domain="nope.example.com"))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "domain nope.example.com (input 'domain') is not a domain of team 7" in error
    assert not emu.find_requests("POST", "/workspaces")


def test_rerun_after_success_changes_nothing(emu: Emulator, runner: Runner) -> None:
    _old, api = live_setup(emu)
    first = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert first.returncode == 0, first.stdout
    (new,) = created(emu)
    emu.clear_requests()
    again = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert again.returncode == 0, again.stdout
    assert again.outputs["workspace-id"] == str(new)
    assert again.outputs["domain-url"] == f"https://{DOMAIN}/"
    assert "already serves" in again.stdout
    assert not emu.find_requests("POST")
    assert not emu.find_requests("DELETE")
    assert not emu.find_requests("PUT")
    assert len(emu.workspaces(TEAM, name=NAME)) == 1
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}


def test_rerun_after_a_failure_replaces_the_leftover(emu: Emulator, runner: Runner) -> None:
    _old, api = live_setup(emu)
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0}})
    failed = runner.run(zd_inputs(emu, domain=DOMAIN, **{"cleanup-on-failure": "false"}))
    assert failed.status == "failed"
    (leftover,) = created(emu)
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": None}})
    # "Re-run failed jobs": the same run, its next attempt.
    again = runner.run(zd_inputs(emu, domain=DOMAIN), extra={"GITHUB_RUN_ATTEMPT": "2"})
    assert again.returncode == 0, again.stdout
    assert emu.workspace(leftover).deleted
    (live,) = emu.workspaces(TEAM, name=NAME)
    assert live.id != leftover
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [live.id], "/api": [api]}


def test_a_sibling_job_of_the_same_run_never_takes_the_others_workspace(
    emu: Emulator, runner: Runner
) -> None:
    # Two jobs of one workflow run (a matrix: two regions) release the same commit:
    # they share GITHUB_RUN_ID and the attempt. One job's workspace, still being
    # built, is no leftover for the other.
    live_setup(emu)
    emu.add_domain(TEAM, "eu.example.com", {})
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0}})
    first = runner.run(zd_inputs(emu, domain=DOMAIN, **{"cleanup-on-failure": "false"}))
    assert first.status == "failed"
    (sibling,) = created(emu)
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": None}})
    second = runner.run(zd_inputs(emu, domain="eu.example.com"))
    assert second.returncode == 0, second.stdout
    assert not emu.workspace(sibling).deleted
    assert "run 1.1 made it and may still be working on it" in second.stdout
    assert second.outputs["workspace-id"] != str(sibling)
    assert emu.workspace(int(second.outputs["workspace-id"])).name == f"{NAME}-2"


def test_rerun_never_touches_a_namesake_serving_another_path(emu: Emulator, runner: Runner) -> None:
    old = emu.add_workspace(team_id=TEAM, name="shop-old")
    namesake = emu.add_workspace(team_id=TEAM, name=NAME)
    emu.add_domain(TEAM, DOMAIN, {"/": [old], "/beta": [namesake]})
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    assert not emu.workspace(namesake).deleted
    (new,) = created(emu)
    assert emu.workspace(new).name == f"{NAME}-2"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/beta": [namesake]}


def test_without_a_domain_the_workspace_is_released_and_nothing_switched(
    emu: Emulator, runner: Runner
) -> None:
    result = runner.run(zd_inputs(emu, **{"workspace-name": "shop-preview", "replicas": "2"}))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    assert emu.workspace(new).replicas == 2
    assert result.outputs["domain-url"] == ""
    assert result.outputs["previous-workspace-id"] == ""
    # The team's domains are read (what serves may never be deleted), none changed.
    assert not emu.find_requests("GET", r"/domains/team/\d+/domain/.*")
    assert not emu.find_requests("PUT", r"/domains/.*")
