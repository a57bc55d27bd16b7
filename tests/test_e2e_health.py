"""End to end: verify before the domain moves. Health checks against apps the
emulator serves over loopback, staged releases with promote, the commit that
really shipped."""

from __future__ import annotations

import signal
import time

import pytest

from emulator import Emulator
from emulator.runner import SHA, TOKEN, Runner, mark

from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, created, zd_inputs

HEALTH = {"health-check-path": "/healthz", "health-check-timeout": "4s"}


def served(emu: Emulator, *, app_restricted: bool = False, **behaviour: object) -> tuple[int, int]:
    """The live app on "/" and an API on "/api", each with its own app, marked
    as earlier releases of the action."""
    emu.serve_apps(restricted=app_restricted, **behaviour)
    old = emu.add_workspace(team_id=TEAM, name="shop-old", env=mark(commit="0" * 12))
    api = emu.add_workspace(team_id=TEAM, name="shop-api", env=mark(commit="1" * 12))
    emu.add_domain(TEAM, DOMAIN, {"/": [old], "/api": [api]})
    return old, api


def resolve(emu: Emulator) -> dict[str, str]:
    """The runner's view of the custom domain: the emulator's domain proxy."""
    return {"CODESPHERE_RELEASE_RESOLVE": f"{DOMAIN}={emu.domain_proxy}"}


def app_hits(emu: Emulator, workspace_id: int) -> list[float]:
    return [r.time for r in emu.app_requests if r.listener == f"app:{workspace_id}"]


def test_a_healthy_release_is_checked_before_and_after_the_switch(
    emu: Emulator, runner: Runner
) -> None:
    _old, api = served(emu)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    (switch,) = emu.find_requests("PUT", r"/domains/.*/workspace-connections")
    hits = app_hits(emu, new)
    assert hits and hits[0] < switch.time  # checked before the domain moved
    proxied = [r for r in emu.app_requests if r.listener == "domain-proxy"]
    assert proxied and proxied[0].time > switch.time  # and through the domain after
    assert proxied[0].path == "/healthz" and proxied[0].workspace_id == new
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert "| **Health check** | 200 from http://" in result.summary
    result.assert_no_token()


@pytest.mark.slow
def test_an_app_that_never_answers_fails_before_the_switch(emu: Emulator, runner: Runner) -> None:
    old, api = served(emu, statuses=[503])
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.status == "failed"
    error = result.assert_one_error()
    (new,) = created(emu)
    url = f"http://{emu.workspace(new).dev_domain}/healthz"
    assert "title=Health check failed" in error
    assert f"GET {url} did not answer with 200-399 within 4.0 s" in error
    assert "the last answer: 503 Service Unavailable: <html><body>error 503</body></html>" in error
    assert emu.workspace(new).deleted
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT", r"/domains/.*")
    result.assert_no_token()


def test_an_app_slow_to_become_ready_is_waited_for(emu: Emulator, runner: Runner) -> None:
    served(emu, ready_after=1.5)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    run = emu.stage_run(new, "run")
    assert run is not None and run.up_at is not None
    ready = run.up_at + 1.5
    accepted = [r for r in emu.app_requests if r.listener == f"app:{new}" and r.status == 200]
    assert accepted and 0 <= accepted[0].time - ready < 0.6
    assert len(app_hits(emu, new)) <= 8  # a growing schedule, not a hammering


def test_errors_then_success_pass_after_the_errors(emu: Emulator, runner: Runner) -> None:
    served(emu, statuses=[500, 500, 200])
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    statuses = [r.status for r in emu.app_requests if r.listener == f"app:{new}"]
    assert statuses[-3:] == [500, 500, 200]


