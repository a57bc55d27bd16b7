"""Review of issue 22 (canary and the bake): confirmed defects, each an
end-to-end test against the emulator. They were marked xfail(strict) until
fixed; the marks are gone with the fixes (the fixes' other sides:
test_e2e_fix22.py, test_e2e_map_order.py)."""

from __future__ import annotations

import signal

from emulator import Emulator
from emulator.runner import Runner, mark, stamp

from .test_e2e_canary import (
    CONNECTIONS,
    bake_started,
    canary_inputs,
    finish,
    joined,
    live,
    maps,
    resolve,
    someone_else_puts,
    wait_for,
)
from .test_e2e_zero_downtime import DOMAIN, TEAM, created


def test_cancel_during_the_join_leaves_production_as_before(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "sticky"}, {})
    emu.add_fault("delay", method="PUT", path=CONNECTIONS, seconds=1.0)
    proc = runner.start(canary_inputs(emu, **{"bake-time": "60s"}), extra=resolve(emu))
    wait_for("the join", lambda: emu.find_requests("PUT", CONNECTIONS), proc)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    (new,) = created(emu)
    assert took < 2.0
    # The run was cancelled: production is as it was before it, as a cancel
    # during the bake leaves it.
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}, result.stdout
    assert emu.workspace(new).deleted


def test_cancel_during_the_domain_check_after_the_join_undoes_it(
    emu: Emulator, runner: Runner
) -> None:
    # The new route warms up for 3 s: the domain check after the join waits.
    old, api = live(emu, {"balancer": "sticky"}, {"domain_placeholder_seconds": 3.0})
    proc = runner.start(canary_inputs(emu, **{"bake-time": "60s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    wait_for(
        "the domain check",
        lambda: [r for r in emu.app_requests if r.listener == "domain-proxy"],
        proc,
    )
    result, took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    assert took < 2.0
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}, result.stdout
    assert emu.workspace(new).deleted


def test_a_map_listed_in_another_order_is_no_warning(emu: Emulator, runner: Runner) -> None:
    # The API lists a path's workspaces in an order of its own (here: the reverse
    # of the order written, newest connection first).
    _old, _api = live(emu, {"balancer": "round_robin", "map_order": "reversed"}, {})
    result = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    assert "differs from the one written" not in result.stdout


def test_a_lost_join_answer_with_the_map_in_another_order(emu: Emulator, runner: Runner) -> None:
    old, _api = live(emu, {"balancer": "round_robin", "map_order": "reversed"}, {})
    # The join lands, but a proxy answers it with a page that is not the API's.
    emu.add_fault(
        "status_after",
        method="PUT",
        path=CONNECTIONS,
        status=200,
        body="<html>ok</html>",
        content_type="text/html",
    )
    result = runner.run(canary_inputs(emu), extra=resolve(emu))
    (new,) = created(emu)
    assert sorted(emu.domain(TEAM, DOMAIN).workspaces["/"]) == sorted([old, new])
    # The join landed (the map read back lists both): the canary serves, as the run says.
    assert result.returncode == 0, result.stdout


def test_a_rerun_of_a_serving_canary_still_gives_the_way_back(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    first = runner.run(canary_inputs(emu), extra=resolve(emu))
    assert first.returncode == 0, first.stdout
    (new,) = created(emu)
    again = runner.run(canary_inputs(emu), extra={**resolve(emu), "GITHUB_RUN_ATTEMPT": "2"})
    assert again.returncode == 0, again.stdout
    assert again.status == "success"
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old, new], "/api": [api]}
    assert again.outputs["workspace-id"] == str(new)
    # The canary still serves beside `old`: the way back (examples/canary.yml's
    # rollback job needs it) is the same as the first attempt's.
    assert again.outputs["previous-workspace-id"] == str(old), again.outputs


def test_cancel_during_the_restore_still_records_the_decision(
    emu: Emulator, runner: Runner
) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    emu.add_fault("delay", method="PUT", path=CONNECTIONS, seconds=1.0)  # the restore
    emu.configure_app(new, dev_statuses=[503])
    wait_for("the restore", lambda: len(emu.find_requests("PUT", CONNECTIONS)) >= 2, proc)
    result, took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    assert took < 2.0
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [old], "/api": [api]}
    assert maps(emu)[-1] == {"/": [old], "/api": [api]}
    assert emu.workspace(new).deleted
    assert "none (the run ended first)" not in result.summary, result.summary


def test_cancel_during_the_completion_leaves_a_release_a_rerun_finds_live(
    emu: Emulator, runner: Runner
) -> None:
    _old, api = live(emu, {"balancer": "round_robin"}, {})
    inputs = canary_inputs(emu, **{"bake-time": "1s"})
    emu.add_fault("delay", method="PUT", path=CONNECTIONS, seconds=1.0, skip=1)  # completion
    proc = runner.start(inputs, extra=resolve(emu))
    wait_for("the completion", lambda: len(emu.find_requests("PUT", CONNECTIONS)) >= 2, proc)
    result, _took = runner.cancel(proc, signal.SIGINT)
    assert result.status == "cancelled", result.stdout
    (new,) = created(emu)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [new], "/api": [api]}
    assert not emu.workspace(new).deleted
    again = runner.run(inputs, extra={**resolve(emu), "GITHUB_RUN_ATTEMPT": "2"})
    assert again.returncode == 0, again.stdout
    # The commit serves the domain alone, completed: the re-run changes nothing.
    assert created(emu) == [new], again.stdout
    assert "none (the run ended first)" not in result.summary


def test_a_newer_release_during_the_bake_supersedes_it(emu: Emulator, runner: Runner) -> None:
    old, api = live(emu, {"balancer": "round_robin"}, {})
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    new = joined(emu, old, proc)
    bake_started(emu, proc)
    newer = emu.add_workspace(
        team_id=TEAM, name="shop-newer", env=mark(run="5.1", commit="9" * 12, started=stamp(-60))
    )
    someone_else_puts(emu, {"/": [newer], "/api": [api]})  # a later run's zero-downtime
    result = finish(runner, proc)
    assert emu.domain(TEAM, DOMAIN).workspaces == {"/": [newer], "/api": [api]}
    assert emu.workspace(new).deleted
    assert result.status == "superseded", result.stdout
    assert result.returncode == 0
