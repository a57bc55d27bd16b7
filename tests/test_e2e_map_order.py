"""End to end: the flows that write a domain's map, across the orders in which
the API may list a path's workspaces (the emulator's ``map_order``; issue 22's
review). No document says Codesphere keeps the order a PUT gave, so a path's
ids are compared as a set wherever the action compares them: the map read back
after a lost answer, the map after the switch, the bake's reads, the restore.

The path serves two workspaces before the release, so the order matters, and
the answer of one write is a proxy's page (the write landed): the map read back
decides."""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.runner import Runner, mark, stamp, start_app

from .test_e2e_canary import (
    CONNECTIONS,
    bake_started,
    canary_inputs,
    finish,
    maps,
    resolve,
    wait_for,
)
from .test_e2e_zero_downtime import DOMAIN, TEAM, created, zd_inputs

ORDERS = ["sorted", "reversed", "shuffled"]
DIFFERS = "differs from the one written"  # the warning after a switch


def two_serve(emu: Emulator, order: str) -> tuple[int, int, int]:
    """``/`` on two workspaces (earlier releases, their apps up), ``/api`` on a third."""
    emu.set_variants(map_order=order, balancer="round_robin")
    emu.serve_apps()
    first, second, api = (
        emu.add_workspace(team_id=TEAM, name=name, env=mark(commit=c * 12, started=stamp(3600)))
        for name, c in (("shop-a", "0"), ("shop-b", "1"), ("shop-api", "2"))
    )
    start_app(emu, first)
    start_app(emu, second)
    emu.add_domain(TEAM, DOMAIN, {"/": [first, second], "/api": [api]})
    return first, second, api


def lose_answer(emu: Emulator, skip: int) -> None:
    """The PUT after ``skip`` others lands, but a proxy answers it with a page
    that is not the API's: whether it landed, the map read back says."""
    emu.add_fault(
        "status_after",
        method="PUT",
        path=CONNECTIONS,
        status=200,
        body="<html>ok</html>",
        content_type="text/html",
        skip=skip,
    )


def on_root(emu: Emulator) -> list[int]:
    return sorted(emu.domain(TEAM, DOMAIN).workspaces.get("/", []))


@pytest.mark.parametrize("order", ORDERS)
def test_a_canary_beside_two_completes_though_its_join_answer_was_lost(
    emu: Emulator, runner: Runner, order: str
) -> None:
    first, second, api = two_serve(emu, order)
    lose_answer(emu, skip=0)  # the join
    inputs = canary_inputs(emu, **{"bake-time": "2s", "delete-previous": "true"})
    result = runner.run(inputs, extra=resolve(emu))
    assert result.returncode == 0, result.stdout
    (new,) = created(emu)
    join, complete = maps(emu)
    assert sorted(join["/"]) == [first, second, new] and join["/api"] == [api]
    assert complete == {"/": [new], "/api": [api]}
    assert DIFFERS not in result.stdout
    assert "someone else" not in result.stdout + result.summary
    assert emu.workspace(first).deleted and emu.workspace(second).deleted
    assert sorted(result.outputs["previous-workspace-id"].split(",")) == [str(first), str(second)]
    assert f"completed, / -> {new} alone" in result.summary


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_a_failed_canary_bake_restores_two_though_the_restore_answer_was_lost(
    emu: Emulator, runner: Runner, order: str
) -> None:
    first, second, api = two_serve(emu, order)
    lose_answer(emu, skip=1)  # the restore
    proc = runner.start(canary_inputs(emu, **{"bake-time": "30s"}), extra=resolve(emu))
    wait_for("the join", lambda: len(on_root(emu)) == 3, proc)
    (new,) = created(emu)
    bake_started(emu, proc)
    emu.configure_app(new, dev_statuses=[503])
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    error = result.assert_one_error()
    assert "title=Bake failed" in error and "It was undone" in error, error
    assert on_root(emu) == [first, second]
    assert emu.domain(TEAM, DOMAIN).workspaces["/api"] == [api]
    assert emu.workspace(new).deleted
    assert "Undone: / ->" in result.summary


@pytest.mark.parametrize("order", ORDERS)
def test_a_failed_zero_downtime_bake_switches_back_to_two_though_the_answer_was_lost(
    emu: Emulator, runner: Runner, order: str
) -> None:
    first, second, api = two_serve(emu, order)
    lose_answer(emu, skip=1)  # the switch back
    inputs = zd_inputs(emu, domain=DOMAIN, **{"health-check-path": "/healthz", "bake-time": "30s"})
    proc = runner.start(inputs, extra=resolve(emu))
    wait_for("the switch", lambda: len(on_root(emu)) == 1, proc)
    (new,) = created(emu)
    bake_started(emu, proc)
    emu.configure_app(new, statuses=[500])
    result = finish(runner, proc)
    assert result.status == "failed", result.stdout
    assert "It was undone" in result.assert_one_error()
    assert maps(emu)[0] == {"/": [new], "/api": [api]}
    assert on_root(emu) == [first, second]
    assert emu.workspace(new).deleted
    assert DIFFERS not in result.stdout
