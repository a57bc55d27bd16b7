"""End to end: canary releases and the bake (issue 22), against the emulator's
load balancer in both of its variants (round-robin, and sticky by a cookie
that a client may keep), and with a new route that warms up after the join.

Bake times are short (2 s for a clean bake); a failure is brought about when
the bake has started (its first read of the domain's map after the join), so
the tests that fail a bake wait at most one round (5 s, the production
interval) plus the recheck (1 s) for it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulator import Emulator
from emulator.runner import TOKEN, ActionRun, Runner, mark, stamp, start_app

from .test_e2e_guardrails import assert_planned
from .test_e2e_zero_downtime import DOMAIN, NAME, TEAM, created, zd_inputs

CONNECTIONS = rf"/domains/team/{TEAM}/domain/{DOMAIN}/workspace-connections$"
DOMAIN_READ = rf"/domains/team/{TEAM}/domain/{DOMAIN}$"
BALANCERS = [
    pytest.param({"balancer": "sticky"}, {}, id="sticky"),
    pytest.param({"balancer": "round_robin"}, {}, id="round_robin"),
    pytest.param({"balancer": "sticky"}, {"domain_placeholder_seconds": 0.6}, id="sticky+warming"),
]
TWO_BALANCERS = BALANCERS[:2]


def canary_inputs(emu: Emulator, **more: str) -> dict[str, str]:
    return zd_inputs(
        emu,
        flow="canary",
        domain=DOMAIN,
        **{"health-check-path": "/healthz", "health-check-timeout": "10s", **more},
    )


def live(emu: Emulator, variants: dict[str, Any], apps: dict[str, Any]) -> tuple[int, int]:
    """The app as it runs today, an earlier release of the action: ``/`` on one
    workspace (its app up), ``/api`` on another."""
    emu.set_variants(**variants)
    emu.serve_apps(**apps)
    old = emu.add_workspace(
        team_id=TEAM, name="shop-old", env=mark(commit="0" * 12, started=stamp(3600))
    )
    api = emu.add_workspace(
        team_id=TEAM, name="shop-api", env=mark(commit="1" * 12, started=stamp(3600))
    )
    start_app(emu, old)
    emu.add_domain(TEAM, DOMAIN, {"/": [old], "/api": [api]})
    return old, api


def resolve(emu: Emulator) -> dict[str, str]:
    return {"CODESPHERE_RELEASE_RESOLVE": f"{DOMAIN}={emu.domain_proxy}"}


def wait_for(
    what: str, check: Callable[[], Any], proc: subprocess.Popen[str], timeout: float = 30
) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the action ended before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)
    return found


def joined(emu: Emulator, old: int, proc: subprocess.Popen[str]) -> int:
    """The new workspace, once it joined ``/`` beside ``old``."""

    def new() -> int | None:
        ids = emu.domain(TEAM, DOMAIN).workspaces.get("/", [])
        return next((i for i in ids if i != old), None) if len(ids) == 2 else None

    found: int = wait_for("the join", new, proc)
    return found


def bake_started(emu: Emulator, proc: subprocess.Popen[str]) -> float:
    """When the bake read the domain's map first (after the join)."""
    join = wait_for("the join", lambda: emu.find_requests("PUT", CONNECTIONS), proc)[0]
    reads: list[Any] = wait_for(
        "the bake",
        lambda: [r for r in emu.find_requests("GET", DOMAIN_READ) if r.time > join.time],
        proc,
    )
    return float(reads[0].time)


def finish(runner: Runner, proc: subprocess.Popen[str], timeout: float = 60) -> ActionRun:
    stdout, stderr = proc.communicate(timeout=timeout)
    return runner.result(proc.returncode, stdout, stderr, 0.0)


def maps(emu: Emulator) -> list[dict[str, list[int]]]:
    return [e.details["workspaces"] for e in emu.events_of("domain_updated")]