def test_a_restricted_app_gets_the_token_and_no_other_host_ever_does(
    emu: Emulator, runner: Runner
) -> None:
    old, _api = served(emu, app_restricted=True)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    for request in emu.app_requests:
        token = request.headers.get("x-cs-authorization")
        if request.listener == f"app:{new}":
            assert token == f"Bearer {TOKEN}"
        else:  # the custom domain, the other workspaces' apps
            assert token is None and "authorization" not in request.headers
    assert any(r.listener == "domain-proxy" for r in emu.app_requests)
    assert not app_hits(emu, old)
    assert emu.foreign_requests == []


@pytest.mark.slow
def test_a_domain_that_fails_after_the_switch_is_switched_back(
    emu: Emulator, runner: Runner
) -> None:
    old, api = served(emu, domain_statuses=[502])
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.status == "failed"
    error = result.assert_one_error()
    (new,) = created(emu)
    assert f"GET https://{DOMAIN}/healthz did not answer" in error
    assert f"The switch was undone: https://{DOMAIN}/ points at {old} again" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    maps = [e.details["workspaces"] for e in emu.events_of("domain_updated")]
    assert maps == [{"/": [new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted  # it serves nothing again: cleaned up
    assert result.outputs["domain-url"] == ""
    result.assert_no_token()


def test_switching_back_whose_answer_is_lost_reads_the_map_before_saying_it_failed(
    emu: Emulator, runner: Runner
) -> None:
    """The PUT that points the domain back lands but its answer is an error: the
    map read back says the switch was undone; the action never claims otherwise."""
    old, api = served(emu, domain_statuses=[502])
    emu.add_fault("status_after", method="PUT", path=r"/workspace-connections$", skip=1, status=409)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert f"The switch was undone: https://{DOMAIN}/ points at {old} again" in error
    assert "roll back by hand" not in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    (new,) = created(emu)
    assert emu.workspace(new).deleted


def test_health_check_domain_false_checks_only_the_workspace(emu: Emulator, runner: Runner) -> None:
    served(emu, domain_statuses=[502])
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **HEALTH, **{"health-check-domain": "false"}),
        extra=resolve(emu),
    )
    assert result.returncode == 0, result.stdout
    assert not [r for r in emu.app_requests if r.listener == "domain-proxy"]


def test_a_staged_release_is_promoted_later(emu: Emulator, runner: Runner) -> None:
    old, api = served(emu)
    staged = runner.run(zd_inputs(emu, domain=DOMAIN, switch="false", **HEALTH), extra=resolve(emu))
    assert staged.returncode == 0, staged.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT", r"/domains/.*")
    assert staged.outputs["status"] == "success"
    assert staged.outputs["workspace-id"] == str(new)
    # A loopback dev domain (only ever in tests) is served over http.
    assert staged.outputs["workspace-url"] == f"http://{emu.workspace(new).dev_domain}"
    assert staged.outputs["deployed-commit"] == emu.workspace(new).git_head
    assert staged.outputs["domain-url"] == ""
    assert "promote it to" in staged.stdout

    promoted = runner.run(
        zd_inputs(
            emu,
            flow="promote",
            domain=DOMAIN,
            **{"workspace-id": str(new), "delete-previous": "true"},
            **HEALTH,
        ),
        extra=resolve(emu),
    )
    assert promoted.returncode == 0, promoted.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert promoted.outputs["previous-workspace-id"] == str(old)
    assert promoted.outputs["domain-url"] == f"https://{DOMAIN}/"
    assert emu.workspace(old).deleted  # an earlier release of the action: deleted
    assert not emu.workspace(api).deleted  # serves /api
    assert "### ✅ Promoted · Codesphere `promote` flow" in promoted.summary
    promoted.assert_no_token()


def test_promote_is_refused_for_a_workspace_that_is_not_up(emu: Emulator, runner: Runner) -> None:
    old, api = served(emu)
    idle = emu.add_workspace(team_id=TEAM, name="shop-idle")  # its run stage never started
    result = runner.run(
        zd_inputs(emu, flow="promote", domain=DOMAIN, **{"workspace-id": str(idle)}, **HEALTH)
    )
    assert result.status == "failed"
    error = result.assert_one_error()
    assert (
        "title=Refused" in error and f"promote refused: the run stage of workspace {idle}" in error
    )
    assert f"The domain {DOMAIN} is untouched" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert not emu.find_requests("PUT", r"/domains/.*")


def test_a_commit_the_run_did_not_release_is_reported(emu: Emulator, runner: Runner) -> None:
    served(emu)
    emu.set_branch_head("main", "f" * 40)  # the branch moved on after the run started
    result = runner.run(zd_inputs(emu, domain=DOMAIN))
    assert result.returncode == 0, result.stdout
    assert f"runs commit fffffff, not {SHA[:7]} (GITHUB_SHA)" in result.stdout
    assert "::warning title=Another commit was deployed::" in result.stdout
    assert f"⚠️ not [`{SHA[:7]}`]" in result.summary


def test_require_commit_fails_before_the_switch(emu: Emulator, runner: Runner) -> None:
    old, api = served(emu)
    emu.set_branch_head("main", "f" * 40)
    result = runner.run(zd_inputs(emu, domain=DOMAIN, **{"require-commit": "true"}))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "require-commit is true, so the release stops here" in error
    (new,) = created(emu)
    assert emu.workspace(new).deleted
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspaces(TEAM, name=NAME, include_deleted=True)


def test_a_cancel_during_the_domain_check_says_where_the_domain_points(
    emu: Emulator, runner: Runner
) -> None:
    old, api = served(emu, domain_statuses=[502])
    inputs = zd_inputs(emu, domain=DOMAIN, **{**HEALTH, "health-check-timeout": "30s"})
    proc = runner.start(inputs, extra=resolve(emu))
    deadline = time.monotonic() + 20
    while not [r for r in emu.app_requests if r.listener == "domain-proxy"]:
        assert time.monotonic() < deadline, "the domain check never began"
        time.sleep(0.05)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert took < 2.0, f"took {took:.2f} s"
    assert result.status == "cancelled"
    (new,) = created(emu)
    error = result.assert_one_error()
    assert f"The domain https://{DOMAIN}/ points at the new workspace {new}" in error
    assert "not yet checked through the domain" in error
    assert f"flow: rollback with workspace-id {old}" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert not emu.workspace(new).deleted  # it serves the domain
    assert result.outputs["previous-workspace-id"] == str(old)


@pytest.mark.slow
def test_switching_back_never_overwrites_a_release_that_came_in_meanwhile(
    emu: Emulator, runner: Runner
) -> None:
    old, api = served(emu, domain_statuses=[502])
    other = emu.add_workspace(team_id=TEAM, name="shop-other", env=mark(commit="2" * 12))
    proc = runner.start(zd_inputs(emu, domain=DOMAIN, **HEALTH), extra=resolve(emu))
    deadline = time.monotonic() + 20
    while not emu.find_requests("PUT", r"/domains/.*/workspace-connections"):
        assert time.monotonic() < deadline, "the switch never happened"
        time.sleep(0.02)
    emu.add_domain(TEAM, DOMAIN, {"/": [other], "/api": [api]})  # another release
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "another change came in meanwhile, so it was left as it is" in stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [other], "/api": [api]}
    assert len(emu.find_requests("PUT", r"/domains/.*/workspace-connections")) == 1
    assert not emu.workspace(old).deleted and not emu.workspace(other).deleted


def test_a_path_other_than_root_is_not_checked_through_the_domain(
    emu: Emulator, runner: Runner
) -> None:
    served(emu, domain_statuses=[502])
    result = runner.run(
        zd_inputs(emu, domain=DOMAIN, **{"domain-path": "/api"}, **HEALTH), extra=resolve(emu)
    )
    assert result.returncode == 0, result.stdout
    assert "Codesphere's documents do not say which path reaches the app" in result.stdout
    assert not [r for r in emu.app_requests if r.listener == "domain-proxy"]
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces["/api"] == [new]