def someone_else_puts(emu: Emulator, workspaces: dict[str, list[int]]) -> None:
    """Another client (a person in Codesphere's UI, another tool) writes the map."""
    response = requests.put(
        f"{emu.url}/domains/team/{TEAM}/domain/{DOMAIN}/workspace-connections",
        json=workspaces,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    response.raise_for_status()


@pytest.mark.parametrize(("variants", "apps"), BALANCERS)
def test_a_clean_bake_serves_both_then_the_new_workspace_alone(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    result = runner.run(
        canary_inputs(emu, **{"bake-time": "2s", "delete-previous": "true"}), extra=resolve(emu)
    )
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    # The map held both during the bake, then the new one alone; /api untouched.
    assert maps(emu) == [{"/": [old, new], "/api": [api]}, {"/": [new], "/api": [api]}]
    join, complete = emu.find_requests("PUT", CONNECTIONS)
    assert complete.time - join.time >= 2.0
    # Through the domain, both workspaces answered during the bake: the checks
    # keep no cookie, so a sticky balancer places each as a new visitor.
    during = {
        r.workspace_id
        for r in emu.app_requests
        if r.listener == "domain-proxy" and join.time < r.time < complete.time and r.status == 200
    }
    assert during == {old, new}
    assert not any("cookie" in r.headers for r in emu.app_requests)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert emu.workspace(old).deleted  # delete-previous, once the bake completed it
    delete = emu.find_requests("DELETE", rf"^/workspaces/{old}$")[0]
    assert delete.time > complete.time
    assert result.outputs["previous-workspace-id"] == str(old)
    assert result.outputs["workspace-id"] == str(new)
    assert result.outputs["domain-url"] == f"https://{DOMAIN}/"
    assert "### ✅ Canary completed · Codesphere `canary` flow" in result.summary
    assert "#### Bake: 2.0 s, a round every 5.0 s" in result.summary
    assert f"**Decision:** passed after 2.0 s: completed, / -> {new} alone" in result.summary
    # Two rounds: at once, and when bake-time is over.
    assert "| 0:00 to 0:02 | ✅ 2 of 2 | ✅ 4 of 4 |  |" in result.summary
    assert "0.0 s" not in result.stdout + result.summary
    assert "Canary completed:" in result.stdout
    result.assert_no_token()


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_bake_failing_on_the_dev_domain_is_undone(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    broke = bake_started(emu, proc)
    emu.configure_app(new, dev_statuses=[503])  # its dev domain fails, the domain does not
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "title=Bake failed" in error
    assert "the dev domain gave 2 answers that were not accepted within" in error
    assert "503 Service Unavailable" in error and f"https://{DOMAIN}/ gave" not in error
    assert f"It was undone: https://{DOMAIN}/ points at {old} again" in error
    assert f"The new workspace {new} was deleted" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert maps(emu)[-1] == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    assert not emu.workspace(old).deleted
    # Undone within a round (5 s) and the recheck (1 s) of the failure.
    restore = emu.find_requests("PUT", CONNECTIONS)[-1]
    assert restore.time - broke < 5 + 1 + 1
    assert "**Decision:** failed after" in result.summary
    assert f"Undone: / -> {old}" in result.summary
    assert "| ❌ 503 Service Unavailable" in result.summary
    assert result.outputs["domain-url"] == ""
    result.assert_no_token()


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_bake_failing_only_through_the_domain_is_undone(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    """The new workspace's app answers on its dev domain; through the domain
    (the edge in front of it) it fails. The old workspace answers both ways."""
    old, api = live(emu, variants, apps)
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    emu.configure_app(new, domain_statuses=[502])
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert f"https://{DOMAIN}/ gave 2 answers that were not accepted within" in error
    assert "502" in error and "dev domain gave" not in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    dev = [r.status for r in emu.app_requests if r.listener == f"app:{new}"]
    assert dev and all(status == 200 for status in dev)
    assert "| ✅ | ❌ 1 of 2: 502" in result.summary
    result.assert_no_token()


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_change_to_another_path_during_the_bake_is_kept(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    docs = emu.add_workspace(team_id=TEAM, name="shop-docs")
    proc = runner.start(canary_inputs(emu, **{"bake-time": "2s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    someone_else_puts(emu, {"/": [old, new], "/api": [api], "/docs": [docs]})
    result = finish(runner, proc)
    assert result.returncode == 0, result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api], "/docs": [docs]}
    assert not emu.workspace(old).deleted  # delete-previous: false


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_change_to_the_path_during_the_bake_is_never_overwritten(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    """Someone rolls back by hand during the bake: the bake stops, writes
    nothing over it, and deletes the canary, which serves nothing now."""
    old, api = live(emu, variants, apps)
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    someone_else_puts(emu, {"/": [old], "/api": [api]})
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert (
        f"https://{DOMAIN}/ was changed by someone else during the bake; it points at {old}"
        in error
    )
    assert "Nothing was written over that change" in error
    assert f"The new workspace {new} was deleted" in error
    assert "the domain shop.example.com was left as another change set it" in error
    assert len(emu.find_requests("PUT", CONNECTIONS)) == 2  # the join, and the other client's
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    assert "someone else changed / to" in result.summary


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_cancel_during_the_bake_restores_the_previous_list(
    emu: Emulator,
    runner: Runner,
    variants: dict[str, Any],
    apps: dict[str, Any],
    sig: signal.Signals,
) -> None:
    old, api = live(emu, variants, apps)
    proc = runner.start(canary_inputs(emu, **{"bake-time": "60s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    time.sleep(0.3)
    result, took = runner.cancel(proc, sig)
    assert took < 2.0, result.stdout
    assert result.status == "cancelled"
    error = result.assert_one_error()
    assert f"The new workspace {new} was deleted" in error
    assert "points where it did before the release" in error
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert maps(emu) == [{"/": [old, new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted
    assert "**Decision:** cancelled after" in result.summary
    result.assert_no_token()


def test_cancel_after_the_canary_completed_changes_nothing(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "sticky"}, {})
    emu.add_fault("delay", method="DELETE", path=rf"^/workspaces/{old}$", seconds=3)
    proc = runner.start(
        canary_inputs(emu, **{"bake-time": "1s", "delete-previous": "true"}), extra=resolve(emu)
    )
    new = joined(emu, old, proc)
    wait_for("the completion", lambda: emu.domain(TEAM, DOMAIN).workspaces.get("/") == [new], proc)
    wait_for("the delete", lambda: emu.find_requests("DELETE", rf"^/workspaces/{old}$"), proc)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert took < 2.0
    assert result.status == "cancelled"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert len(emu.find_requests("PUT", CONNECTIONS)) == 2  # the join and the completion
    assert not emu.workspace(new).deleted
    assert f"points at the new workspace {new}; nothing was undone" in result.assert_one_error()


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_canary_without_a_bake_serves_beside_then_promote_completes_it(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    canary = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert canary.returncode == 0, canary.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old, new], "/api": [api]}
    assert canary.status == "success"
    assert canary.outputs["previous-workspace-id"] == str(old)
    assert "### ✅ Canary serving · Codesphere `canary` flow" in canary.summary
    assert (
        f"> The canary, workspace {new}, serves https://{DOMAIN}/ beside the previous "
        f"workspace {old}: Codesphere's load balancer gives it about 1 in 2 of the users"
    ) in canary.summary
    assert f"flow: promote and workspace-id {new}" in canary.summary
    assert "#### Bake" not in canary.summary
    assert not emu.workspace(old).deleted
    promoted = runner.run(
        zd_inputs(
            emu,
            flow="promote",
            domain=DOMAIN,
            **{
                "workspace-id": str(new),
                "health-check-path": "/healthz",
                "delete-previous": "true",
            },
        ),
        extra=resolve(emu),
    )
    assert promoted.returncode == 0, promoted.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert emu.workspace(old).deleted and not emu.workspace(new).deleted
    assert promoted.outputs["previous-workspace-id"] == str(old)


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_canary_without_a_bake_then_rollback_undoes_it(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    canary = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert canary.returncode == 0, canary.stdout
    (new,) = created(emu)
    rolled = runner.run(
        zd_inputs(
            emu,
            flow="rollback",
            domain=DOMAIN,
            **{
                "workspace-id": canary.outputs["previous-workspace-id"],
                "health-check-path": "/healthz",
                "delete-previous": "true",
            },
        ),
        extra=resolve(emu),
    )
    assert rolled.returncode == 0, rolled.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted and not emu.workspace(old).deleted
    assert rolled.outputs["previous-workspace-id"] == str(new)


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_zero_downtime_with_a_bake_that_fails_switches_back(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    old, api = live(emu, variants, apps)
    proc = runner.start(
        zd_inputs(
            emu,
            domain=DOMAIN,
            **{"health-check-path": "/healthz", "bake-time": "30s", "delete-previous": "true"},
        ),
        extra=resolve(emu),
    )
    switched = wait_for(
        "the switch", lambda: emu.domain(TEAM, DOMAIN).workspaces.get("/") != [old], proc
    )
    assert switched
    new = emu.domain(TEAM, DOMAIN).workspaces["/"][0]
    bake_started(emu, proc)
    assert not emu.workspace(old).deleted  # the previous stays as it is during the bake
    emu.configure_app(new, statuses=[500])
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "title=Bake failed" in error
    assert f"It was undone: https://{DOMAIN}/ points at {old} again" in error
    assert maps(emu) == [{"/": [new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted
    assert not emu.workspace(old).deleted  # delete-previous applies only after a clean bake
    assert "### ❌ Release failed · Codesphere `zero-downtime` flow" in result.summary
    assert "#### Bake: 30.0 s" in result.summary


def test_zero_downtime_with_a_clean_bake_deletes_the_previous_afterwards(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    result = runner.run(
        zd_inputs(
            emu,
            domain=DOMAIN,
            **{"health-check-path": "/healthz", "bake-time": "2s", "delete-previous": "true"},
        ),
        extra=resolve(emu),
    )
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    (switch,) = emu.find_requests("PUT", CONNECTIONS)
    delete = emu.find_requests("DELETE", rf"^/workspaces/{old}$")[0]
    assert delete.time - switch.time >= 2.0
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert "**Decision:** passed after 2.0 s: the switch stands" in result.summary


def test_a_single_blip_is_tolerated(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    proc = runner.start(canary_inputs(emu, **{"bake-time": "3s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    emu.configure_app(new, statuses=[503, 200])  # one failed answer, then well again
    result = finish(runner, proc)
    assert result.returncode == 0, result.stdout
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert "a blip" in result.summary
    assert "1 with an answer that was not accepted" in result.summary


def test_a_canary_dry_run_plans_the_join_and_the_bake_and_writes_nothing(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "sticky"}, {})
    inputs = canary_inputs(
        emu, **{"bake-time": "10m", "delete-previous": "true", "dry-run": "true"}
    )
    result = runner.run(inputs, extra=resolve(emu))
    plan = assert_planned(result, emu)
    new = f"the new workspace ({NAME})"
    assert f"Add {new} to https://{DOMAIN}/ beside workspace {old}: it gets about 1 in 2" in plan
    assert f"Map of {DOMAIN} after: / -> {old}, {new}; /api -> {api}" in plan
    assert "Bake for 10 min 00 s: GET /healthz on the new workspace and through" in plan
    assert f"on a failure point it back at {old} and delete the new workspace" in plan
    assert f"Delete workspace {old} (shop-old): it served / before" in plan
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    without = runner.run({**inputs, "bake-time": "0"}, extra=resolve(emu))
    plan = assert_planned(without, emu)
    assert "Stop there: the canary serves beside what served the path" in plan
    assert f"Keep workspace {old} (shop-old): it serves / beside the canary" in plan


def test_a_canary_never_joins_beside_a_newer_release(emu: Emulator, runner: Runner) -> None:
    """The rule of the guardrails issue: a newer release of this repository serves
    the path (a later workflow run), so the canary builds nothing."""
    old, api = live(emu, {"balancer": "sticky"}, {})
    emu.workspace(old).env.update(mark(run="5.1", commit="9" * 12, started=stamp(-60)))
    result = runner.run(canary_inputs(emu, **{"bake-time": "2s"}), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    assert result.status == "superseded"
    assert f"a newer release serves https://{DOMAIN}/: workspace {old}" in result.stdout
    assert created(emu) == []
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}


def test_a_failing_stage_leaves_the_path_as_it_was(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "sticky"}, {})
    emu.defaults_for_new_workspaces(stages={"prepare": {"fail_step": 0}})
    result = runner.run(canary_inputs(emu, **{"bake-time": "2s"}), extra=resolve(emu))
    assert result.status == "failed"
    error = result.assert_one_error()
    assert "stage prepare failed" in error
    (new,) = created(emu)
    assert f"The new workspace {new} was deleted; the domain {DOMAIN} is untouched" in error
    assert not emu.find_requests("PUT", CONNECTIONS)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}


def test_a_rerun_of_a_canary_that_serves_changes_nothing(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    first = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert first.returncode == 0, first.stdout
    (new,) = created(emu)
    again = runner.run(
        canary_inputs(emu),
        extra=resolve(emu),
    )
    assert again.returncode == 0, again.stdout
    assert created(emu) == [new]
    assert len(emu.find_requests("PUT", CONNECTIONS)) == 1
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old, new], "/api": [api]}
    assert "this commit is live, nothing was changed" in again.stdout


@pytest.mark.parametrize(("variants", "apps"), TWO_BALANCERS)
def test_a_canary_failing_its_domain_check_is_taken_out(
    emu: Emulator, runner: Runner, variants: dict[str, Any], apps: dict[str, Any]
) -> None:
    """Through the domain only the old workspace answers: the check after the
    join needs two accepted answers in a row, one per workspace on the path."""
    old, api = live(emu, variants, {**apps, "domain_statuses": [502]})
    emu.configure_app(old, domain_statuses=None)
    inputs = canary_inputs(emu, **{"health-check-timeout": "3s"})
    result = runner.run(inputs, extra=resolve(emu))
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    (new,) = created(emu)
    assert "did not answer with 200-399 2 times in a row within 3.0 s" in error
    assert f"The switch was undone: https://{DOMAIN}/ points at {old} again" in error
    assert maps(emu) == [{"/": [old, new], "/api": [api]}, {"/": [old], "/api": [api]}]
    assert emu.workspace(new).deleted
